"""Keeping secrets out of every output.

Every string that leaves the process through a reporter, a repro command or a
recorded frame passes through a :class:`Redactor`. It knows the exact secrets
of the run (tokens, client secrets) and, as a second net, anything shaped like
a JWT or a bearer credential.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

__all__ = ["PLACEHOLDER", "Redactor"]

PLACEHOLDER = "<redacted>"
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_SUBPROTOCOL_TOKEN = re.compile(r"\bjwt\.[A-Za-z0-9_-]{8,}")
_SECRET_FIELDS = re.compile(
    r"(?i)(client_secret|access_token|refresh_token|password|token)=([^&\s\"']+)"
)


class Redactor:
    """Replaces known secrets and credential-shaped strings with a placeholder."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        # Very short values would redact ordinary words; they are not secrets worth the noise.
        if secret and len(secret) >= 6:
            with self._lock:
                self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, PLACEHOLDER)
        text = _JWT.sub(PLACEHOLDER, text)
        text = _SUBPROTOCOL_TOKEN.sub("jwt." + PLACEHOLDER, text)
        text = _BEARER.sub(lambda m: m.group(1) + PLACEHOLDER, text)
        return _SECRET_FIELDS.sub(lambda m: f"{m.group(1)}={PLACEHOLDER}", text)
