"""What the reference server reads from openapi.yaml, loaded once per process.

The server is spec-first: its routes, request validation, rate-limited
operations, stream heartbeats and WebSocket limits and frame schemas all come
from the packaged spec, so the server cannot drift from the contract it serves.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, cast

import jsonschema_rs
import yaml
from openapi_core import OpenAPI, V32RequestUnmarshaller
from openapi_core.contrib.starlette.requests import StarletteOpenAPIRequest
from openapi_core.security.factories import SecurityProviderFactory
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.validation.request.exceptions import (
    MissingRequiredParameter,
    MissingRequiredRequestBody,
    ParameterValidationError,
)
from starlette.requests import Request

from chatcontract.errors import SpecError

__all__ = [
    "HTTP_METHODS",
    "FieldError",
    "Operation",
    "ReferenceContract",
    "ValidatedRequest",
    "WebSocketContract",
    "load_contract",
    "spec_text",
]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace", "query")
_SPEC_NAME = "packaged openapi.yaml"


def spec_text() -> str:
    """The packaged spec (``chatcontract/data/openapi.yaml``, a link to the root spec)."""
    return (files("chatcontract") / "data" / "openapi.yaml").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the spec, as the router needs it."""

    operation_id: str
    method: str
    path: str
    public: bool
    statuses: frozenset[str]
    stream: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid input: where (``location`` is path, query, header or body) and why."""

    location: str
    pointer: str
    detail: str


@dataclass(frozen=True, slots=True)
class ValidatedRequest:
    """Parameters (defaults applied) and body of a request that matched its operation."""

    path: Mapping[str, Any]
    query: Mapping[str, Any]
    body: Any
    errors: tuple[FieldError, ...]


@dataclass(frozen=True, slots=True)
class WebSocketContract:
    """``x-websocket`` of ``GET /ws``, with client frame schemas compiled once."""

    max_message_bytes: int
    connections_per_user: int
    messages_per_minute: int
    heartbeat_seconds: float
    client_validators: Mapping[str, jsonschema_rs.Validator]


class _AuthenticationElsewhere:
    """Security provider that accepts anything: the server authenticates on its own.

    openapi-core cannot check JWTs, only header presence, and it warns about the
    oauth2 scheme; our own auth layer gives the precise 401s the contract wants.
    """

    def create(self, scheme: Any) -> Any:
        return lambda parameters: None


class ReferenceContract:
    """The parsed spec plus everything derived from it."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        try:
            self.openapi = OpenAPI.from_dict(cast(Any, document))
        except Exception as exc:
            raise SpecError(_SPEC_NAME, "/", f"openapi-core refused the spec: {exc}") from exc
        self._unmarshaller = V32RequestUnmarshaller(
            self.openapi.spec,
            security_provider_factory=cast(SecurityProviderFactory, _AuthenticationElsewhere()),
        )
        self.operations = tuple(self._operations())
        self.websocket = self._websocket()

    def _operations(self) -> list[Operation]:
        root_security = self.document.get("security", [])
        found = []
        for path, item in self.document.get("paths", {}).items():
            for method in HTTP_METHODS:
                op = item.get(method)
                if not isinstance(op, Mapping):
                    continue
                security = op.get("security", root_security)
                found.append(
                    Operation(
                        operation_id=str(op["operationId"]),
                        method=method,
                        path=path,
                        public=not security,
                        statuses=frozenset(str(code) for code in op.get("responses", {})),
                        stream=op.get("x-stream"),
                    )
                )
        return found

    def operation(self, operation_id: str) -> Operation:
        for op in self.operations:
            if op.operation_id == operation_id:
                return op
        raise SpecError(_SPEC_NAME, "/paths", f"no operation {operation_id!r}")

    def _websocket(self) -> WebSocketContract:
        try:
            ext = self.document["paths"]["/ws"]["get"]["x-websocket"]
            limits = ext["limits"]
            client = ext["messages"]["client"]
        except KeyError as exc:
            raise SpecError(_SPEC_NAME, "/paths/~1ws/get/x-websocket", f"missing {exc}") from exc
        components = self.document.get("components", {})
        validators = {}
        for frame_type, schema in client.items():
            # $refs point into components, so each frame schema is compiled with
            # the components beside it as its root document.
            root = {**schema, "components": components}
            validators[frame_type] = jsonschema_rs.validator_for(root)
        return WebSocketContract(
            max_message_bytes=int(limits["max-message-bytes"]),
            connections_per_user=int(limits["connections-per-user"]),
            messages_per_minute=int(limits["messages-per-minute"]),
            heartbeat_seconds=float(ext["heartbeat"]["interval-seconds"]),
            client_validators=validators,
        )

    def validate(self, request: Request, body: bytes) -> ValidatedRequest:
        """Unmarshal ``request`` against its operation; errors are collected, not raised."""
        result = self._unmarshaller.unmarshal(StarletteOpenAPIRequest(request, body))
        errors: list[FieldError] = []
        for error in result.errors:
            errors.extend(_field_errors(error))
        params = result.parameters
        path = dict(params.path) if params is not None else {}
        query = dict(params.query) if params is not None else {}
        return ValidatedRequest(path=path, query=query, body=result.body, errors=tuple(errors))


def _field_errors(error: Exception) -> list[FieldError]:
    if isinstance(error, PathError):
        return [FieldError("path", "", str(error))]
    if isinstance(error, MissingRequiredParameter):
        return [FieldError(error.location, error.name, "required parameter is missing")]
    if isinstance(error, ParameterValidationError):
        return [
            FieldError(error.location, error.name, detail)
            for detail in _details(error.__cause__, str(error))
        ]
    if isinstance(error, MissingRequiredRequestBody):
        return [FieldError("body", "", "request body is required")]
    cause = error.__cause__
    schema_errors = getattr(cause, "schema_errors", None)
    if schema_errors:
        return [
            FieldError("body", _pointer(getattr(e, "absolute_path", ())), str(e.message))
            for e in schema_errors
        ]
    return [FieldError("body", "", _describe(cause or error))]


def _describe(error: BaseException) -> str:
    try:
        return str(error)
    except UnicodeDecodeError:
        # openapi-core's deserialize error decodes the raw body to describe it.
        return "the body is not valid UTF-8 JSON"


def _details(cause: BaseException | None, fallback: str) -> list[str]:
    schema_errors = getattr(cause, "schema_errors", None)
    if schema_errors:
        return [str(e.message) for e in schema_errors]
    return [str(cause) if cause is not None else fallback]


def _pointer(parts: Any) -> str:
    # RFC 6901 escaping, so a property named "a/b" still points at itself.
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@functools.cache
def load_contract() -> ReferenceContract:
    """Parse and check the packaged spec once per process."""
    try:
        document = yaml.safe_load(spec_text())
    except yaml.YAMLError as exc:
        raise SpecError(_SPEC_NAME, "/", f"not valid YAML: {exc}") from exc
    if not isinstance(document, Mapping):
        raise SpecError(_SPEC_NAME, "/", "the spec is not a mapping")
    return ReferenceContract(document)
