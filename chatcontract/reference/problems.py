"""RFC 9457 problem details: the one error format of every HTTP answer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

__all__ = [
    "PROBLEM_JSON",
    "ProblemResponse",
    "problem",
]

PROBLEM_JSON = "application/problem+json"


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def problem(
    status: int,
    detail: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    instance: str | None = None,
    errors: Iterable[Mapping[str, str]] | None = None,
) -> ProblemResponse:
    """A problem+json response; ``errors`` makes it a ValidationProblem."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = [dict(e) for e in errors]
    return ProblemResponse(body, status_code=status, headers=dict(headers or {}))
