"""Reading a spec document from a path, a URL or a mapping.

Syntax problems become :class:`SpecError` with ``line N, column M``; nothing
here raises a foreign exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from chatcontract.errors import SpecError

__all__ = ["DEFAULT_SPEC", "read_document"]

DEFAULT_SPEC = "openapi.yaml"
_URL_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_MAX_SPEC_BYTES = 32 << 20


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys.

    PyYAML silently keeps the last duplicate, which hides real spec mistakes
    (two ``get:`` under one path, two ``200`` responses).
    """


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:
            continue
        if duplicate:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse_text(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        place = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "/"
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(where, place, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(where, "/", f"YAML syntax error: {exc}") from None


def _read_url(url: str) -> str:
    try:
        response = httpx.get(url, timeout=_URL_TIMEOUT, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise SpecError(url, "/", f"cannot fetch the spec: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise SpecError(url, "/", f"cannot fetch the spec: HTTP {response.status_code}")
    if len(response.content) > _MAX_SPEC_BYTES:
        raise SpecError(url, "/", "spec is larger than 32 MiB")
    return response.text


def read_document(source: str | Path | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return ``(where, document)`` for a path, URL or already-parsed mapping."""
    if isinstance(source, Mapping):
        # Round-trip through JSON so callers' objects are never shared or mutated.
        try:
            return "<dict>", json.loads(json.dumps(source))
        except (TypeError, ValueError) as exc:
            raise SpecError("<dict>", "/", f"not JSON-compatible: {exc}") from None
    text_source = str(source)
    if text_source.startswith(("http://", "https://")):
        where, text = text_source, _read_url(text_source)
    else:
        path = Path(text_source)
        where = text_source
        try:
            if path.stat().st_size > _MAX_SPEC_BYTES:
                raise SpecError(where, "/", "spec is larger than 32 MiB")
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError(where, "/", "no such file") from None
        except IsADirectoryError:
            raise SpecError(where, "/", "is a directory, not a spec file") from None
        except UnicodeDecodeError as exc:
            raise SpecError(where, f"byte {exc.start}", "not UTF-8 text") from None
        except OSError as exc:
            raise SpecError(where, "/", f"cannot read: {exc.strerror}") from None
    document = _parse_text(text, where)
    if not isinstance(document, dict):
        kind = "empty" if document is None else type(document).__name__
        raise SpecError(where, "/", f"not an OpenAPI document (top level is {kind}, not a mapping)")
    return where, document
