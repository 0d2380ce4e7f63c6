"""How a token travels on an HTTP request: the operation's security scheme decides.

``Authorization: Bearer`` is one answer among several. A spec may declare
``http`` with another scheme (``Authorization: token <hex>``, Jupyter's), an
API key in a header, a cookie or the query string, or OAuth 2 / OpenID
Connect (bearer tokens). Every request the run sends with credentials (REST,
streams, the inventory, the positive control, the objects WebSocket checks
create) presents the token through :func:`presentation_for`, and every
reproduction writes it the same way with the token as a shell variable.

Pure: the spec in, a :class:`Presentation` out; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chatcontract.spec import Operation, Spec, TokenCarrier
from chatcontract.spec.security import scheme_carrier

__all__ = ["BEARER", "Presentation", "carried", "escape_double_quoted", "presentation_for"]

Place = Literal["header", "cookie", "query"]


@dataclass(frozen=True, slots=True)
class Presentation:
    """One way to present a token: ``where`` it goes, under which ``name``, after ``prefix``."""

    where: Place
    name: str
    prefix: str = ""

    def headers(self, token: str) -> dict[str, str]:
        """The request headers that carry ``token`` (none for a query parameter)."""
        if self.where == "header":
            return {self.name: self.prefix + token}
        if self.where == "cookie":
            return {"Cookie": f"{self.name}={token}"}
        return {}

    def params(self, token: str) -> dict[str, str]:
        """The query parameters that carry ``token`` (none for a header or cookie)."""
        return {self.name: token} if self.where == "query" else {}

    def curl(self, variable: str) -> str:
        """The curl arguments that present ``$variable``, double-quoted so the shell expands it
        (the token itself never appears in a reproduction)."""
        if self.where == "header":
            name, prefix = escape_double_quoted(self.name), escape_double_quoted(self.prefix)
            return f'-H "{name}: {prefix}{variable}"'
        if self.where == "cookie":
            return f'-b "{escape_double_quoted(self.name)}={variable}"'
        # --url-query (curl 7.87+) appends to the URL whatever the method.
        return f'--url-query "{escape_double_quoted(self.name)}={variable}"'

    @property
    def label(self) -> str:
        """``Authorization: Bearer``, ``header X-API-Key``, ``cookie sid``, ``query api_key``."""
        if self.where == "header" and self.prefix:
            return f"{self.name}: {self.prefix.strip()}"
        return f"{self.where} {self.name}"


BEARER = Presentation("header", "Authorization", "Bearer ")
"""RFC 6750's ``Authorization: Bearer <token>``: the fallback when a spec says nothing usable."""


def escape_double_quoted(text: str) -> str:
    """``text`` safe inside double quotes in a POSIX shell."""
    for char in ("\\", '"', "$", "`"):
        text = text.replace(char, "\\" + char)
    return text


def _header_prefixes(spec: Spec) -> dict[str, str]:
    """Header name (lower case) → the scheme a WebSocket carrier puts before the token.

    OpenAPI's ``apiKey`` cannot say that ``Authorization`` holds ``token <hex>``;
    a WebSocket carrier on the same header can, and the REST side follows it.
    """
    found: dict[str, str] = {}
    for socket in spec.websockets:
        for carrier in socket.carriers:
            if carrier.kind == "header" and carrier.name and carrier.scheme:
                found.setdefault(carrier.name.lower(), carrier.scheme + " ")
    return found


def _from_scheme(scheme: Mapping[str, Any], prefixes: Mapping[str, str]) -> Presentation | None:
    carrier = scheme_carrier(scheme)
    if carrier is not None and carrier.kind == "header" and not carrier.scheme and carrier.name:
        return Presentation("header", carrier.name, prefixes.get(carrier.name.lower(), ""))
    return None if carrier is None else _from_carrier(carrier)


def _from_carrier(carrier: TokenCarrier) -> Presentation | None:
    """A WebSocket or security-scheme carrier as an HTTP presentation (not a subprotocol
    or a message: plain HTTP has neither)."""
    if carrier.kind == "header":
        prefix = f"{carrier.scheme} " if carrier.scheme else ""
        return Presentation("header", carrier.name or "Authorization", prefix)
    if carrier.kind in ("cookie", "query"):
        return Presentation(carrier.kind, carrier.name or "token")
    return None


def _candidates(spec: Spec, op: Operation | None) -> Iterator[Presentation | None]:
    prefixes = _header_prefixes(spec)
    alternatives = op.security if op is not None and op.security else _protected(spec)
    # One token meets a one-scheme alternative best: those come first.
    for alternative in sorted(alternatives, key=len):
        for name in alternative:
            yield _from_scheme(spec.security_schemes.get(name) or {}, prefixes)
    for socket in spec.websockets:
        for carrier in socket.carriers:
            yield _from_carrier(carrier)


def _protected(spec: Spec) -> tuple[tuple[str, ...], ...]:
    """The security of the spec's protected operations, for a request no operation names."""
    for op in spec.operations:
        if op.security and not op.is_public:
            return op.security
    return ()


def presentation_for(spec: Spec, op: Operation | None = None) -> Presentation:
    """How a token is presented to ``op`` (or, with no operation, to the protected API).

    The operation's security alternatives first (single-scheme ones before
    combined ones), then the WebSocket's header or cookie carrier, then
    ``Authorization: Bearer``.
    """
    for found in _candidates(spec, op):
        if found is not None:
            return found
    return BEARER


def carried(spec: Spec, op: Operation, token: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """The headers and query parameters that present ``token`` to ``op``; none for an open
    operation or without a token."""
    if token is None or op.is_public:
        return {}, {}
    presented = presentation_for(spec, op)
    return presented.headers(token), presented.params(token)
