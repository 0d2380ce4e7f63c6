"""Telling a missing route from a real one, without I/O.

A target's "no such route" answer is learned from probe paths no spec would
have. Its fingerprint is the status, the media type, the body's shape (JSON
object keys, ``html``, ``text``...) and the fields whose values every probe
shared, after the probe's own path and every word containing a digit are
blanked out, so request ids, timestamps and echoed paths do not count. An
operation's answer that matches a fingerprint came from the same not-found
handler: the route is missing, whatever the status. A 404 from a real route
(an unknown thread) carries its own body (``"no such thread"``, a documented
problem document) and does not match.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "Answer",
    "Fingerprint",
    "Judgement",
    "Presence",
    "Shape",
    "calibrate",
    "judge",
]

MAX_BODY = 64 * 1024
"""Bytes of a body kept for fingerprinting; a not-found page is never larger."""

_DIGITS = re.compile(r"\w*\d\w*")
_AUTH_STATUSES = (401, 403)


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer as the inventory saw it (the body possibly truncated)."""

    status: int
    media_type: str
    body: bytes = b""

    @classmethod
    def of(cls, status: int, content_type: str | None, body: bytes = b"") -> Answer:
        media = (content_type or "").split(";", 1)[0].strip().lower()
        return cls(status, media, body[:MAX_BODY])


@dataclass(frozen=True, slots=True)
class Shape:
    status: int
    media_type: str
    kind: str
    """``json-object:<sorted keys>``, ``json-array``, ``json-scalar``, ``html``, ``text``,
    ``empty`` or ``binary``."""

    def describe(self) -> str:
        media = self.media_type or "no content type"
        return f"{self.status} {media} ({self.kind})"


def _blank(text: str, path: str) -> str:
    for part in {path, *(seg for seg in path.split("/") if len(seg) >= 8)}:
        if part:
            text = text.replace(part, "{path}")
    return _DIGITS.sub("#", text)


def _normalize(value: Any, path: str) -> Any:
    if isinstance(value, str):
        return _blank(value, path)
    if isinstance(value, dict):
        return {k: _normalize(v, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v, path) for v in value]
    return value


def _decode(answer: Answer) -> tuple[str, Any]:
    """``(kind, normalizable content)`` of an answer's body."""
    body = answer.body
    if not body.strip():
        return "empty", None
    media = answer.media_type
    if media == "application/json" or media.endswith("+json"):
        try:
            data = json.loads(body)
        except ValueError:
            return "text", body.decode("utf-8", "replace")
        if isinstance(data, dict):
            return "json-object:" + ",".join(sorted(data)), data
        if isinstance(data, list):
            return "json-array", data
        return "json-scalar", data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "binary", None
    if "html" in media or text.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
        return "html", text
    return "text", text


def _fields(answer: Answer, path: str) -> tuple[Shape, dict[str, str]]:
    kind, content = _decode(answer)
    shape = Shape(answer.status, answer.media_type, kind)
    if content is None:
        return shape, {}
    normal = _normalize(content, path)
    if isinstance(normal, dict):
        return shape, {k: json.dumps(v, sort_keys=True) for k, v in normal.items()}
    return shape, {"": json.dumps(normal, sort_keys=True)}


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """How the target answers a route it does not have."""

    shape: Shape
    stable: tuple[tuple[str, str], ...]
    """Fields (``""`` for a whole non-object body) every probe answered identically."""
    example: str
    """One probe path that produced it, for the evidence."""

    def matches(self, answer: Answer, path: str) -> bool:
        shape, fields = _fields(answer, path)
        if shape != self.shape:
            return False
        return all(fields.get(name) == value for name, value in self.stable)

    @property
    def refuses_auth(self) -> bool:
        """Unknown routes answer 401/403: the target authenticates before it routes."""
        return self.shape.status in _AUTH_STATUSES

    def describe(self) -> str:
        shared = ", ".join(name or "body" for name, _ in self.stable)
        same = f" with the same {shared}" if shared else ""
        return f"{self.shape.describe()}{same} as {self.example}"


def calibrate(samples: Iterable[tuple[str, Answer]]) -> list[Fingerprint]:
    """Fingerprints of the probe answers ``(probe path, answer)``, one per distinct shape."""
    groups: dict[Shape, list[tuple[str, dict[str, str]]]] = {}
    for path, answer in samples:
        shape, fields = _fields(answer, path)
        groups.setdefault(shape, []).append((path, fields))
    prints = []
    for shape, members in groups.items():
        first = members[0][1]
        stable = tuple(
            sorted(
                (name, value)
                for name, value in first.items()
                if all(fields.get(name) == value for _, fields in members[1:])
            )
        )
        prints.append(Fingerprint(shape, stable, members[0][0]))
    return prints


class Presence(StrEnum):
    PRESENT = "present"
    MISSING = "missing"
    METHOD_MISSING = "method missing"
    NOT_IMPLEMENTED = "not implemented"
    UNDECIDABLE = "undecidable"


@dataclass(frozen=True, slots=True)
class Judgement:
    presence: Presence
    evidence: str
    fingerprint: Fingerprint | None = None


def judge(
    answer: Answer,
    path: str,
    fingerprints: Sequence[Fingerprint],
    documented: Mapping[str, object] | None = None,
) -> Judgement:
    """Decide from one answer whether the operation at ``path`` exists.

    ``documented`` is the operation's responses map; a 405 the operation does
    not document means the path exists without the method.
    """
    seen = Shape(answer.status, answer.media_type, _decode(answer)[0]).describe()
    if answer.status == 501:
        return Judgement(Presence.NOT_IMPLEMENTED, f"answered {seen}")
    for fingerprint in fingerprints:
        if fingerprint.matches(answer, path):
            if fingerprint.refuses_auth:
                return Judgement(
                    Presence.UNDECIDABLE,
                    f"answered {seen}, but so does every unknown route: the target "
                    "authenticates before routing, so presence cannot be told apart from "
                    "a refused token",
                    fingerprint,
                )
            return Judgement(
                Presence.MISSING,
                f"answered like an unknown route: {fingerprint.describe()}",
                fingerprint,
            )
    if answer.status == 405 and "405" not in (documented or {}):
        return Judgement(
            Presence.METHOD_MISSING, f"answered {seen}: the path exists without this method"
        )
    return Judgement(Presence.PRESENT, f"answered {seen}")
