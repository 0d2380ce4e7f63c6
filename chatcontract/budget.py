"""How much a run may send: a request budget, a time budget and optional pacing.

One :class:`RunBudget` and one :class:`Pacer` per run live in the run's
services (``ctx.services``), so every category spends from the same account
and keeps the same pace. It is thread-safe because schemathesis
spends from it on its own worker threads.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable

from chatcontract.errors import ConfigError

__all__ = [
    "Pacer",
    "RunBudget",
    "parse_rate_limit",
]

_RATE = re.compile(r"^\s*(\d+)\s*/\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_rate_limit(value: str) -> tuple[int, float]:
    """``"N/s"`` (or ``/m``, ``/h``, ``/d``, as schemathesis spells it) -> (N, seconds)."""
    match = _RATE.match(value)
    if match is None or int(match.group(1)) < 1:
        raise ConfigError(
            f"invalid rate limit {value!r}: use N/s, N/m, N/h or N/d with N >= 1, e.g. 10/s"
        )
    return int(match.group(1)), _UNIT_SECONDS[match.group(2)]


class RunBudget:
    """Requests and seconds left for the run; checkers stop starting new work past either."""

    def __init__(
        self,
        requests: int,
        seconds: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.requests = requests
        self._clock = clock
        self.started = clock()
        self.deadline = None if seconds is None else self.started + seconds
        self._spent = 0
        self._lock = threading.Lock()

    @property
    def spent(self) -> int:
        return self._spent

    def take(self, count: int = 1) -> bool:
        """Spend ``count`` requests; False (and nothing spent) when that would exceed the budget."""
        with self._lock:
            if self._spent + count > self.requests:
                return False
            self._spent += count
            return True

    def note(self, count: int = 1) -> None:
        """Record requests already sent by someone who could not ask first (schemathesis)."""
        with self._lock:
            self._spent += count

    def time_left(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - self._clock())

    @property
    def requests_exhausted(self) -> bool:
        return self._spent >= self.requests

    @property
    def exhausted(self) -> bool:
        return self.reason() is not None

    def reason(self) -> str | None:
        """Why no new work may start, or None while there is budget left."""
        if self._spent >= self.requests:
            return f"request budget exhausted ({self.requests} requests)"
        if self.deadline is not None and self._clock() >= self.deadline:
            return f"time budget exhausted ({self.deadline - self.started:g} s)"
        return None


class Pacer:
    """Spaces our own requests to a ``N/s``-style rate; a no-op without a limit."""

    def __init__(self, rate: str | None, *, clock: Callable[[], float] = time.monotonic):
        self._interval = 0.0
        if rate is not None:
            count, seconds = parse_rate_limit(rate)
            self._interval = seconds / count
        self._clock = clock
        self._next = 0.0

    async def wait(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)
