"""Loading the chat API contract into the model, and agreement with the anchor tools."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from openapi_core import OpenAPI

from chatcontract.errors import SpecError
from chatcontract.schemas import compile_schema
from chatcontract.spec import load_spec
from chatcontract.spec.build import iter_operations
from chatcontract.spec.refs import inline

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(ROOT / "openapi.yaml")


def test_schemathesis_loads_the_spec_without_errors() -> None:
    """REST is property-tested through schemathesis: it must accept our document as is."""
    schema = schemathesis.openapi.from_dict(dict(SPEC.document))
    labels = []
    for result in schema.get_all_operations():
        labels.append(result.ok().label)
    assert len(labels) == len(SPEC.operations)


def test_openapi_core_loads_the_spec_and_builds_validators() -> None:
    """The reference server validates requests through openapi-core from the same file."""
    api = OpenAPI.from_dict(dict(SPEC.document))
    assert api.spec is not None


def test_every_operation_has_a_tier_and_an_id() -> None:
    for _path, _method, pointer, op in iter_operations(SPEC.document):
        assert op.get("x-tier") in {"P1", "P2"}, pointer
        assert op.get("operationId"), pointer


def test_model_has_the_streams_the_websocket_and_the_sequences() -> None:
    labels = {s.operation.label for s in SPEC.streams}
    assert labels == {"POST /api/chat/stream", "POST /api/agents/stream"}
    assert [ws.path for ws in SPEC.websockets] == ["/ws"]
    assert set(SPEC.sequences) == {"agent-run", "chat-stream"}
    assert SPEC.token_url == "/oauth/token"
    chat = SPEC.stream("streamChat")
    assert chat.event_type_from == "data"
    assert chat.sequences == ("chat-stream", "agent-run")
    agents = SPEC.stream("POST /api/agents/stream")
    assert agents.event_type_from == "event"
    assert agents.resume_header == "Last-Event-ID"


def test_agent_events_are_one_schema_shared_by_sse_and_websocket() -> None:
    """One envelope for every transport: the same component backs SSE and WS events."""
    ws = SPEC.websockets[0]
    for stream in SPEC.streams:
        for name in ("agent_started", "tool_executing", "agent_completed", "agent_error"):
            assert stream.event_schemas[name] == ws.server_schemas[name]


def test_websocket_auth_contract_is_modelled() -> None:
    ws = SPEC.websockets[0]
    assert [c.kind for c in ws.carriers] == ["header", "subprotocol"]
    assert ws.carriers[1].protocol == "jwt-auth"
    assert [c.kind for c in ws.forbidden_carriers] == ["query"]
    assert set(ws.rejection_statuses) == {401, 403}
    assert ws.welcome_type == "connection_established"
    assert ws.on_invalid_input["oversize"].close_code == 1009
    assert ws.on_invalid_input["invalid-utf8"].close_code == 1007
    assert ws.on_invalid_input["invalid-json"].error_code == "FORMAT_ERROR"


def _examples() -> list[object]:
    found: list[tuple[str, object, object]] = []
    doc = SPEC.document
    for _path, _method, pointer, op in iter_operations(doc):
        body = inline(doc, op.get("requestBody") or {})
        for media in (body.get("content") or {}).values():
            for name, example in (media.get("examples") or {}).items():
                found.append((f"{pointer} example {name}", media["schema"], example["value"]))
        for param in inline(doc, op.get("parameters") or []):
            if "example" in param:
                where = f"{pointer} parameter {param['name']}"
                found.append((where, param["schema"], param["example"]))
    for ws in SPEC.websockets:
        for flow in ws.flows:
            found.append((f"flow {flow.name}", ws.client_schemas[flow.send], flow.example))
    return [pytest.param(*item, id=item[0]) for item in found]


@pytest.mark.parametrize(("where", "schema", "example"), _examples())
def test_every_example_in_the_spec_satisfies_its_schema(
    where: str, schema: object, example: object
) -> None:
    """Examples seed schemathesis' examples phase: an invalid one would test nothing."""
    errors = compile_schema(inline(SPEC.document, schema)).errors(example)  # type: ignore[arg-type]
    assert not errors, (where, [e.line() for e in errors])


def test_load_spec_raises_spec_error_with_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("openapi: 3.2.0\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get: {}\n")
    with pytest.raises(SpecError) as info:
        load_spec(bad)
    assert info.value.lines() == [f"{bad}: /paths/~1x/get/responses: GET /x documents no responses"]


def test_a_spec_loads_from_a_url_and_from_a_dict() -> None:
    """Specs served by the API itself (or built in code) load like files."""
    import http.server
    import threading

    text = (ROOT / "openapi.yaml").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/openapi.yaml" else 404)
            self.end_headers()
            if self.path == "/openapi.yaml":
                self.wfile.write(text)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        from_url = load_spec(url + "/openapi.yaml")
        with pytest.raises(SpecError) as missing:
            load_spec(url + "/nope.yaml")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert [op.label for op in from_url.operations] == [op.label for op in SPEC.operations]
    assert missing.value.lines() == [f"{url}/nope.yaml: /: cannot fetch the spec: HTTP 404"]
    from_dict = load_spec(dict(SPEC.document))
    assert from_dict.source == "<dict>"
    assert from_dict.sequences == SPEC.sequences
