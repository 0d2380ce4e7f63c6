"""Per-user fixed-window rate limiting with IETF RateLimit headers.

Header syntax follows draft-ietf-httpapi-ratelimit-headers (structured
fields): ``RateLimit-Policy: "default";q=600;w=60`` states the quota and
``RateLimit: "default";r=0;t=42`` what remains and when it resets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "Decision",
    "RateLimiter",
]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    window: int
    remaining: int
    reset_seconds: int

    def headers(self, *, retry_after: bool = True) -> dict[str, str]:
        headers = {
            "RateLimit-Policy": f'"default";q={self.limit};w={self.window}',
            "RateLimit": f'"default";r={self.remaining};t={self.reset_seconds}',
        }
        if retry_after and not self.allowed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


class RateLimiter:
    """``limit`` hits per key per ``window`` seconds; state lives on one event loop."""

    def __init__(
        self, limit: int, window: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, key: str) -> Decision:
        now = self._clock()
        start, count = self._windows.get(key, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        allowed = count < self.limit
        if allowed:
            count += 1
        self._windows[key] = (start, count)
        reset = max(1, math.ceil(start + self.window - now))
        return Decision(allowed, self.limit, self.window, self.limit - count, reset)
