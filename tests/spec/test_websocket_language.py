"""The grown x-websocket language: read into the model, and every cross-check located.

One cause gives one error: a bad pointer is reported once, never again by
each rule that would have used it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatcontract.spec import (
    Channel,
    EventKind,
    FlowCorrelation,
    Reaction,
    diagnose,
    load_spec,
)

KERNEL = Path(__file__).resolve().parents[1] / "foreign" / "specs" / "kernel_full.yaml"
WS = "/paths/~1api~1kernel~1channels/get/x-websocket"
Doc = dict[str, Any]


def _kernel() -> Doc:
    loaded = yaml.safe_load(KERNEL.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _ws(doc: Doc) -> Doc:
    ws: Doc = doc["paths"]["/api/kernel/channels"]["get"]["x-websocket"]
    return ws


def _errors(doc: Doc) -> list[tuple[str, str]]:
    _, found = diagnose(doc)
    return [(d.pointer, d.message) for d in found if d.severity == "error"]


def test_the_model_holds_kinds_correlation_channels_uniques_and_reactions() -> None:
    spec = load_spec(KERNEL)
    (ws,) = spec.websockets
    assert ws.discriminator == "/header/msg_type"
    assert ws.unique == ("/header/msg_id", "/header/date")
    assert (ws.heartbeat_kind, ws.heartbeat_interval, ws.heartbeat_pong_expected) == (
        "ping-frame",
        1,
        True,
    )
    assert ws.on_invalid_input["invalid-json"] == Reaction(ignored=True)
    assert ws.on_invalid_input["invalid-utf8"] == Reaction(dropped="forbidden")
    assert not ws.on_invalid_input["invalid-utf8"].declared
    execute = ws.flows[1]
    assert execute.correlate == FlowCorrelation("/header/msg_id", "/parent_header/msg_id")
    assert execute.channel == Channel("/channel", "iopub")
    assert execute.unsolicited == ("status",)
    assert spec.sequences["execution"].kinds == (
        EventKind("status-busy", "status", (("/content/execution_state", "busy"),)),
        EventKind("status-idle", "status", (("/content/execution_state", "idle"),)),
    )


def test_a_standard_discriminator_on_a_one_of_types_the_frames() -> None:
    doc = _kernel()
    messages = _ws(doc)["messages"]
    del messages["discriminator"]
    messages["client"] = {
        "kernel_info_request": {
            "oneOf": [{"$ref": "#/components/schemas/KernelInfoRequest"}],
            "discriminator": {"propertyName": "kind"},
        },
        "execute_request": {"$ref": "#/components/schemas/ExecuteRequest"},
    }
    del messages["unique"]
    assert load_spec(doc).websockets[0].discriminator == "kind"


def test_an_unresolvable_discriminator_pointer_is_one_error() -> None:
    doc = _kernel()
    _ws(doc)["messages"]["discriminator"] = "/head/msg_type"
    assert _errors(doc) == [
        (
            f"{WS}/messages/discriminator",
            "discriminator /head/msg_type is declared by no message schema: no frame can be typed",
        )
    ]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (1006, "close code 1006 (abnormal closure) is never sent in a close frame"),
        (1005, "close code 1005 (no status received) is never sent in a close frame"),
        (1015, "close code 1015 (TLS failure) is never sent in a close frame"),
        (1004, "close code 1004 is reserved"),
        (2500, "close code 2500 is unassigned"),
    ],
)
def test_close_codes_a_server_cannot_send_are_refused(code: int, message: str) -> None:
    doc = _kernel()
    _ws(doc)["on-invalid-input"]["oversize"] = {"close-code": code}
    ((pointer, found),) = _errors(doc)
    assert pointer == f"{WS}/on-invalid-input/oversize/close-code"
    assert found.startswith(message)


@pytest.mark.parametrize("code", [1000, 1008, 1011, 3000, 4400, 4999])
def test_sendable_close_codes_pass(code: int) -> None:
    doc = _kernel()
    _ws(doc)["auth"]["close-after-accept"] = {"code": code}
    assert _errors(doc) == []


def test_a_reaction_cannot_be_both_ignored_and_an_error() -> None:
    doc = _kernel()
    _ws(doc)["on-invalid-input"]["invalid-json"] = {"ignored": True, "error-code": "X"}
    ((pointer, _),) = _errors(doc)
    assert pointer == f"{WS}/on-invalid-input/invalid-json"


def test_flow_pointers_and_unsolicited_types_must_resolve() -> None:
    doc = _kernel()
    flow = _ws(doc)["flows"][1]
    flow["correlate"] = {"sent": "/header/id", "received": "/parent/msg_id"}
    flow["channel"] = {"pointer": "/chan", "value": "iopub"}
    flow["unsolicited"] = ["stream"]
    _ws(doc)["messages"]["unique"] = ["/header/nonce"]
    at = f"{WS}/flows/1"
    assert _errors(doc) == [
        (f"{WS}/messages/unique/0", "/header/nonce is declared by no client schema"),
        (
            f"{at}/correlate/sent",
            "/header/id is not declared by the client schema of 'execute_request'",
        ),
        (f"{at}/correlate/received", "/parent/msg_id is declared by no server schema"),
        (f"{at}/channel/pointer", "/chan is declared by no server schema"),
        (f"{at}/unsolicited/0", "unsolicited type 'stream' has no server schema"),
    ]


def test_kinds_must_refine_a_known_type_by_a_declared_field() -> None:
    doc = _kernel()
    kinds = doc["components"]["x-sequences"]["execution"]["kinds"]
    kinds["status-busy"]["type"] = "state"
    kinds["status-idle"]["where"] = {"/content/state": "idle"}
    at = "/components/x-sequences/execution/kinds"
    assert _errors(doc) == [
        (f"{at}/status-busy/type", "kind 'status-busy' refines unknown type 'state'"),
        (f"{at}/status-idle/where", "/content/state is not declared by the schema of 'status'"),
    ]


def test_two_kinds_that_cannot_be_told_apart_are_refused_as_first_and_terminal() -> None:
    doc = _kernel()
    kinds = doc["components"]["x-sequences"]["execution"]["kinds"]
    kinds["status-idle"]["where"] = {"/content/execution_state": "busy"}
    ((pointer, message),) = _errors(doc)
    assert pointer == "/components/x-sequences/execution/terminal"
    assert message.startswith("'status-idle' is also a first event and nothing tells them apart")


def test_a_broken_x_websocket_is_one_error_not_one_per_sequence_event() -> None:
    """Its server types are unknown then; the sequences naming them are not blamed."""
    doc = _kernel()
    _ws(doc)["flows"][0]["expect-firts"] = "kernel_info_reply"
    errors = _errors(doc)
    assert len(errors) == 1, errors
    assert errors[0][0] == f"{WS}/flows/0"


def test_a_message_carrier_names_a_client_type_and_a_declared_pointer() -> None:
    doc = _kernel()
    carriers = _ws(doc)["auth"]["carriers"]
    carriers.append({"in": "message", "type": "connection_init", "pointer": "/payload/token"})
    carriers.append({"in": "message", "type": "kernel_info_request", "pointer": "/token"})
    assert _errors(doc) == [
        (
            f"{WS}/auth/carriers/1/type",
            "message carrier type 'connection_init' has no client schema",
        ),
        (
            f"{WS}/auth/carriers/2/pointer",
            "/token is not declared by the client schema of 'kernel_info_request'",
        ),
    ]


def test_a_message_carrier_needs_its_type_and_pointer() -> None:
    doc = _kernel()
    _ws(doc)["auth"]["carriers"].append({"in": "message", "type": "execute_request"})
    ((pointer, message),) = _errors(doc)
    assert pointer == f"{WS}/auth/carriers/1"
    assert "pointer" in message


def test_the_bundled_chat_api_still_lints_clean() -> None:
    _, found = diagnose(copy.deepcopy(load_spec().document))
    assert [d for d in found if d.severity == "error"] == []


def test_a_message_carrier_cannot_be_forbidden() -> None:
    doc = _kernel()
    _ws(doc)["auth"]["forbidden-carriers"].append(
        {"in": "message", "type": "execute_request", "pointer": "/content/code"}
    )
    ((pointer, message),) = _errors(doc)
    assert pointer == f"{WS}/auth/forbidden-carriers/1/in"
    assert message.startswith("a token in a message cannot be forbidden at the handshake")
