"""Objects a run creates on the target, and their removal at the end.

Checks create objects over REST: the inventory's probe of a ``POST``, the
schemathesis cases that succeed, the kernel a WebSocket URL needs, the thread
a flow talks in. A nightly run against staging must not leave them behind.
Whoever creates one hands the answer to :meth:`Leftovers.record`, which keeps
it when the creation's links name it (the values the spec's ``DELETE`` needs);
:meth:`Leftovers.cleanup` deletes them, newest first, through the ``DELETE``
the spec has for each (:func:`chatcontract.links.delete_for`), each request
presenting the token as that operation's security scheme says, paced and
counted like every request of the run, the whole cleanup bounded in time.
What could not be deleted is kept with the reason, for the report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

from chatcontract.context import RunContext
from chatcontract.errors import ChatContractError
from chatcontract.links import delete_for, fill_path, link_values
from chatcontract.presentation import carried
from chatcontract.spec import Operation

__all__ = ["Created", "Leftovers", "Notes", "RestAnswer", "rest_call", "tokens_of"]

_MAX_BODY = 64 * 1024
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
MAX_KEPT = 500
"""Objects one :class:`Leftovers` tracks at most (a fuzzing run may create many)."""


class Notes(Protocol):
    """Where a request notes what happened (a WebSocket transcript, for one)."""

    def note(self, text: str) -> None: ...


@dataclass(frozen=True, slots=True)
class RestAnswer:
    """One bounded REST exchange: its status and JSON body, or why there is none."""

    status: int | None
    body: Any = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def line(self) -> str:
        return self.problem if self.problem is not None else f"HTTP {self.status}"


async def rest_call(
    ctx: RunContext,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str],
    query: Mapping[str, str] | None = None,
    body: Any = None,
    transcript: Notes | None = None,
) -> RestAnswer:
    """One request, paced and counted; the whole exchange bounded, the body to 64 KiB."""
    settings = ctx.settings
    timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    label = f"{method} {path}"
    await ctx.services.pacer.wait()
    ctx.services.budget.note()
    status: int | None = None
    data = bytearray()
    try:
        # One bound on the whole exchange: httpx's timeouts are per read, and a body
        # trickled a byte at a time would otherwise never end.
        async with asyncio.timeout(settings.connect_timeout + settings.read_timeout):
            async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
                request = client.build_request(
                    method,
                    ctx.url(path),
                    params=dict(query or {}),
                    json=body,
                    headers=dict(headers),
                )
                response = await client.send(request, stream=True)
                try:
                    status = response.status_code
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if len(data) > _MAX_BODY:
                            raise ValueError(f"body larger than {_MAX_BODY} bytes")
                finally:
                    await response.aclose()
        parsed: Any = None
        if response.headers.get("content-type", "").startswith("application/json") and data:
            parsed = orjson.loads(bytes(data))
    except (httpx.HTTPError, TimeoutError, ValueError) as exc:
        problem = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
        if transcript is not None:
            transcript.note(f"{label} failed: {problem}")
        return RestAnswer(status, problem=problem)
    if transcript is not None:
        transcript.note(f"{label} -> HTTP {status}")
    return RestAnswer(status, parsed)


@dataclass(frozen=True, slots=True)
class Created:
    """An object the run created over REST, and what its creation's links name it."""

    producer: Operation
    user: str | None
    values: Mapping[str, Any]

    @property
    def label(self) -> str:
        names = ", ".join(f"{k}={v}" for k, v in sorted(self.values.items()))
        return f"{self.producer.label} ({names})"


TokenFor = Callable[[str], Awaitable[str | None]]
"""The token of a user (``None``: there is none to be had)."""


def tokens_of(ctx: RunContext) -> TokenFor:
    """Each user's token from the run's credentials (``""``: the default user), redacted
    from every output; ``None`` when it cannot be had."""

    async def token_for(user: str) -> str | None:
        try:
            token = await ctx.credentials.token(user or None)
        except ChatContractError:
            return None
        ctx.redactor.add(token)
        return token

    return token_for


@dataclass
class Leftovers:
    """What a part of the run created, and what became of it at :meth:`cleanup`."""

    ctx: RunContext
    created: list[Created] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    """Each object that could not be deleted, with why."""
    dropped: int = 0
    """Creations not tracked because :data:`MAX_KEPT` were already."""

    def record(self, producer: Operation, user: str | None, body: Any) -> Created | None:
        """Keep the object ``producer`` answered ``body`` for, when its links name it."""
        values = link_values(self.ctx.spec, producer, body)
        if not values or producer.method.upper() in _SAFE_METHODS:
            return None
        if len(self.created) >= MAX_KEPT:
            self.dropped += 1
            return None
        created = Created(producer, user, values)
        self.created.append(created)
        return created

    async def cleanup(self, token_for: TokenFor, seconds: float) -> None:
        """Delete everything created, newest first, within ``seconds`` in all."""
        try:
            async with asyncio.timeout(seconds):
                await self._cleanup(token_for)
        except TimeoutError:
            pass
        self.kept += [f"{c.label}: not deleted within {seconds:g} s" for c in self.created]
        self.created.clear()
        if self.dropped:
            self.kept.append(f"{self.dropped} more objects were created than tracked")

    async def _cleanup(self, token_for: TokenFor) -> None:
        spec = self.ctx.spec
        while self.created:
            created = self.created[-1]
            remove = delete_for(spec, created.producer, created.values)
            if remove is None:
                self.kept.append(f"{created.label}: the spec has no DELETE for it")
                self.created.pop()
                continue
            path = fill_path(remove.path, created.values)
            token = await token_for(created.user or "") if not remove.is_public else None
            headers, params = carried(spec, remove, token)
            answer = await rest_call(self.ctx, "DELETE", path, headers=headers, query=params)
            self.created.pop()
            # Gone already is as good as deleted: nothing of ours is left behind.
            if answer.ok or answer.status in (404, 410):
                self.deleted.append(f"DELETE {path}")
            else:
                self.kept.append(f"{created.label}: DELETE {path} answered {answer.line()}")

    def details(self) -> dict[str, str]:
        """``cleaned up`` / ``not cleaned up`` for a result's details (empty: nothing made)."""
        found: dict[str, str] = {}
        if self.deleted:
            found["cleaned up"] = "; ".join(self.deleted)
        if self.kept:
            found["not cleaned up"] = "; ".join(self.kept)
        return found
