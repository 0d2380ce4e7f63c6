"""The chat API's vocabulary, read from the contract rather than assumed (pure: no I/O).

The checks need a handful of names: the error frame and its not-found code,
the frame that starts a run and the ack that names its thread, the frame
answered by exactly one frame (the barrier after hostile input), the frames
that switch to or read a thread, and the REST operation that creates one. Each is
derived from the contract; :data:`REFERENCE` names the reference API's words
and is used only to choose among what the contract allows. A name that cannot
be derived is ``None``, and the check that needed it is inconclusive rather
than passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from chatcontract.spec import Flow, Operation, Spec, WebSocketContract
from chatcontract.spec.streams import schemas_at

__all__ = [
    "NO_ERROR_FRAME",
    "NO_PROBE",
    "REFERENCE",
    "THREAD_FIELD",
    "CreateThread",
    "ReferenceNames",
    "Vocabulary",
    "derive",
    "with_text",
]

THREAD_FIELD: Final = "thread_id"
"""Where frames carry their thread (the sequence correlation rules point at it too)."""


@dataclass(frozen=True, slots=True)
class ReferenceNames:
    """The reference API's words: preferred when the contract allows them, never assumed."""

    error_type: str = "error"
    error_code_field: str = "error_code"
    not_found_code: str = "THREAD_NOT_FOUND"
    probe: str = "ping"
    create_thread: str = "createThread"
    created_id_field: str = "id"


REFERENCE: Final = ReferenceNames()

NO_ERROR_FRAME: Final = (
    "the contract declares no error frame (a server frame type that requires "
    f"{REFERENCE.error_code_field}), so the declared error code cannot be recognised"
)
NO_PROBE: Final = (
    "the contract declares no flow answered by a single frame (expect-first, without a "
    "sequence or a thread) to mark the end of the server's reaction"
)


@dataclass(frozen=True, slots=True)
class CreateThread:
    """The REST operation that creates a thread, and where its response puts the id."""

    operation: Operation
    id_field: str
    body: Any


@dataclass(frozen=True, slots=True)
class Vocabulary:
    error_type: str | None
    """The server frame type that carries ``error_code``."""
    not_found_code: str | None
    """The error code for a thread that does not exist (or is not the user's)."""
    message: Flow | None
    """A flow whose frame is acknowledged (``expect-first``) and starts a run."""
    probe: Flow | None
    """A flow answered by one frame (``expect-first``, no sequence, no thread): a barrier."""
    thread_flows: tuple[Flow, ...]
    """Flows that act on an existing thread (``needs-thread: true``): the isolation probes."""
    create_thread: CreateThread | None

    @property
    def ack_type(self) -> str | None:
        return self.message.expect_first if self.message is not None else None


def _requires(schema: Any, field: str, depth: int = 0) -> bool:
    """Whether ``schema`` (or a part of its ``allOf``) requires the property ``field``."""
    if not isinstance(schema, Mapping) or depth > 8:
        return False
    if field in (schema.get("required") or ()):
        return True
    return any(_requires(part, field, depth + 1) for part in schema.get("allOf") or ())


def _error_type(contract: WebSocketContract) -> str | None:
    field = REFERENCE.error_code_field
    carriers = sorted(
        kind for kind, schema in contract.server_schemas.items() if _requires(schema, field)
    )
    if REFERENCE.error_type in carriers:
        return REFERENCE.error_type
    return carriers[0] if carriers else None


def _not_found_code(contract: WebSocketContract, error_type: str | None) -> str | None:
    if error_type is None:
        return None
    found = schemas_at({}, contract.server_schemas[error_type], (REFERENCE.error_code_field,))
    codes = next((f["enum"] for f in found if isinstance(f.get("enum"), list)), None)
    if not isinstance(codes, list):
        return None
    if REFERENCE.not_found_code in codes:
        return REFERENCE.not_found_code
    found = [c for c in codes if isinstance(c, str) and "THREAD" in c and "NOT_FOUND" in c]
    return found[0] if found else None


def _message_flow(spec: Spec, contract: WebSocketContract) -> Flow | None:
    for flow in contract.flows:
        if (
            flow.expect_first is not None
            and flow.expect_sequence in spec.sequences
            and not flow.needs_thread
        ):
            return flow
    return None


def _probe(contract: WebSocketContract) -> Flow | None:
    found = [
        flow
        for flow in contract.flows
        if flow.expect_first is not None and flow.expect_sequence is None and not flow.needs_thread
    ]
    preferred = [flow for flow in found if flow.send == REFERENCE.probe]
    return next(iter(preferred or found), None)


def _created_id(spec: Spec, op: Operation) -> str | None:
    """The response field a 201's links pass on as a thread id (``$response.body#/id``)."""
    paths = spec.document.get("paths")
    item = paths.get(op.path) if isinstance(paths, Mapping) else None
    method = item.get(op.method.lower()) if isinstance(item, Mapping) else None
    responses = method.get("responses") if isinstance(method, Mapping) else None
    created = responses.get("201") if isinstance(responses, Mapping) else None
    links = created.get("links") if isinstance(created, Mapping) else None
    for link in links.values() if isinstance(links, Mapping) else ():
        parameters = link.get("parameters") if isinstance(link, Mapping) else None
        value = parameters.get(THREAD_FIELD) if isinstance(parameters, Mapping) else None
        if isinstance(value, str) and value.startswith("$response.body#/"):
            return value.removeprefix("$response.body#/")
    return None


def _create_thread(spec: Spec) -> CreateThread | None:
    candidates = [op for op in spec.rest_operations if op.operation_id == REFERENCE.create_thread]
    candidates += [op for op in spec.rest_operations if op.method == "POST"]
    for op in candidates:
        field = _created_id(spec, op)
        if field is None and op.operation_id == REFERENCE.create_thread:
            field = REFERENCE.created_id_field
        if field is not None and "201" in op.responses:
            body = op.request_example if op.request_example is not None else {}
            return CreateThread(op, field, body)
    return None


def derive(spec: Spec, contract: WebSocketContract) -> Vocabulary:
    error_type = _error_type(contract)
    return Vocabulary(
        error_type=error_type,
        not_found_code=_not_found_code(contract, error_type),
        message=_message_flow(spec, contract),
        probe=_probe(contract),
        thread_flows=tuple(f for f in contract.flows if f.needs_thread),
        create_thread=_create_thread(spec),
    )


def with_text(frame: dict[str, Any], text: str) -> dict[str, Any]:
    """``frame`` with its payload's first string field replaced by ``text`` (when it has one)."""
    payload = frame.get("payload")
    if isinstance(payload, dict):
        for key, value in payload.items():
            if isinstance(value, str):
                payload[key] = text
                break
    return frame
