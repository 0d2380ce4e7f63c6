"""Hygiene and limits speak the contract's words: rename them in the spec and the checks follow."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from chatcontract.reference.config import ServerConfig
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.spec import Spec, WebSocketDeadlines, load_spec
from chatcontract.ws.client import WsTarget
from chatcontract.ws.frames import FrameValidator
from chatcontract.ws.handshake import Access
from chatcontract.ws.hygiene import (
    INVALID_UTF8,
    hygiene_contracts,
    invalid_json,
    invalid_utf8_frame,
    oversize_frame,
    unknown_type_frame,
)
from chatcontract.ws.limits import rate_limit
from chatcontract.ws.vocabulary import NO_ERROR_FRAME, NO_PROBE
from tests.ws import hostile
from tests.ws.helpers import _SPEC, MintedCredentials, make_ctx, messages, spec_with, target_of

DEADLINES = WebSocketDeadlines(handshake=2.0, first_frame=1.0, idle=1.0, total=5.0)
ERROR_ROWS = ("hygiene/invalid-json", "hygiene/unknown-type", "hygiene/schema-mismatch")
CLOSE_ROWS = ("hygiene/oversize", "hygiene/invalid-utf8")


def _renamed() -> Spec:
    """The bundled contract with its error frame, rate-limit code and message frame renamed."""
    doc: Any = copy.deepcopy(_SPEC.document)
    ws = doc["paths"]["/ws"]["get"]["x-websocket"]
    schemas = doc["components"]["schemas"]
    server, client = ws["messages"]["server"], ws["messages"]["client"]
    server["fault"] = server.pop("error")
    schemas["ErrorFrame"]["properties"]["type"]["const"] = "fault"
    codes = schemas["ErrorFrame"]["properties"]["error_code"]["enum"]
    codes[codes.index("RATE_LIMITED")] = "SLOW_DOWN"
    ws["on-invalid-input"]["rate-limited"]["error-code"] = "SLOW_DOWN"
    client["say"] = client.pop("user_message")
    schemas["ClientUserMessage"]["properties"]["type"]["const"] = "say"
    flow = next(f for f in ws["flows"] if f["send"] == "user_message")
    flow["send"] = flow["example"]["type"] = "say"
    return spec_with(DEADLINES, base=load_spec(doc))


RENAMED = _renamed()


def _target(spec: Spec, url: str = "http://127.0.0.1:9") -> WsTarget:
    return target_of(make_ctx(url, MintedCredentials(ServerConfig()), spec=spec))


@contextlib.asynccontextmanager
async def compliant_server(spec: Spec, *, error_type: str, rate_code: str) -> AsyncIterator[str]:
    """A tiny server that keeps ``spec``'s /ws contract, naming its error frame and
    rate-limit code as told (the spec's own words, or another API's)."""
    contract = spec.websockets[0]
    validator = FrameValidator(contract)
    per_minute = contract.limits.messages_per_minute or 0

    async def handler(conn: ServerConnection) -> None:
        async def error(code: str) -> None:
            await conn.send(json.dumps({"type": error_type, "error_code": code, "message": "no"}))

        await conn.send(json.dumps(hostile.WELCOME))
        received = 0
        async for message in conn:  # websockets itself closes 1009 and 1007
            received += 1
            try:
                value = json.loads(message)
            except ValueError:
                await error("FORMAT_ERROR")
                continue
            kind = validator.kind_of(value)
            if received > per_minute:
                await error(rate_code)
            elif kind not in validator.client_types:
                await error("UNKNOWN_MESSAGE_TYPE")
            elif not validator.check_client(value).ok:
                await error("VALIDATION_ERROR")
            elif kind == "ping":
                await conn.send(json.dumps({"type": "pong"}))

    async with serve(
        handler,
        "127.0.0.1",
        0,
        max_size=contract.limits.max_message_bytes,
        ping_interval=None,
        close_timeout=1,
        compression=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"


async def _rows(spec: Spec, error_type: str, rate_code: str) -> dict[str, ContractResult]:
    async with compliant_server(RENAMED, error_type=error_type, rate_code=rate_code) as url:
        target = _target(spec, url)
        access = Access(primary=target.contract.carriers[0])
        results = await hygiene_contracts(target, access)
        results.append(await rate_limit(target, access))
    return {r.id.removeprefix("websocket/GET /ws/"): r for r in results}


def test_a_server_speaking_the_renamed_vocabulary_keeps_hygiene_and_limits() -> None:
    """The error frame and the rate-limit code come from the contract, not the reference API."""
    results = asyncio.run(_rows(RENAMED, "fault", "SLOW_DOWN"))
    assert {k: r.outcome for k, r in results.items()} == dict.fromkeys(
        (*ERROR_ROWS, *CLOSE_ROWS, "limits/rate"), Outcome.PASSED
    ), {k: (r.reason, messages(r)) for k, r in results.items()}
    assert results["limits/rate"].name == "more than 100 messages a minute get SLOW_DOWN"


def test_the_reference_words_do_not_satisfy_a_contract_that_renamed_them() -> None:
    """``error``/``RATE_LIMITED`` would pass if they were hard-coded; here they are wrong."""
    results = asyncio.run(_rows(RENAMED, "error", "RATE_LIMITED"))
    for key in ERROR_ROWS:
        assert results[key].outcome is Outcome.FAILED, key
        assert "answered with 'error' instead of an error frame" in messages(results[key])
    for key in CLOSE_ROWS:  # close codes do not depend on the renamed words
        assert results[key].outcome is Outcome.PASSED, (key, messages(results[key]))
    rate = results["limits/rate"]
    assert rate.outcome is Outcome.FAILED
    assert "none got SLOW_DOWN" in messages(rate)


def test_without_an_error_frame_error_reactions_are_inconclusive_not_passed() -> None:
    """A server frame that carries error_code is what recognises FORMAT_ERROR and friends."""
    server = {k: v for k, v in RENAMED.websockets[0].server_schemas.items() if k != "fault"}
    spec = spec_with(DEADLINES, base=RENAMED, server_schemas=server)
    results = asyncio.run(_rows(spec, "fault", "SLOW_DOWN"))
    for key in (*ERROR_ROWS, "limits/rate"):
        assert results[key].outcome is Outcome.INCONCLUSIVE, key
        assert results[key].reason == NO_ERROR_FRAME
    for key in CLOSE_ROWS:
        assert results[key].outcome is Outcome.PASSED, (key, messages(results[key]))


def test_without_a_probe_flow_hygiene_and_rate_are_inconclusive() -> None:
    """The probe is the barrier after each input; guessing ``ping`` could pass a swallower."""
    flows = tuple(f for f in RENAMED.websockets[0].flows if f.send != "ping")
    target = _target(spec_with(DEADLINES, base=RENAMED, flows=flows))
    access = Access(primary=target.contract.carriers[0])

    async def main() -> list[ContractResult]:
        return [*await hygiene_contracts(target, access), await rate_limit(target, access)]

    results = asyncio.run(main())
    assert [r.outcome for r in results] == [Outcome.INCONCLUSIVE] * 6
    assert {r.reason for r in results} == {NO_PROBE}


@pytest.mark.parametrize(("spec", "kind"), [(_SPEC, "user_message"), (RENAMED, "say")])
def test_the_oversize_input_is_the_message_flows_frame_padded_to_the_limit(
    spec: Spec, kind: str
) -> None:
    """Exactly one byte too many, valid JSON, shaped like the contract's own chat message."""
    target = _target(spec_with(DEADLINES, base=spec))
    limit = target.contract.limits.max_message_bytes
    assert limit is not None
    text = oversize_frame(target, limit + 1)
    assert len(text.encode()) == limit + 1
    value = json.loads(text)
    assert value["type"] == kind
    assert set(value["payload"]["content"]) == {"x"}
    data = invalid_utf8_frame(target)
    with pytest.raises(UnicodeDecodeError):
        data.decode()
    assert INVALID_UTF8 in data
    assert data.startswith(f'{{"type":"{kind}"'.encode())


def test_without_a_frame_to_pad_the_oversize_input_is_a_generic_object() -> None:
    """A ping frame has no string field: the server must refuse by size before parsing anyway."""
    ping = tuple(f for f in RENAMED.websockets[0].flows if f.send == "ping")
    target = _target(spec_with(DEADLINES, base=RENAMED, flows=ping))
    text = oversize_frame(target, 8193)
    assert len(text.encode()) == 8193
    assert list(json.loads(text)) == ["chatcontract_padding"]
    assert INVALID_UTF8 in invalid_utf8_frame(target)


def test_the_invalid_json_and_unknown_type_inputs_are_built_from_the_probe() -> None:
    target = _target(RENAMED)
    text = invalid_json(target)
    with pytest.raises(ValueError, match="Expecting"):
        json.loads(text)
    assert json.loads(text + "}") == {"type": "ping", "payload": {}}
    assert unknown_type_frame(target)["type"] not in target.validator.client_types
