"""Small real servers for foreign SSE specs: each writes its own wire bytes.

Every app is a Starlette app on 127.0.0.1, port 0 (uvicorn in a thread), whose
stream routes yield the exact bytes a real server of that family sends
(``StreamingResponse`` over a list of byte strings), so the framing is ours to
control: data-only chunks and a ``[DONE]`` sentinel, typed ``event:`` lines,
CRLF blocks and an ``end`` block without data, an untyped JSON stream.

Each app takes one optional *fault*, the one way it breaks its own spec, so a
test can check that exactly the expected finding comes out. Every app needs a
bearer token from :data:`TOKENS` on every route (and answers 401 otherwise)
and has one protected ``GET`` for the positive control.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..rest.servers import serving

__all__ = ["APPS", "SPECS", "TOKENS", "serving"]

SPECS = Path(__file__).resolve().parent / "specs"
TOKENS = {"tok-alice-7f3a9c2e41": "alice", "tok-bob-5d1e8b0c93": "bob"}
"""Bearer token -> user."""

App = Callable[[str | None], Starlette]


def _user(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return TOKENS.get(token) if scheme.lower() == "bearer" else None


def _unauthorized() -> JSONResponse:
    return JSONResponse(
        {"error": {"type": "authentication_error", "message": "invalid bearer token"}},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _stream(frames: list[bytes], media_type: str = "text/event-stream") -> StreamingResponse:
    async def body() -> Any:
        for frame in frames:
            yield frame

    return StreamingResponse(body(), media_type=media_type, headers={"Cache-Control": "no-cache"})


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _last_user_text(messages: Any) -> str:
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return str(message["content"])
    return ""


def _data(payload: Any) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def _typed(event: str, payload: Any, end: str = "\n") -> bytes:
    data = json.dumps(payload, separators=(",", ":"))
    return f"event: {event}{end}data: {data}{end}{end}".encode()


# -- OpenAI-style chat completions ----------------------------------------------------------

_OPENAI_FIELDS = {"model", "messages", "stream", "temperature", "max_tokens", "user"}


def _request_validator(spec: str, operation: str) -> Any:
    """The server validates bodies against its own schema, as a real API's framework does."""
    import jsonschema_rs

    from chatcontract.spec import load_spec

    schema = load_spec(SPECS / spec).operation(operation).request_schema
    return jsonschema_rs.validator_for(dict(schema or {}))


_OPENAI_REQUEST = _request_validator("openai_chat.yaml", "POST /v1/chat/completions")


def openai_app(fault: str | None = None) -> Starlette:
    """``POST /v1/chat/completions``: JSON, or with ``stream: true`` data-only chunks
    and a ``data: [DONE]`` sentinel. Faults: ``no-done`` (the sentinel is never
    sent), ``done-unterminated`` (the sentinel lacks its blank line)."""

    async def models(request: Request) -> Response:
        if _user(request) is None:
            return _unauthorized()
        return JSONResponse({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})

    async def completions(request: Request) -> Response:
        if _user(request) is None:
            return _unauthorized()
        body = await _json_body(request)
        unknown = sorted(set(body or {}) - _OPENAI_FIELDS)
        if (
            body is None
            or unknown
            or not isinstance(body.get("messages"), list)
            or not _OPENAI_REQUEST.is_valid(body)
        ):
            message = f"Unrecognized request argument supplied: {unknown[0]}" if unknown else ""
            return JSONResponse(
                {"error": {"type": "invalid_request_error", "message": message or "bad body"}},
                status_code=400,
            )
        said = _last_user_text(body["messages"])
        completion_id = f"chatcmpl-{secrets.token_hex(6)}"
        model = str(body.get("model", "gpt-4o-mini"))
        if body.get("stream") is not True:
            return JSONResponse(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": 1_725_700_000,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": f"You said: {said}"},
                            "finish_reason": "stop",
                        }
                    ],
                }
            )

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return _data(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": 1_725_700_000,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
            )

        frames = [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "You said: "}),
            chunk({"content": said}),
            chunk({}, "stop"),
        ]
        if fault == "done-unterminated":
            frames.append(b"data: [DONE]\n")
        elif fault != "no-done":
            frames.append(b"data: [DONE]\n\n")
        return _stream(frames)

    return Starlette(
        routes=[
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", completions, methods=["POST"]),
        ]
    )


# -- Anthropic-style messages ---------------------------------------------------------------


def anthropic_app(fault: str | None = None) -> Starlette:
    """``POST /v1/messages`` with ``stream: true``: typed ``event:`` lines, JSON data
    carrying the same ``type``. Fault: ``bad-delta`` (a text delta that is a number)."""

    async def models(request: Request) -> Response:
        if _user(request) is None:
            return _unauthorized()
        return JSONResponse({"data": [{"id": "claude-x", "type": "model"}], "has_more": False})

    async def messages(request: Request) -> Response:
        if _user(request) is None:
            return _unauthorized()
        body = await _json_body(request)
        if body is None or not isinstance(body.get("messages"), list):
            return JSONResponse(
                {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}},
                status_code=400,
            )
        said = _last_user_text(body["messages"])
        message_id = f"msg_{secrets.token_hex(8)}"
        text: Any = 5 if fault == "bad-delta" else f"You said: {said}"
        events = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "content": [],
                        "model": str(body.get("model", "claude-x")),
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": 12, "output_tokens": 1},
                    },
                },
            ),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            ("ping", {"type": "ping"}),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 15},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return _stream([_typed(name, payload) for name, payload in events])

    return Starlette(
        routes=[
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/messages", messages, methods=["POST"]),
        ]
    )


# -- a framework stream (LangServe-like): metadata, data, and an `end` block without data -----


def langserve_app(fault: str | None = None) -> Starlette:
    """``POST /chain/stream``: CRLF blocks ``metadata``, ``data`` (whose JSON ``type`` is
    ``AIMessageChunk``, not the SSE event name) and ``end`` with no data line.
    Fault: ``no-metadata`` (the run starts with data)."""

    async def config(request: Request) -> Response:
        if _user(request) is None:
            return _unauthorized()
        return JSONResponse({"title": "chain", "type": "object"})

    async def stream(request: Request) -> Response:
        if _user(request) is None:
            return _unauthorized()
        body = await _json_body(request)
        if body is None or not isinstance(body.get("input"), dict):
            return JSONResponse({"detail": "input is required"}, status_code=422)
        question = str(body["input"].get("question", ""))
        run_id = "3f0c8a52-9c1d-4b6e-8f27-1a2b3c4d5e6f"
        chunk_id = f"run-{run_id}"
        frames = [] if fault == "no-metadata" else [_typed("metadata", {"run_id": run_id}, "\r\n")]
        for piece in ("Answer to ", question):
            chunk = {
                "content": piece,
                "additional_kwargs": {},
                "response_metadata": {},
                "type": "AIMessageChunk",
                "name": None,
                "id": chunk_id,
            }
            frames.append(_typed("data", chunk, "\r\n"))
        frames.append(b"event: end\r\n\r\n")
        return _stream(frames, "text/event-stream; charset=utf-8")

    return Starlette(
        routes=[
            Route("/chain/input_schema", config, methods=["GET"]),
            Route("/chain/stream", stream, methods=["POST"]),
        ]
    )


# -- a FastAPI export (OpenAPI 3.1, no x- extension) ----------------------------------------

_ITEMS = [
    {"name": "Plumbus", "description": "A multi-purpose household device."},
    {"name": "Portal Gun", "description": None},
    {"name": "Meeseeks Box", "description": "A box that summons a Meeseeks."},
]


def fastapi_app(fault: str | None = None) -> Starlette:
    """``GET /items/stream``: one untyped ``data:`` JSON item per event, as FastAPI's
    ``EventSourceResponse`` writes them. Fault: ``missing-name``."""

    async def items(request: Request) -> Response:
        if _user(request) is None:
            return JSONResponse(
                {"detail": "Not authenticated"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return JSONResponse(_ITEMS)

    async def stream(request: Request) -> Response:
        if _user(request) is None:
            return JSONResponse(
                {"detail": "Not authenticated"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        sent = [dict(item) for item in _ITEMS]
        if fault == "missing-name":
            del sent[1]["name"]
        return _stream([_data(item) for item in sent], "text/event-stream; charset=utf-8")

    return Starlette(
        routes=[
            Route("/items/", items, methods=["GET"]),
            Route("/items/stream", stream, methods=["GET"]),
        ]
    )


# -- the standard discriminator (propertyName + mapping, no const) --------------------------


def jobs_app(fault: str | None = None) -> Starlette:
    """``POST /jobs/stream``: data whose ``kind`` the spec types only through a
    discriminator mapping. Fault: ``percent-overflow``."""

    async def jobs(request: Request) -> Response:
        if _user(request) is None:
            return _unauthorized()
        return JSONResponse({"jobs": []})

    async def stream(request: Request) -> Response:
        if _user(request) is None:
            return _unauthorized()
        body = await _json_body(request)
        if body is None or not isinstance(body.get("job"), str):
            return JSONResponse({"error": "job is required"}, status_code=400)
        job = f"job_{secrets.token_hex(4)}"
        frames = [b"retry: 3000\n\n"]
        for number, percent in enumerate((0, 150 if fault == "percent-overflow" else 50, 100), 1):
            frames.append(
                f"id: {job}:{number}\n".encode()
                + _data({"kind": "progress", "job_id": job, "percent": percent})
            )
        frames.append(
            f"id: {job}:4\n".encode()
            + _data({"kind": "result", "job_id": job, "output": f"done: {body['job']}"})
        )
        return _stream(frames)

    return Starlette(
        routes=[
            Route("/jobs", jobs, methods=["GET"]),
            Route("/jobs/stream", stream, methods=["POST"]),
        ]
    )


# -- an untyped stream ----------------------------------------------------------------------


def logs_app(fault: str | None = None) -> Starlette:
    """``GET /logs/stream``: JSON log lines that name no type, then a comment.
    Faults: ``loud-level`` (a level the enum lacks), ``unterminated`` (the last line
    lacks its blank line)."""

    async def sources(request: Request) -> Response:
        if _user(request) is None:
            return _unauthorized()
        return JSONResponse(["api", "worker"])

    async def stream(request: Request) -> Response:
        if _user(request) is None:
            return _unauthorized()
        lines = [
            ("info", "request served"),
            ("debug", "cache hit"),
            ("loud" if fault == "loud-level" else "warn", "slow query"),
        ]
        frames = [
            f"id: {number}\n".encode()
            + _data({"ts": f"2025-09-07T13:10:0{number}Z", "level": level, "message": text})
            for number, (level, text) in enumerate(lines, 1)
        ]
        if fault == "unterminated":
            frames.append(b'data: {"ts":"2025-09-07T13:10:09Z","level":"info","message":"bye"}\n')
        else:
            frames.append(b": end of tail\n\n")
        return _stream(frames)

    return Starlette(
        routes=[
            Route("/logs/sources", sources, methods=["GET"]),
            Route("/logs/stream", stream, methods=["GET"]),
        ]
    )


APPS: dict[str, App] = {
    "openai_chat": openai_app,
    "anthropic_messages": anthropic_app,
    "langserve_chain": langserve_app,
    "fastapi_items": fastapi_app,
    "discriminator_jobs": jobs_app,
    "untyped_logs": logs_app,
}
"""Spec name (``specs/<name>.yaml``) -> app factory taking the fault to seed."""
