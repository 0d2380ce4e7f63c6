"""The REST side's I/O edge: one client shape, deadlines, foreign errors translated.

Every request here runs on the run's client (:mod:`chatcontract.transport`)
under a total deadline on top of httpx's per-phase timeouts, reads at most
:data:`~chatcontract.rest.fingerprint.MAX_BODY` bytes (or none: a stream is
closed as soon as its headers arrive) and is never retried. What comes back
is an :class:`~chatcontract.rest.fingerprint.Answer` or a named
:class:`~chatcontract.transport.TransportFailure` (too slow, not HTTP,
reset...); a connection that cannot be made at all becomes
:class:`~chatcontract.errors.TargetUnreachable`.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from chatcontract import transport
from chatcontract.context import RunContext
from chatcontract.errors import TargetUnreachable
from chatcontract.presentation import Presentation
from chatcontract.rest.fingerprint import MAX_BODY, Answer
from chatcontract.transport import TransportFailure

__all__ = [
    "SSE_MEDIA_TYPE",
    "curl_command",
    "ensure_reachable",
    "exchange",
    "new_client",
]

SSE_MEDIA_TYPE = "text/event-stream"
TOKEN_VARIABLE = "$CHATCONTRACT_TOKEN"


def curl_command(
    method: str,
    url: str,
    *,
    presented: Presentation | None = None,
    query: Mapping[str, str] | None = None,
    body: Any = None,
    media_type: str | None = None,
    token_variable: str = TOKEN_VARIABLE,
) -> str:
    """A copy-pasteable reproduction; the token is a shell variable, never the value."""
    parts = ["curl", "-sS", "-X", method]
    if presented is not None:
        # Double quotes so the shell expands the variable; the token itself never appears.
        parts.append(presented.curl(token_variable))
    if body is not None:
        parts += ["-H", shlex.quote(f"Content-Type: {media_type or 'application/json'}")]
        parts += ["-d", shlex.quote(json.dumps(body))]
    target = url + ("?" + urlencode(query) if query else "")
    parts.append(shlex.quote(target))
    return " ".join(parts)


def new_client(ctx: RunContext) -> httpx.AsyncClient:
    """The run's client (:func:`chatcontract.transport.new_client`) for ``ctx``'s target."""
    return transport.new_client(ctx.settings, ctx.base_url)


def _why(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not resolved"
    return (exc.strerror or type(exc).__name__).lower()


async def ensure_reachable(base_url: str, timeout: float) -> None:
    """Open (and close) one connection to the target, or raise TargetUnreachable.

    For an https:// URL the TLS handshake is part of it: a plain-HTTP port
    behind an https:// URL is said to be one, not reported route by route.
    """
    parts = urlsplit(base_url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise TargetUnreachable(f"{base_url} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    # The same trust as every client of the run (certifi, nothing from the environment).
    tls = httpx.create_ssl_context(trust_env=False) if parts.scheme == "https" else None
    deadline = transport.Deadline(timeout)
    try:
        async with deadline.scope():
            _, writer = await asyncio.open_connection(
                host, port, ssl=tls, server_hostname=host if tls else None
            )
    except TimeoutError:
        raise TargetUnreachable(
            f"cannot reach {base_url}: no connection within {timeout:g} s"
        ) from None
    except ssl.SSLError as exc:
        failure = transport.classify(exc, elapsed=deadline.elapsed(), limit=timeout)
        raise TargetUnreachable(f"cannot reach {base_url}: {failure.line()}") from None
    except OSError as exc:
        raise TargetUnreachable(f"cannot reach {base_url}: {_why(exc)}") from None
    writer.close()
    try:
        async with asyncio.timeout(timeout):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        pass  # the connection was made: the target is reachable


async def exchange(
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
) -> Answer | TransportFailure:
    """Send one request; its answer, or what went wrong instead, named.

    ``deadline`` bounds the whole exchange (connect, status line, headers and
    the body read), however slowly bytes trickle in. An event stream's body
    is never read: its status line and headers are all the inventory needs,
    and the connection is closed at once, so an endless stream cannot hold us.
    ``read_body=False`` skips every body. A failure that makes every exchange
    impossible (refused, host unknown, TLS) raises
    :class:`~chatcontract.errors.TargetUnreachable` instead.
    """
    sent = dict(headers or {})
    content: bytes | None = None
    if body is not None:
        content = json.dumps(body).encode()
        sent["Content-Type"] = media_type or "application/json"
    bound = transport.Deadline(deadline)
    limit = deadline
    with transport.recording() as received:
        try:
            async with bound.scope():
                request = client.build_request(
                    method, url, headers=sent, params=query, content=content
                )
                response = await client.send(request, stream=True)
                try:
                    data = b""
                    media = response.headers.get("content-type", "").lower()
                    if read_body and not media.startswith(SSE_MEDIA_TYPE):
                        async for chunk in response.aiter_bytes():
                            data += chunk
                            if len(data) >= MAX_BODY:
                                break
                    return Answer.of(
                        response.status_code, response.headers.get("content-type"), data
                    )
                finally:
                    await response.aclose()
        except (
            TimeoutError,
            OSError,
            httpx.TimeoutException,
            httpx.NetworkError,
            httpx.RemoteProtocolError,
            httpx.DecodingError,
        ) as exc:
            # Not caught: errors of our own making (LocalProtocolError, UnsupportedProtocol).
            timed_out = isinstance(exc, TimeoutError) and bound.expired
            if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
                limit = client.timeout.read or deadline
            elif isinstance(exc, httpx.ConnectTimeout):
                limit = client.timeout.connect or deadline
            failure = transport.classify(
                exc,
                elapsed=bound.elapsed(),
                limit=limit,
                received=received,
                timed_out=timed_out,
            )
            no_connection = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
    if failure.unreachable or no_connection:
        raise TargetUnreachable(f"cannot reach {client.base_url}: {failure.line()}") from None
    return failure
