"""Black-box helpers for the reference server tests: spec validation, SSE, WS."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import httpx
import jsonschema_rs
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from websockets.sync.client import ClientConnection
from werkzeug.datastructures import Headers, ImmutableMultiDict

from chatcontract.reference.contract import load_contract
from chatcontract.sse.parser import SSEComment, SSEEvent, SSEParser

CONTRACT = load_contract()
DOC: Mapping[str, Any] = CONTRACT.document
# openapi-core knows only a fixed list of JSON media types; RFC 9457's
# problem+json is JSON too, and must be validated as such.
OPENAPI = OpenAPI(
    CONTRACT.openapi.spec,
    config=Config(extra_media_type_deserializers={"application/problem+json": json.loads}),
)
TIMEOUT = 5.0


def component_validator(ref: str) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for({"$ref": ref, "components": DOC["components"]})


def _validators(mapping: Mapping[str, Any]) -> dict[str, jsonschema_rs.Validator]:
    return {name: component_validator(ref["$ref"]) for name, ref in mapping.items()}


_CHAT_EVENT = DOC["components"]["schemas"]["ChatStreamEvent"]["discriminator"]["mapping"]
EVENT_VALIDATORS = {kind: component_validator(ref) for kind, ref in _CHAT_EVENT.items()}
WS_SERVER_VALIDATORS = _validators(DOC["paths"]["/ws"]["get"]["x-websocket"]["messages"]["server"])


def schema_errors(validator: jsonschema_rs.Validator, instance: Any) -> list[str]:
    return [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(instance)]


def unsigned_token(claims: Mapping[str, Any], alg: str = "none") -> str:
    """A JWT with no signature, as an attacker would send it (PyJWT refuses to build one)."""

    def part(data: Mapping[str, Any]) -> str:
        raw = json.dumps(dict(data), separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': alg, 'typ': 'JWT'})}.{part(claims)}."


# openapi-core adapters for httpx


class _OpenAPIRequest:
    def __init__(self, request: httpx.Request) -> None:
        self._request = request
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(request.url.params.multi_items()),
            header=Headers(request.headers.multi_items()),
            cookie=ImmutableMultiDict(),
        )

    @property
    def host_url(self) -> str:
        return f"{self._request.url.scheme}://{self._request.url.netloc.decode()}"

    @property
    def path(self) -> str:
        return self._request.url.path

    @property
    def method(self) -> str:
        return self._request.method.lower()

    @property
    def body(self) -> bytes:
        return self._request.content

    @property
    def content_type(self) -> str:
        return str(self._request.headers.get("content-type", ""))


class _OpenAPIResponse:
    def __init__(self, response: httpx.Response, data: bytes) -> None:
        self._response = response
        self.data = data

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def content_type(self) -> str:
        return str(self._response.headers.get("content-type", ""))

    @property
    def headers(self) -> httpx.Headers:
        return self._response.headers


def spec_errors(response: httpx.Response, data: bytes | None = None) -> list[str]:
    """What is wrong with ``response`` per the spec ([] when fine or not a spec route)."""
    body = response.content if data is None else data
    result = OPENAPI.unmarshal_response(
        _OpenAPIRequest(response.request), _OpenAPIResponse(response, body)
    )
    errors = [e for e in result.errors if not isinstance(e, PathNotFound | OperationNotFound)]
    return [f"{type(e).__name__}: {e} {e.__cause__ or ''}" for e in errors]


def validate_response_hook(response: httpx.Response) -> None:
    """httpx event hook: every non-streaming answer must match the spec."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return  # stream bodies are checked event by event (assert_valid_events)
    response.read()
    errors = spec_errors(response)
    assert not errors, f"{response.request.method} {response.request.url}: {errors}"


def is_spec_route(response: httpx.Response) -> bool:
    result = OPENAPI.unmarshal_response(
        _OpenAPIRequest(response.request), _OpenAPIResponse(response, b"")
    )
    return not any(isinstance(e, PathNotFound | OperationNotFound) for e in result.errors)


# SSE


def parse_sse(raw: bytes) -> list[SSEEvent | SSEComment]:
    parser = SSEParser()
    parser.receive_data(raw)
    parser.receive_eof()
    assert parser.violation is None, parser.violation
    return parser.events_received()


def sse_events(items: Iterable[SSEEvent | SSEComment]) -> list[SSEEvent]:
    return [i for i in items if isinstance(i, SSEEvent)]


def sse_payloads(items: Iterable[SSEEvent | SSEComment]) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in sse_events(items)]


def assert_valid_events(events: Iterable[Mapping[str, Any]]) -> None:
    for event in events:
        validator = EVENT_VALIDATORS[event["type"]]
        errors = schema_errors(validator, event)
        assert not errors, f"{event['type']}: {errors}"


def types(events: Iterable[Mapping[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def assert_agent_run(events: Sequence[Mapping[str, Any]], *, thread_id: str | None = None) -> None:
    """The spec's agent-run sequence: first, pairs, order, one terminal last, correlation."""
    assert events, "no events"
    assert_valid_events(events)
    kinds = types(events)
    assert kinds[0] == "agent_started"
    assert kinds[-1] in {"agent_completed", "agent_error"}
    assert sum(k in {"agent_completed", "agent_error"} for k in kinds) == 1
    assert len({e["run_id"] for e in events}) == 1
    if thread_id is not None:
        assert {e["thread_id"] for e in events} == {thread_id}
    open_calls: set[str] = set()
    for event in events:
        call_id = event["payload"].get("tool_call_id")
        if event["type"] == "tool_executing":
            open_calls.add(call_id)
        elif event["type"] == "tool_completed":
            assert call_id in open_calls, f"{call_id} completed before it was executing"
            open_calls.remove(call_id)
    assert not open_calls
    if kinds[-1] == "agent_completed":
        chunks = [e for e in events if e["type"] == "response_chunk"]
        assert chunks
        assert chunks[-1]["payload"]["is_final"] is True
        assert all(c["payload"]["is_final"] is False for c in chunks[:-1])


# WebSocket


def ws_frame(ws: ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The next frame, validated against its x-websocket server schema."""
    frame = json.loads(ws.recv(timeout=timeout))
    errors = schema_errors(WS_SERVER_VALIDATORS[frame["type"]], frame)
    assert not errors, f"{frame['type']}: {errors}"
    return dict(frame)


def ws_next(ws: ClientConnection, *, skip: Iterable[str] = ("ping",)) -> dict[str, Any]:
    """The next frame that is not a heartbeat."""
    ignored = set(skip)
    while True:
        frame = ws_frame(ws)
        if frame["type"] not in ignored:
            return frame


def ws_frames(ws: ClientConnection, *, until: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Frames up to and including the first whose type is in ``until``."""
    stop = set(until)
    while True:
        frame = ws_next(ws)
        yield frame
        if frame["type"] in stop:
            return
