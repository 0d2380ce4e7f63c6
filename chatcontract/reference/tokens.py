"""Bearer tokens: HS256 JWTs minted and verified by the reference server.

Verification pins the algorithm and requires every time and identity claim,
so the classic bypasses (``alg: none`` in any spelling, a forged signature,
a token for another issuer or audience, an expired or not-yet-valid token)
are refused unless a fault profile deliberately lets one through.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

from chatcontract.reference.config import ServerConfig

__all__ = [
    "USER_PATTERN",
    "Principal",
    "TokenError",
    "bearer_from_header",
    "mint_token",
    "verify_token",
]

USER_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub"]


class TokenError(Exception):
    """The token is not acceptable; the message is safe to show the client."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated user behind a request or connection."""

    user: str
    expires_at: float | None


def mint_token(
    subject: str,
    config: ServerConfig,
    *,
    ttl: float | None = None,
    now: float | None = None,
    **overrides: Any,
) -> str:
    """Sign a token for ``subject`` the way ``POST /oauth/token`` would.

    ``overrides`` replace claims (``iss="elsewhere"``, ``nbf=...``); an override
    of ``None`` removes the claim, which is how tests build tokens that lack one.
    """
    issued = time.time() if now is None else now
    lifetime = config.token_ttl_seconds if ttl is None else ttl
    claims: dict[str, Any] = {
        "sub": subject,
        "iss": config.issuer,
        "aud": config.audience,
        "iat": int(issued),
        "nbf": int(issued),
        "exp": int(issued + lifetime),
        "jti": secrets.token_hex(12),
    }
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode(claims, config.signing_key, algorithm="HS256")


def bearer_from_header(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header (scheme case-insensitive, RFC 6750)."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def verify_token(
    token: str,
    config: ServerConfig,
    *,
    allow_alg_none: bool = False,
    allow_expired: bool = False,
) -> Principal:
    """Return the token's principal or raise TokenError.

    ``allow_alg_none`` and ``allow_expired`` exist only for fault profiles.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError("malformed token") from exc
    alg = header.get("alg")
    if allow_alg_none and isinstance(alg, str) and alg.lower() == "none":
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise TokenError("malformed token") from exc
    else:
        try:
            claims = jwt.decode(
                token,
                config.signing_key,
                algorithms=["HS256"],
                audience=config.audience,
                issuer=config.issuer,
                options={"require": _REQUIRED_CLAIMS, "verify_exp": not allow_expired},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenError("token not yet valid") from exc
        except jwt.PyJWTError as exc:
            raise TokenError("invalid token") from exc
    subject = claims.get("sub")
    if not isinstance(subject, str) or not USER_PATTERN.match(subject):
        raise TokenError("invalid subject")
    exp = claims.get("exp")
    expires_at = float(exp) if isinstance(exp, int | float) and not allow_expired else None
    return Principal(user=subject, expires_at=expires_at)
