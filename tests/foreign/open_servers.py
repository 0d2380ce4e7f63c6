"""A tiny foreign API that is not the reference: open, or open in one place only.

Three operations: a REST ``GET /status``, a ``POST /ask`` event stream whose
request schema forbids extra fields and requires a ``question`` and a
``level`` (no ``message``, no example), and a ``GET /ticks`` event stream
without a ``requestBody`` that refuses any body with 415. The server records
every request body and ``Authorization`` header it receives, so a test can
check what chatcontract actually sent.
"""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "ASK_SCHEMA",
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


def partly_open_spec() -> dict[str, Any]:
    """The same API bearer-protected, except ``GET /ticks`` (``security: []``)."""
    spec = open_spec()
    spec["security"] = [{"bearerAuth": []}]
    spec["components"]["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    spec["paths"]["/ticks"]["get"]["security"] = []
    return spec


@dataclass
class Received:
    """What the server was sent, per path."""

    bodies: dict[str, list[Any]] = field(default_factory=dict)
    """Path -> every request body, JSON-decoded (``None``: empty; raw text if not JSON)."""
    authorization: dict[str, list[str | None]] = field(default_factory=dict)

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


def open_app(received: Received, *, protected: bool = False) -> Starlette:
    """The server; with ``protected``, every route but ``/ticks`` wants a bearer token."""
    ask = jsonschema_rs.validator_for(ASK_SCHEMA)

    def refused(request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not protected or header.removeprefix("Bearer ") in TOKENS:
            return None
        return JSONResponse({"error": "unauthorized"}, 401, headers={"WWW-Authenticate": "Bearer"})

    async def status(request: Request) -> Response:
        received.note("/status", await request.body(), request.headers.get("authorization"))
        return refused(request) or JSONResponse({"ok": True})

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
