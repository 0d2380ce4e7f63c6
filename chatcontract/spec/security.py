"""What a security scheme says about where a token travels: one mapping for REST and WebSocket.

OpenAPI's standard ``securitySchemes`` already name the place: ``http`` with
a scheme (``bearer``, ``token``...) is the ``Authorization`` header,
``oauth2`` / ``openIdConnect`` hand out bearer tokens, an ``apiKey`` sits in a
named header, cookie or query parameter. :func:`scheme_carrier` turns one
scheme into a :class:`~chatcontract.spec.model.TokenCarrier`;
:func:`security_carriers` does it for an operation's ``security``, which is
how a WebSocket without ``x-websocket.auth`` is still checked, and
:mod:`chatcontract.presentation` builds HTTP requests from the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chatcontract.spec.model import TokenCarrier

__all__ = ["DEFAULT_REJECTION", "scheme_carrier", "security_carriers"]

DEFAULT_REJECTION = (401, 403)
"""The statuses that refuse a token when the operation documents neither (RFC 9110 §15.5)."""


def scheme_carrier(scheme: Mapping[str, Any]) -> TokenCarrier | None:
    """Where ``scheme`` puts a token; ``None`` when one token cannot meet it (``basic``,
    mutual TLS, an unknown type)."""
    kind = scheme.get("type")
    if kind in ("oauth2", "openIdConnect"):
        return TokenCarrier("header", "Authorization", "Bearer")
    if kind == "http":
        name = str(scheme.get("scheme") or "bearer")
        if name.lower() == "basic":
            return None  # a token is not a user:password pair
        shown = "Bearer" if name.lower() == "bearer" else name
        return TokenCarrier("header", "Authorization", shown)
    where, key = scheme.get("in"), scheme.get("name")
    if kind == "apiKey" and where in ("header", "cookie", "query") and isinstance(key, str):
        return TokenCarrier(where, key)
    return None


def security_carriers(
    schemes: Mapping[str, Mapping[str, Any]], security: Iterable[Iterable[str]]
) -> tuple[TokenCarrier, ...]:
    """The carriers of each alternative one token can meet (one scheme), in order, once each."""
    found: list[TokenCarrier] = []
    for alternative in security:
        names = tuple(alternative)
        if len(names) != 1:
            continue
        carrier = scheme_carrier(schemes.get(names[0]) or {})
        if carrier is not None and carrier not in found:
            found.append(carrier)
    return tuple(found)
