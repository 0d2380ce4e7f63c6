"""The objects a WebSocket check needs: made through the spec, removed at the end.

A WebSocket URL may have parameters (``/api/kernels/{kernel_id}/channels``).
Each is filled, in order, from the run setting
:attr:`~chatcontract.context.RunSettings.path_parameters`, from an object
created through the spec's links (the ``POST`` whose answer feeds the
parameter), or from the spec's example. The template itself is never sent:
without a value, the endpoint's contracts are skipped with the parameter's
name. Objects are made per user (a kernel is its owner's), the first user's
before anything else.

Everything the checks create over REST (those objects, threads for flows) is
deleted at the end through the ``DELETE`` the spec has for it
(:func:`chatcontract.links.delete_for`); what could not be deleted is reported.
Requests carry the token the way the operation's security scheme says
(:mod:`chatcontract.presentation`: ``Authorization: Bearer``,
``Authorization: token``, an API-key header, a cookie or the query string),
and are paced and counted like every request of the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from chatcontract.context import RunContext
from chatcontract.errors import ChatContractError
from chatcontract.links import (
    Parameter,
    build_sample,
    fill_path,
    link_values,
    operation_parameters,
    path_names,
    producers_of,
)
from chatcontract.objects import Leftovers, rest_call, tokens_of
from chatcontract.presentation import carried
from chatcontract.spec import Operation, Spec, WebSocketContract

__all__ = ["Filled", "Resources"]

_MAX_BODY = 64 * 1024
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_FROM_SETTING = "the path_parameters setting"
_FROM_EXAMPLE = "the spec's example"


@dataclass(frozen=True, slots=True)
class Filled:
    """A WebSocket path (and required query) with every parameter filled, and whence."""

    path: str
    sources: Mapping[str, str] = field(default_factory=dict)
    """Parameter -> where its value came from (an operation's label, the example...)."""

    @property
    def made(self) -> bool:
        """Whether a value names an object the run created (so a 404 is the server's)."""
        return any(s not in (_FROM_SETTING, _FROM_EXAMPLE) for s in self.sources.values())

    def provenance(self) -> str:
        return ", ".join(f"{name} from {source}" for name, source in self.sources.items())


def _url_parameters(spec: Spec, contract: WebSocketContract) -> list[Parameter]:
    """The path parameters and required query parameters of the WebSocket URL; a name in
    the template that no parameter declares still needs a value (never the template)."""
    try:
        declared = operation_parameters(spec, contract.operation)
    except KeyError:  # a contract built by hand, not from the document
        declared = []
    found = [p for p in declared if p.location == "path" or (p.location == "query" and p.required)]
    named = {p.name for p in found if p.location == "path"}
    found += [Parameter(n, "path", True) for n in path_names(contract.path) if n not in named]
    return found


class Resources:
    """The URL parameters of one WebSocket endpoint, per user, and what was made for them."""

    def __init__(self, ctx: RunContext, contract: WebSocketContract) -> None:
        self.ctx = ctx
        self.contract = contract
        self.parameters = _url_parameters(ctx.spec, contract)
        self.leftovers = Leftovers(ctx)
        self._token_for = tokens_of(ctx)
        """Objects made for the URL or the checks, deleted at the end."""
        self._filled: dict[str, Filled] = {}
        self._unfilled: dict[str, str] = {}
        self.attempted = False
        """Whether an object was asked for and not had (then an unfilled URL is not a
        matter of configuration: the contracts are inconclusive, not skipped)."""
        self._lock = asyncio.Lock()

    def _key(self, user: str | None) -> str:
        users = self.ctx.credentials.users
        return user or (users[0] if users else "")

    def path(self, user: str | None = None) -> str:
        """The path (with its query) to connect to; call :meth:`fill` for ``user`` first."""
        if not self.parameters:
            return self.contract.path
        filled = self._filled.get(self._key(user)) or self._filled.get(self._key(None))
        if filled is None:
            # Sending the template would only ever get a 404 reported as something else.
            raise ChatContractError(
                f"chatcontract bug: {self.contract.path} was not filled before connecting"
            )
        return filled.path

    def filled(self, user: str | None = None) -> Filled | None:
        return self._filled.get(self._key(user))

    async def fill(self, user: str | None = None) -> str | None:
        """Fill the URL for ``user``; ``None`` when done, else why it cannot be."""
        if not self.parameters:
            return None
        key = self._key(user)
        async with self._lock:
            if key in self._filled:
                return None
            if key in self._unfilled:
                return self._unfilled[key]
            problem = await self._fill(key)
            if problem is not None:
                self._unfilled[key] = problem
            return problem

    async def _fill(self, user: str) -> str | None:
        settings = self.ctx.settings.path_parameters
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        tried: list[str] = []
        for param in self.parameters:
            if param.name in settings:
                values[param.name], sources[param.name] = settings[param.name], _FROM_SETTING
                continue
            made = await self._create(param.name, user, values, tried)
            if made is not None:
                values[param.name], sources[param.name] = made
                continue
            if param.example is not None:
                values[param.name], sources[param.name] = param.example, _FROM_EXAMPLE
                continue
            where = f"{param.location} parameter {param.name!r}"
            detail = f" ({'; '.join(tried)})" if tried else ""
            self.attempted = self.attempted or bool(tried)
            return (
                f"the WebSocket URL {self.contract.path} needs a value for its {where}: "
                f"no link of the spec created one{detail}, the parameter has no example, and "
                f"the path_parameters setting names none"
            )
        path = fill_path(self.contract.path, values)
        query = {p.name: str(values[p.name]) for p in self.parameters if p.location == "query"}
        if query:
            path += ("&" if "?" in path else "?") + urlencode(query)
        self._filled[user] = Filled(path, sources)
        return None

    async def _create(
        self, name: str, user: str, known: Mapping[str, Any], tried: list[str]
    ) -> tuple[Any, str] | None:
        """A value for parameter ``name`` from an object made (or found) for it."""
        spec = self.ctx.spec
        for created in self.leftovers.created:
            if created.user == user and name in created.values:
                return created.values[name], created.producer.label
        for producer, _ in producers_of(spec, self.contract.operation, name):
            token = await self._token_for(user) if producer.security else None
            if token is None and not producer.is_public:
                tried.append(f"{producer.label}: no token for {user}")
                continue
            sample = build_sample(
                producer, operation_parameters(spec, producer), {**known}, identifiers=()
            )
            headers, params = carried(spec, producer, token)
            answer = await rest_call(
                self.ctx,
                sample.method,
                sample.path,
                headers=headers,
                query={**sample.query, **params},
                body=sample.body,
            )
            if not answer.ok:
                tried.append(f"{producer.label} answered {answer.line()}")
                continue
            values = link_values(spec, producer, answer.body)
            self.leftovers.record(producer, user, answer.body)
            if name in values:
                return values[name], producer.label
            tried.append(f"{producer.label}'s answer has no {name} where its link points")
        return None

    def record(self, producer: Operation, user: str | None, body: Any) -> None:
        """Keep an object made elsewhere (a thread for a flow), to delete it at the end."""
        self.leftovers.record(producer, self._key(user), body)

    async def cleanup(self, seconds: float) -> None:
        """Delete everything created (bounded): see :meth:`Leftovers.cleanup`."""
        await self.leftovers.cleanup(self._token_for, seconds)
