"""A tiny foreign API that is not the reference: open, or open in one place only.

Three operations: a REST ``GET /status``, a ``POST /ask`` event stream whose
request schema forbids extra fields and requires a ``question`` and a
``level`` (no ``message``, no example), and a ``GET /ticks`` event stream
without a ``requestBody`` that refuses any body with 415. The server records
every request body and ``Authorization`` header it receives, so a test can
check what chatcontract actually sent.

The protected variant takes its token one way only, named in
:data:`SCHEMES`: ``Authorization: Bearer``, ``Authorization: token``, an
``X-API-Key`` header, a ``sid`` cookie or an ``api_key`` query parameter. A
token anywhere else is refused with 401, so a run that ignores the declared
scheme fails loudly.
"""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "ASK_SCHEMA",
    "SCHEMES",
    "TOKENS",
    "Received",
    "open_app",
    "open_spec",
    "partly_open_spec",
]

ASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["question", "level"],
    "properties": {
        "question": {"type": "string", "minLength": 3, "maxLength": 200},
        "level": {"type": "integer", "minimum": 1, "maximum": 5},
        "style": {"type": "string", "enum": ["short", "long"]},
    },
}
TOKENS = {"tok-alice-0123456789": "alice", "tok-bob-0123456789": "bob"}
"""Bearer token -> user, for the partly open variant."""

_ANSWER = {
    "oneOf": [
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["type", "run_id", "text"],
            "properties": {
                "type": {"const": "chunk"},
                "run_id": {"type": "string"},
                "text": {"type": "string"},
            },
        },
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["type", "run_id"],
            "properties": {"type": {"const": "done"}, "run_id": {"type": "string"}},
        },
    ]
}
_TICK = {
    "oneOf": [
        {
            "type": "object",
            "required": ["type", "n"],
            "properties": {"type": {"const": "tick"}, "n": {"type": "integer"}},
        },
        {"type": "object", "required": ["type"], "properties": {"type": {"const": "end"}}},
    ]
}


def _stream(content_schema: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "x-tier": "P1",
        "x-stream": {
            "event-type-from": "data",
            "discriminator": "type",
            "deadlines": {"first-event-seconds": 5, "idle-seconds": 5, "total-seconds": 10},
        },
        **extra,
        "responses": {
            "200": {
                "description": "An event stream.",
                "content": {
                    "text/event-stream": {
                        "itemSchema": {
                            "type": "object",
                            "required": ["data"],
                            "properties": {
                                "data": {
                                    "type": "string",
                                    "contentMediaType": "application/json",
                                    "contentSchema": content_schema,
                                }
                            },
                        }
                    }
                },
            },
            "401": {"description": "No valid token."},
            "415": {"description": "A body was sent."},
            "422": {"description": "The body is invalid."},
        },
    }


def open_spec() -> dict[str, Any]:
    """The API with no security scheme at all."""
    return {
        "openapi": "3.2.0",
        "info": {"title": "Open answers", "version": "1.0.0"},
        "paths": {
            "/status": {
                "get": {
                    "operationId": "getStatus",
                    "x-tier": "P1",
                    "responses": {
                        "200": {
                            "description": "Up.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["ok"],
                                        "properties": {"ok": {"type": "boolean"}},
                                    }
                                }
                            },
                        },
                        "401": {"description": "No valid token."},
                    },
                }
            },
            "/ask": {
                "post": _stream(
                    _ANSWER,
                    {
                        "operationId": "ask",
                        "x-sequence": ["answer"],
                        "requestBody": {
                            "required": True,
                            "content": {"application/json": {"schema": copy.deepcopy(ASK_SCHEMA)}},
                        },
                    },
                )
            },
            "/ticks": {"get": _stream(_TICK, {"operationId": "ticks"})},
        },
        "components": {
            "x-sequences": {
                "answer": {
                    "events": ["chunk", "done"],
                    "first": ["chunk"],
                    "terminal": ["done"],
                    "correlate": [{"pointer": "/run_id", "source": "consistent"}],
                }
            }
        },
    }


def _prefixed(header: str, scheme: str) -> Callable[[Request], str | None]:
    def token(request: Request) -> str | None:
        found, _, value = request.headers.get(header, "").partition(" ")
        return value if found.lower() == scheme else None

    return token


SCHEMES: dict[str, tuple[dict[str, Any], Callable[[Request], str | None]]] = {
    "bearer": ({"type": "http", "scheme": "bearer"}, _prefixed("authorization", "bearer")),
    "token": ({"type": "http", "scheme": "token"}, _prefixed("authorization", "token")),
    "header": (
        {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        lambda request: request.headers.get("x-api-key"),
    ),
    "cookie": (
        {"type": "apiKey", "in": "cookie", "name": "sid"},
        lambda request: request.cookies.get("sid"),
    ),
    "query": (
        {"type": "apiKey", "in": "query", "name": "api_key"},
        lambda request: request.query_params.get("api_key"),
    ),
}
"""Scheme name -> its OpenAPI security scheme, and where the server looks for the token."""


def partly_open_spec(scheme: str = "bearer", refusal: int = 401) -> dict[str, Any]:
    """The same API protected by :data:`SCHEMES` ``[scheme]``, except ``GET /ticks``
    (``security: []``); a missing or wrong token is refused with ``refusal``."""
    spec = open_spec()
    for item in spec["paths"].values():
        for op in item.values():
            responses = op["responses"]
            responses[str(refusal)] = responses.pop("401")
    spec["security"] = [{"theKey": []}]
    spec["components"]["securitySchemes"] = {"theKey": SCHEMES[scheme][0]}
    spec["paths"]["/ticks"]["get"]["security"] = []
    return spec


@dataclass
class Received:
    """What the server was sent, per path."""

    bodies: dict[str, list[Any]] = field(default_factory=dict)
    """Path -> every request body, JSON-decoded (``None``: empty; raw text if not JSON)."""
    authorization: dict[str, list[str | None]] = field(default_factory=dict)
    tokens: dict[str, list[str | None]] = field(default_factory=dict)
    """Path -> the token found where the protecting scheme says (protected variant)."""

    def note(self, path: str, body: bytes, authorization: str | None) -> Any:
        try:
            decoded: Any = json.loads(body) if body else None
        except ValueError:
            decoded = body.decode("utf-8", "replace")
        self.bodies.setdefault(path, []).append(decoded)
        self.authorization.setdefault(path, []).append(authorization)
        return decoded


def _events(events: list[dict[str, Any]]) -> StreamingResponse:
    async def frames() -> AsyncIterator[bytes]:
        for event in events:
            yield f"data: {json.dumps(event)}\n\n".encode()
            await asyncio.sleep(0)

    return StreamingResponse(
        frames(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def open_app(
    received: Received,
    *,
    protected: bool = False,
    scheme: str = "bearer",
    broken_status: bool = False,
    refusal: int = 401,
) -> Starlette:
    """The server; with ``protected``, every route but ``/ticks`` wants a token presented
    as :data:`SCHEMES` ``[scheme]`` says. ``broken_status``: ``/status`` breaks its schema."""
    ask = jsonschema_rs.validator_for(ASK_SCHEMA)
    presented = SCHEMES[scheme][1]

    def refused(request: Request) -> Response | None:
        token = presented(request)
        received.tokens.setdefault(request.url.path, []).append(token)
        if not protected or token in TOKENS:
            return None
        headers = {"WWW-Authenticate": scheme} if refusal == 401 else {}
        return JSONResponse({"error": "unauthorized"}, refusal, headers=headers)

    async def status(request: Request) -> Response:
        received.note("/status", await request.body(), request.headers.get("authorization"))
        return refused(request) or JSONResponse({"ok": "yes" if broken_status else True})

    async def ask_route(request: Request) -> Response:
        body = received.note("/ask", await request.body(), request.headers.get("authorization"))
        denied = refused(request)
        if denied is not None:
            return denied
        if not ask.is_valid(body):
            return JSONResponse({"error": "invalid body"}, 422)
        run = f"run_{secrets.token_hex(6)}"
        return _events(
            [
                {"type": "chunk", "run_id": run, "text": f"you asked: {body['question']}"},
                {"type": "done", "run_id": run},
            ]
        )

    async def ticks(request: Request) -> Response:
        body = await request.body()
        received.note("/ticks", body, request.headers.get("authorization"))
        if body or "content-type" in request.headers:
            return JSONResponse({"error": "this route takes no body"}, 415)
        return _events([{"type": "tick", "n": 1}, {"type": "tick", "n": 2}, {"type": "end"}])

    return Starlette(
        routes=[
            Route("/status", status, methods=["GET"]),
            Route("/ask", ask_route, methods=["POST"]),
            Route("/ticks", ticks, methods=["GET"]),
        ]
    )
