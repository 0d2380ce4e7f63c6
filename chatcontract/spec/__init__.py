"""Load and validate a chat API spec into a small frozen model."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from chatcontract.errors import SpecError
from chatcontract.spec.build import build_spec
from chatcontract.spec.lint import Diagnostic, Problem, diagnose_document
from chatcontract.spec.model import (
    Channel,
    Correlation,
    EventKind,
    EventShape,
    Flow,
    FlowCorrelation,
    Operation,
    OrderRule,
    Pair,
    Reaction,
    SequenceContract,
    Spec,
    StreamContract,
    StreamDeadlines,
    TokenCarrier,
    WebSocketContract,
    WebSocketDeadlines,
    WebSocketLimits,
)
from chatcontract.spec.source import read_document

__all__ = [
    "Channel",
    "Correlation",
    "Diagnostic",
    "EventKind",
    "EventShape",
    "Flow",
    "FlowCorrelation",
    "Operation",
    "OrderRule",
    "Pair",
    "Problem",
    "Reaction",
    "SequenceContract",
    "Spec",
    "StreamContract",
    "StreamDeadlines",
    "TokenCarrier",
    "WebSocketContract",
    "WebSocketDeadlines",
    "WebSocketLimits",
    "bundled_spec_path",
    "diagnose",
    "lint",
    "load_spec",
]


def bundled_spec_path() -> Path:
    """The chat API contract shipped with the package (the repository's openapi.yaml)."""
    return Path(str(resources.files("chatcontract").joinpath("data", "openapi.yaml")))


def diagnose(source: str | Path | Mapping[str, Any]) -> tuple[str, list[Diagnostic]]:
    """Return ``(where, diagnostics)``: every error, then every warning.

    A syntax error is one error at ``line N, column M``. Warnings say what could
    not be derived from a valid spec (and which contracts will be skipped); print
    each with :meth:`Diagnostic.line` and fail only on errors.
    """
    try:
        where, document = read_document(source)
    except SpecError as exc:
        return exc.where, [Diagnostic(pointer, message) for pointer, message in exc.problems]
    return where, diagnose_document(document)


def lint(source: str | Path | Mapping[str, Any]) -> tuple[str, list[Problem]]:
    """Return ``(where, errors)``; a syntax error is one problem at ``line N, column M``.

    Warnings are left out (see :func:`diagnose`).
    """
    where, found = diagnose(source)
    return where, [(d.pointer, d.message) for d in found if d.severity == "error"]


def load_spec(source: str | Path | Mapping[str, Any] | None = None) -> Spec:
    """Load, validate and model a spec; ``None`` loads the bundled chat API contract.

    Raises :class:`SpecError` carrying every error when the spec is unusable; the
    warnings of a usable spec are kept in :attr:`Spec.warnings`.
    """
    where, document = read_document(bundled_spec_path() if source is None else source)
    found = diagnose_document(document)
    problems = [(d.pointer, d.message) for d in found if d.severity == "error"]
    if problems:
        pointer, message = problems[0]
        raise SpecError(where, pointer, message, tuple(problems))
    warnings = tuple((d.pointer, d.message) for d in found if d.severity == "warning")
    return build_spec(where, document, warnings)
