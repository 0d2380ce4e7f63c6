"""Compiled JSON Schema validation with located, one-line errors.

jsonschema-rs (shipped with schemathesis) compiles a schema once and
validates an event in microseconds, which the SSE benchmark depends on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from chatcontract.spec.refs import join

__all__ = ["SchemaError", "Validator", "compile_schema"]


@dataclass(frozen=True, slots=True)
class SchemaError:
    pointer: str
    """JSON pointer into the validated instance."""
    message: str

    def line(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


class Validator:
    """A compiled schema. ``errors`` returns at most ``limit`` located errors."""

    __slots__ = ("_validator",)

    def __init__(self, schema: Mapping[str, Any] | bool) -> None:
        self._validator = jsonschema_rs.validator_for(
            schema if isinstance(schema, bool) else dict(schema), validate_formats=True
        )

    def is_valid(self, instance: Any) -> bool:
        return bool(self._validator.is_valid(instance))

    def errors(self, instance: Any, limit: int = 5) -> list[SchemaError]:
        found: list[SchemaError] = []
        for error in self._validator.iter_errors(instance):
            found.append(SchemaError(join("", *error.instance_path), _short(error.message)))
            if len(found) >= limit:
                break
        return found


def _short(message: str, width: int = 200) -> str:
    line = " ".join(message.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def compile_schema(schema: Mapping[str, Any] | bool) -> Validator:
    return Validator(schema)
