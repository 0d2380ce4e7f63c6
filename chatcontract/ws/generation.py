"""Hypothesis strategies for JSON Schemas, drawn by schemathesis' own generator.

The schema is wrapped as the JSON body of a one-operation OpenAPI document and
handed to schemathesis (its public ``schemathesis.openapi`` loader and
``APIOperation.as_strategy``), so ``allOf``, ``oneOf``, ``anyOf``, formats and
patterns are generated exactly as REST bodies are: no generator of our own.
schemathesis is imported on first use, which keeps the modules that build
strategies free of it (the sans-I/O rule).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Final

import orjson
from hypothesis import strategies as st

__all__ = ["schema_strategy"]

_CACHE: dict[bytes, st.SearchStrategy[Any]] = {}
_LOCK: Final = threading.Lock()


def _document(schema: Mapping[str, Any] | bool) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "frame", "version": "1"},
        "paths": {
            "/frame": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": schema}},
                    },
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }


def _body(case: Any) -> Any:
    return case.body


def schema_strategy(schema: Mapping[str, Any] | bool) -> st.SearchStrategy[Any]:
    """Instances of a fully inlined JSON Schema (``$ref``-free), as schemathesis draws them.

    Best effort: the caller filters with the compiled schema. A schema schemathesis
    cannot load gives ``st.nothing()`` (the caller's filter then finds no frame).
    """
    import schemathesis

    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    with _LOCK:
        found = _CACHE.get(key)
    if found is not None:
        return found
    try:
        operation = schemathesis.openapi.from_dict(_document(schema))["/frame"]["POST"]
        strategy: st.SearchStrategy[Any] = operation.as_strategy().map(_body)
    except (schemathesis.errors.SchemathesisError, ValueError, TypeError, KeyError):
        strategy = st.nothing()
    with _LOCK:
        _CACHE[key] = strategy
    return strategy
