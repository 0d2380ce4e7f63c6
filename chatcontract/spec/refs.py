"""Local ``$ref`` resolution.

Hand-written because the libraries we keep resolve references lazily and
raise on the first dangling one (openapi-spec-validator raises
``PointerToNowhere`` with the whole document in its message): we need every
dangling reference located by the pointer of the object holding it, and
fully inlined schemas for compiled validators.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = [
    "RefCycleError",
    "deref",
    "escape",
    "find_refs",
    "inline",
    "inline_or_deref",
    "join",
    "resolve_pointer",
]


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def join(pointer: str, *tokens: str | int) -> str:
    return pointer + "".join("/" + escape(str(t)) for t in tokens)


def resolve_pointer(document: Any, pointer: str) -> Any:
    """Resolve a JSON pointer (RFC 6901); raise ``LookupError`` when it goes nowhere."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        raise LookupError(f"not a JSON pointer: {pointer!r}")
    node = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            if token not in node:
                raise LookupError(pointer)
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                raise LookupError(pointer)
            node = node[int(token)]
        else:
            raise LookupError(pointer)
    return node


def find_refs(node: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(pointer of the holder, ref value)`` for every ``$ref`` in the tree."""
    if isinstance(node, dict):
        if "$ref" in node:
            yield pointer, node["$ref"]
        for key, value in node.items():
            if key != "$ref":
                yield from find_refs(value, join(pointer, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from find_refs(value, join(pointer, index))


class RefCycleError(LookupError):
    pass


def inline(document: Any, node: Any, _stack: tuple[str, ...] = ()) -> Any:
    """Return a copy of ``node`` with every local ``$ref`` replaced by its target.

    Sibling keywords of a ``$ref`` (allowed in OpenAPI 3.1+) are merged over
    the target, so ``{"$ref": ..., "description": ...}`` keeps its description.
    A reference cycle raises :class:`RefCycleError`: recursive schemas cannot
    be inlined, and none of the event or frame schemas needs recursion.
    """
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            if ref in _stack:
                raise RefCycleError(" -> ".join((*_stack, ref)))
            target = inline(document, resolve_pointer(document, ref[1:]), (*_stack, ref))
            siblings = {k: inline(document, v, _stack) for k, v in node.items() if k != "$ref"}
            if not siblings:
                return target
            if isinstance(target, dict):
                return {**target, **siblings}
            return target
        return {key: inline(document, value, _stack) for key, value in node.items()}
    if isinstance(node, list):
        return [inline(document, value, _stack) for value in node]
    return node


_MAX_REF_HOPS = 32


def deref(document: Any, node: Any) -> Any:
    """``node`` with only its own ``$ref`` chain followed (siblings merged over the target).

    Unlike :func:`inline` it never walks into the result, so recursive schemas are
    fine; a dangling or endless chain gives ``{}``.
    """
    for _ in range(_MAX_REF_HOPS):
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#"):
            return node
        try:
            target = resolve_pointer(document, ref[1:])
        except LookupError:
            return {}
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **siblings} if siblings and isinstance(target, dict) else target
    return {}


def inline_or_deref(document: Any, node: Any) -> Any:
    """``node`` inlined, or only its top ``$ref`` followed when it holds recursive schemas."""
    try:
        return inline(document, node)
    except RefCycleError:
        return deref(document, node)
