"""Fixtures: real reference servers on loopback and spec-validating clients."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from chatcontract.reference.server import RunningReference
from chatcontract.reference.testing import ReferenceFactory, reference_factory, reference_server
from chatcontract.reference.tokens import mint_token

from .helpers import TIMEOUT, ws_next

__all__ = ["Api", "ApiFactory", "api", "api_for", "reference_factory", "reference_server"]


class Api:
    """Clients for one server; every JSON answer is validated against the spec."""

    def __init__(self, server: RunningReference, stack: contextlib.ExitStack) -> None:
        self.server = server
        self._stack = stack

    def token(self, user: str = "alice", **overrides: Any) -> str:
        return mint_token(user, self.server.config, **overrides)

    def client(
        self, user: str | None = "alice", *, token: str | None = None, validate: bool = True
    ) -> httpx.Client:
        from .helpers import validate_response_hook

        headers = {}
        if token is None and user is not None:
            token = self.token(user)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        hooks = {"response": [validate_response_hook]} if validate else {}
        client = httpx.Client(
            base_url=self.server.url, headers=headers, timeout=TIMEOUT, event_hooks=hooks
        )
        return self._stack.enter_context(client)

    def ws(
        self,
        user: str | None = "alice",
        *,
        token: str | None = None,
        subprotocol: bool = False,
        query: str = "",
        welcome: bool = True,
    ) -> ClientConnection:
        """An open connection (its welcome frame consumed when ``welcome``)."""
        if token is None and user is not None:
            token = self.token(user)
        headers, protocols = {}, None
        if token is not None and subprotocol:
            encoded = base64.urlsafe_b64encode(token.encode()).rstrip(b"=").decode()
            protocols = ["jwt-auth", f"jwt.{encoded}"]
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        conn = connect(
            self.server.ws_url + query,
            additional_headers=headers,
            subprotocols=protocols,  # type: ignore[arg-type]
            open_timeout=TIMEOUT,
            close_timeout=2,
            max_size=None,
        )
        self._stack.enter_context(conn)
        if welcome:
            assert ws_next(conn)["type"] == "connection_established"
        return conn


@pytest.fixture
def api(reference_server: RunningReference) -> Iterator[Api]:
    with contextlib.ExitStack() as stack:
        yield Api(reference_server, stack)


class ApiFactory(Protocol):
    def __call__(self, *faults: str, **overrides: Any) -> Api: ...


@pytest.fixture
def api_for(reference_factory: ReferenceFactory) -> Iterator[ApiFactory]:
    """``api_for("thread-idor", event_delay_seconds=0.05)``: an Api on a configured server."""
    with contextlib.ExitStack() as stack:

        def make(*faults: str, **overrides: Any) -> Api:
            return Api(reference_factory(*faults, **overrides), stack)

        yield make
