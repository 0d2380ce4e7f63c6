"""Load and validate a chat API spec into a small frozen model."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from chatcontract.errors import SpecError
from chatcontract.spec.build import build_spec
from chatcontract.spec.lint import Problem, lint_document
from chatcontract.spec.model import (
    Correlation,
    Flow,
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
    "Correlation",
    "Flow",
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
    "lint",
    "load_spec",
]


def bundled_spec_path() -> Path:
    """The chat API contract shipped with the package (the repository's openapi.yaml)."""
    return Path(str(resources.files("chatcontract").joinpath("data", "openapi.yaml")))


def lint(source: str | Path | Mapping[str, Any]) -> tuple[str, list[Problem]]:
    """Return ``(where, problems)``; a syntax error is one problem at ``line N, column M``."""
    try:
        where, document = read_document(source)
    except SpecError as exc:
        return exc.where, list(exc.problems)
    return where, lint_document(document)


def load_spec(source: str | Path | Mapping[str, Any] | None = None) -> Spec:
    """Load, validate and model a spec; ``None`` loads the bundled chat API contract.

    Raises :class:`SpecError` carrying every problem when the spec is unusable.
    """
    where, document = read_document(bundled_spec_path() if source is None else source)
    problems = lint_document(document)
    if problems:
        pointer, message = problems[0]
        raise SpecError(where, pointer, message, tuple(problems))
    return build_spec(where, document)
