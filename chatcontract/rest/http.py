"""The REST side's I/O edge: one client shape, deadlines, foreign errors translated.

Every request here has an overall deadline on top of httpx's per-phase
timeouts, reads at most :data:`~chatcontract.rest.fingerprint.MAX_BODY` bytes
(or none: a stream is closed as soon as its headers arrive) and is never
retried. A connection that cannot be made becomes
:class:`~chatcontract.errors.TargetUnreachable`.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from chatcontract.context import RunContext
from chatcontract.errors import TargetUnreachable
from chatcontract.rest.fingerprint import MAX_BODY, Answer

__all__ = [
    "SSE_MEDIA_TYPE",
    "curl_command",
    "ensure_reachable",
    "fetch",
    "new_client",
]

SSE_MEDIA_TYPE = "text/event-stream"
TOKEN_VARIABLE = "$CHATCONTRACT_TOKEN"


def curl_command(
    method: str,
    url: str,
    *,
    authorized: bool = False,
    query: Mapping[str, str] | None = None,
    body: Any = None,
    media_type: str | None = None,
    token_variable: str = TOKEN_VARIABLE,
) -> str:
    """A copy-pasteable reproduction; the token is a shell variable, never the value."""
    parts = ["curl", "-sS", "-X", method]
    if authorized:
        # Double quotes so the shell expands the variable; the token itself never appears.
        parts.append(f'-H "Authorization: Bearer {token_variable}"')
    if body is not None:
        parts += ["-H", shlex.quote(f"Content-Type: {media_type or 'application/json'}")]
        parts += ["-d", shlex.quote(json.dumps(body))]
    target = url + ("?" + urlencode(query) if query else "")
    parts.append(shlex.quote(target))
    return " ".join(parts)


def new_client(ctx: RunContext) -> httpx.AsyncClient:
    settings = ctx.settings
    return httpx.AsyncClient(
        base_url=ctx.base_url,
        timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
        follow_redirects=False,
        headers={"User-Agent": "chatcontract"},
    )


def _why(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not resolved"
    return (exc.strerror or type(exc).__name__).lower()


async def ensure_reachable(base_url: str, timeout: float) -> None:
    """Open (and close) one TCP connection to the target, or raise TargetUnreachable."""
    parts = urlsplit(base_url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise TargetUnreachable(f"{base_url} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        raise TargetUnreachable(
            f"cannot reach {base_url}: no connection within {timeout:g} s"
        ) from None
    except OSError as exc:
        raise TargetUnreachable(f"cannot reach {base_url}: {_why(exc)}") from None
    writer.close()
    try:
        async with asyncio.timeout(timeout):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        pass  # the connection was made: the target is reachable


async def fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    deadline: float,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    body: Any = None,
    media_type: str | None = None,
    read_body: bool = True,
) -> Answer | None:
    """Send one request and return what came back; None when nothing came in time.

    An event stream's body is never read: its status line and headers are all
    the inventory needs, and the connection is closed at once, so an endless
    stream cannot hold us. ``read_body=False`` skips every body.
    """
    sent = dict(headers or {})
    content: bytes | None = None
    if body is not None:
        content = json.dumps(body).encode()
        sent["Content-Type"] = media_type or "application/json"
    try:
        async with asyncio.timeout(deadline):
            request = client.build_request(method, url, headers=sent, params=query, content=content)
            response = await client.send(request, stream=True)
            try:
                data = b""
                media = response.headers.get("content-type", "").lower()
                if read_body and not media.startswith(SSE_MEDIA_TYPE):
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if len(data) >= MAX_BODY:
                            break
                return Answer.of(response.status_code, response.headers.get("content-type"), data)
            finally:
                await response.aclose()
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise TargetUnreachable(f"cannot reach {client.base_url}: {type(exc).__name__}") from None
    except (TimeoutError, httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError):
        return None
