"""Forged tokens for the handshake auth matrix (pure: no I/O).

Every forgery starts from a real token the target accepts and changes exactly
one thing, so a refusal can only be explained by that one thing. Two apply
to any token, opaque or not: the real one garbled (a few characters changed)
and one of the same shape the server never issued. The others are about JWTs
(their header, signature and claims) and only apply when the credentials are
JWTs. Forgeries that keep a valid signature (expired, not yet valid, wrong
issuer or audience) need the target's HS256 signing key; the others need no key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FORGERIES",
    "Forgery",
    "b64url",
    "b64url_decode",
    "bad_signature",
    "claims_of",
    "garbled",
    "header_of",
    "is_jwt",
    "malformed",
    "resign",
    "unissued",
    "unsigned",
]


_TRUNCATED_HEADER_JSON = b'{"alg":"HS256","typ":'


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_TRUNCATED_HEADER = b64url(_TRUNCATED_HEADER_JSON)


def _segments(token: str) -> list[str]:
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS: expected three dot-separated segments")
    return parts


def _json_segment(segment: str) -> dict[str, Any]:
    value = json.loads(b64url_decode(segment))
    if not isinstance(value, dict):
        raise ValueError("a JWT segment must be a JSON object")
    return value


def _encode(value: Mapping[str, Any]) -> str:
    return b64url(json.dumps(dict(value), separators=(",", ":")).encode())


def header_of(token: str) -> dict[str, Any]:
    return _json_segment(_segments(token)[0])


def claims_of(token: str) -> dict[str, Any]:
    """The token's claims, unverified: we only copy them into forgeries."""
    return _json_segment(_segments(token)[1])


def is_jwt(token: str) -> bool:
    """Whether ``token`` is a compact JWS whose header names an algorithm."""
    try:
        return "alg" in header_of(token)
    except ValueError:
        return False


_HEX = frozenset(string.hexdigits)
_CLASSES = (string.digits, string.ascii_lowercase, string.ascii_uppercase)


def _alphabets(token: str) -> list[str | None]:
    """Per character, the characters it may become and keep the token's shape (``None``:
    it stays: separators such as ``.``, ``-`` or ``_``)."""
    if token and set(token) <= _HEX:
        hex_alphabet = string.digits + ("abcdef" if token.lower() == token else "ABCDEF")
        return [hex_alphabet for _ in token]
    return [next((c for c in _CLASSES if ch in c), None) for ch in token]


def _other(ch: str, alphabet: str) -> str:
    return secrets.choice([c for c in alphabet if c != ch])


def garbled(token: str) -> str:
    """The real token with a few characters in its middle changed, shape and length kept."""
    alphabets = _alphabets(token)
    middle = range(len(token) // 4, max(len(token) // 4 + 1, 3 * len(token) // 4))
    changeable = [i for i in middle if i < len(token) and alphabets[i]]
    if not changeable:
        changeable = [i for i, a in enumerate(alphabets) if a]
    if not changeable:
        raise ValueError("the token has no letter or digit to change")
    chars = list(token)
    for i in changeable[:: max(1, len(changeable) // 4)][:4]:
        alphabet = alphabets[i]
        assert alphabet is not None
        chars[i] = _other(chars[i], alphabet)
    return "".join(chars)


def unissued(token: str) -> str:
    """A random token of the real one's length and alphabet: the right shape, never issued."""
    alphabets = _alphabets(token)
    if not any(alphabets):
        raise ValueError("the token has no letter or digit to change")
    while True:
        forged = "".join(
            secrets.choice(a) if a else ch for ch, a in zip(token, alphabets, strict=True)
        )
        if forged != token:
            return forged


def _hs256(signing_input: str, key: bytes) -> str:
    return b64url(hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest())


def malformed(token: str) -> str:
    """Three segments whose header is not JSON: a parser must refuse it, not guess."""
    _, payload, signature = _segments(token)
    return f"{_TRUNCATED_HEADER}.{payload}.{signature}"


def bad_signature(token: str) -> str:
    """The same header and claims signed with a random key nobody holds."""
    header, payload, signature = _segments(token)
    signing_input = f"{header}.{payload}"
    alg = str(header_of(token).get("alg", ""))
    if alg.upper().startswith("HS"):
        return f"{signing_input}.{_hs256(signing_input, secrets.token_bytes(32))}"
    # Asymmetric algorithms cannot be re-signed without a key pair; random bytes
    # of the right length are just as unverifiable.
    return f"{signing_input}.{b64url(secrets.token_bytes(len(b64url_decode(signature))))}"


def unsigned(token: str, alg: str = "none") -> str:
    """The classic bypass: real claims, ``alg`` set to ``none`` (in any spelling), no signature."""
    header = header_of(token)
    header["alg"] = alg
    return f"{_encode(header)}.{_segments(token)[1]}."


def resign(token: str, key: str, **changes: Any) -> str:
    """The token's claims with ``changes`` applied, signed HS256 with ``key``.

    ``resign(token, key)`` with no changes is the signing-key control: if the
    target refuses it, the key is wrong and no key-based refusal means anything.
    """
    claims = claims_of(token)
    claims.update(changes)
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = f"{_encode(header)}.{_encode(claims)}"
    return f"{signing_input}.{_hs256(signing_input, key.encode())}"


@dataclass(frozen=True, slots=True)
class Forgery:
    """One row of the auth matrix: how to spoil a real token, and how to name it."""

    slug: str
    name: str
    """Completes "… are refused": ``"expired tokens"``."""
    needs_key: bool
    claim: str | None
    """The claim the row depends on being declared in the spec (``iss``/``aud``), if any."""
    make: Callable[[str, str | None, Mapping[str, str], float], str]
    """``(real token, signing key, declared claims, now) -> forged token``."""
    jwt: bool = True
    """Only for JWT credentials (skipped for opaque tokens)."""


def _key(key: str | None) -> str:
    if key is None:
        raise ValueError("this forgery needs a signing key")
    return key


def _wrong(value: str) -> str:
    return f"{value}-forged-by-chatcontract"


FORGERIES: tuple[Forgery, ...] = (
    Forgery(
        "garbled",
        "garbled tokens",
        False,
        None,
        lambda t, k, c, n: garbled(t),
        jwt=False,
    ),
    Forgery(
        "unissued",
        "well-formed tokens the server never issued",
        False,
        None,
        lambda t, k, c, n: unissued(t),
        jwt=False,
    ),
    Forgery("malformed", "malformed tokens", False, None, lambda t, k, c, n: malformed(t)),
    Forgery(
        "bad-signature",
        "tokens with a forged signature",
        False,
        None,
        lambda t, k, c, n: bad_signature(t),
    ),
    Forgery("alg-none", "unsigned alg:none tokens", False, None, lambda t, k, c, n: unsigned(t)),
    Forgery(
        "alg-none-mixed-case",
        "unsigned tokens spelled alg:nOnE",
        False,
        None,
        lambda t, k, c, n: unsigned(t, "nOnE"),
    ),
    Forgery(
        "expired",
        "expired tokens",
        True,
        None,
        lambda t, k, c, n: resign(
            t, _key(k), exp=int(n) - 600, iat=int(n) - 1200, nbf=int(n) - 1200
        ),
    ),
    Forgery(
        "nbf-future",
        "tokens not yet valid (nbf in the future)",
        True,
        None,
        lambda t, k, c, n: resign(t, _key(k), nbf=int(n) + 3600, exp=int(n) + 7200),
    ),
    Forgery(
        "wrong-iss",
        "tokens from another issuer",
        True,
        "iss",
        lambda t, k, c, n: resign(t, _key(k), iss=_wrong(c["iss"])),
    ),
    Forgery(
        "wrong-aud",
        "tokens for another audience",
        True,
        "aud",
        lambda t, k, c, n: resign(t, _key(k), aud=_wrong(c["aud"])),
    ),
)
