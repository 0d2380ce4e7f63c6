"""Property fuzzing of the channel: any client frame, valid or broken, gets a lawful answer.

Hypothesis draws client frames from the contract's schemas plus single-defect
variants. Each one is sent, followed by a ping as a barrier; every server
frame must match the server schemas, and the server must neither drop the
connection nor close it (1011 least of all). Hypothesis runs in a worker
thread and hands each example to the event loop, so a failure is shrunk
against the live server to the smallest frame that still breaks it.

Bounded three ways: ``max_examples`` and ``seed`` from the run settings, a
time budget after which remaining examples pass without I/O, and a deadline
on every exchange.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import warnings
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis.errors import HypothesisDeprecationWarning, HypothesisException

from chatcontract.report.model import ContractResult, Finding
from chatcontract.transport import cache_folder, hypothesis_home
from chatcontract.ws.client import (
    Closed,
    OpenFailed,
    Presented,
    Silence,
    Socket,
    WsTarget,
    open_socket,
)
from chatcontract.ws.conversation import is_error, ping_frame, until_answer
from chatcontract.ws.evidence import Clock, inconclusive, judged, repro
from chatcontract.ws.frames import Transcript
from chatcontract.ws.handshake import Access, presented_for
from chatcontract.ws.strategies import Example, client_frames

__all__ = ["FUZZ_BUDGET_SECONDS", "FuzzFailure", "fuzz_contract"]

FUZZ_BUDGET_SECONDS = 60.0
"""The most a fuzz run spends; the contract's total deadline lowers it."""


class FuzzFailure(AssertionError):
    """Raised inside the property so Hypothesis shrinks the example that caused it."""


class _Stop(BaseException):
    """Ends the Hypothesis run at once: not an ``Exception``, so it is not shrunk as a failure."""


@dataclass(slots=True)
class _Fuzzer:
    target: WsTarget
    presented: Presented
    transcript: Transcript
    sock: Socket | None = None
    examples: int = 0
    answered: int = 0
    """Exchanges that completed: the server answered the example and the barrier."""
    failures: list[tuple[str, Any, str]] = field(default_factory=list)
    connections: int = 0
    throttles: int = 0
    fresh: bool = False
    drop: bool = False
    stopped: str | None = None

    async def exchange(self, frame: Any) -> str | None:
        """Send one example and the barrier ping; the contract problem, if any."""
        if self.drop and self.sock is not None:
            await self.sock.close()
            self.drop = False
        if self.sock is None or self.sock.closed is not None:
            self.fresh = True
            try:
                self.sock = await open_socket(self.target, self.presented, self.transcript)
            except OpenFailed as exc:
                return f"a fresh connection failed: {exc.message}"
            self.connections += 1
        sock = self.sock
        before = len(sock.findings)
        ping, answer = ping_frame(self.target)
        validator = self.target.validator
        probe = self.target.vocab.probe
        # An uncorrelated barrier answer (a bare pong) carries no id, so it is counted: a
        # valid example of the barrier's own type earns its answer first, and stopping at
        # that one would blame the next example. A correlated one names the barrier.
        answers = 1 + (
            (probe is None or probe.correlate is None)
            and validator.kind_of(frame) == validator.kind_of(ping)
            and validator.check_client(frame).ok
        )
        failed_sends = sock.send_failures
        await sock.send_json(frame)
        await sock.send_frame(ping)
        end: Closed | Silence | None = None
        if sock.send_failures > failed_sends:
            # The connection ended under the example: no answer to the barrier can come,
            # and a reply still buffered from before must not pass for one.
            end = await sock.drain()
        throttle = self.target.contract.on_invalid_input.get("rate-limited")
        code = throttle.error_code if throttle else None
        for _ in range(answers if end is None else 0):
            frames, end = await until_answer(self.target, sock, answer, sent=ping, throttled=code)
            if end is not None:
                break
            if code is not None and frames and is_error(self.target, frames[-1], code):
                self._throttled()
                self.answered += 1
                return None
        self.fresh = False
        if len(sock.findings) > before:
            return f"an answer does not match the server schemas: {sock.findings[before].line()}"
        if isinstance(end, Closed):
            if end.code == 1011 and end.by == "server":
                return "the server closed the connection with 1011 (internal error)"
            return f"the server ended the connection: {end.problem or end.describe()}"
        if isinstance(end, Silence):
            return f"no {answer} to the barrier ping within {end.waited:.1f} s"
        self.answered += 1
        return None

    def _throttled(self) -> None:
        """Rate limited: the server is within its contract, and the fuzz needs a new connection.

        A limit per connection resets on a fresh one; if even a fresh connection is
        throttled, the limit is per user and the remaining examples are not sent.
        """
        if self.fresh:
            self.stopped = "rate limited even on a fresh connection"
        self.throttles += 1
        self.drop = True

    async def close(self) -> None:
        if self.sock is not None:
            await self.sock.close()


def _run_property(
    fuzzer: _Fuzzer,
    loop: asyncio.AbstractEventLoop,
    examples: Any,
    *,
    max_examples: int,
    run_seed: int,
    budget: float,
    per_example: float,
    cancelled: threading.Event,
) -> str | None:
    """Run Hypothesis (in a worker thread); return why it stopped early, if it did.

    ``cancelled`` is set when the awaiting task ends for any reason: the thread
    cannot be cancelled, so every example checks it and passes without I/O.
    """
    started = time.monotonic()

    def call(coro: Coroutine[Any, Any, str | None]) -> str | None:
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout=per_example)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return f"one exchange took longer than {per_example:g} s"

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
    )
    @seed(run_seed)
    @given(examples)
    def prop(example: Example) -> None:
        if cancelled.is_set() or time.monotonic() - started > budget or fuzzer.stopped:
            raise _Stop
        kind, frame = example
        fuzzer.examples += 1
        problem = call(fuzzer.exchange(frame))
        if problem is not None:
            fuzzer.failures.append((kind, frame, problem))
            raise FuzzFailure(problem)

    try:
        # No example database (a run replays from ``--seed``, not from past runs); whatever
        # else hypothesis stores goes to the run's cache folder, never the working directory.
        # Hypothesis blames a strategy for any change of the global `random` state during
        # a draw; the draws run in this thread while the event loop's thread goes on, and
        # websockets (uvicorn too, for an in-process server) draws its ping payloads from
        # `random`. Not ours: the draw itself uses no `random`.
        with (
            hypothesis_home(cache_folder(fuzzer.target.ctx.settings.cache_dir)),
            warnings.catch_warnings(),
        ):
            warnings.filterwarnings(
                "ignore", "Do not use the `random` module", HypothesisDeprecationWarning
            )
            prop()
    except (FuzzFailure, _Stop):
        pass
    except HypothesisException as exc:
        # Flaky replays happen when the server's state, not the frame, caused the
        # failure; the recorded failure is still real evidence.
        if not fuzzer.failures:
            return f"hypothesis stopped: {type(exc).__name__}: {exc}"
    if cancelled.is_set():
        return "cancelled"
    if fuzzer.stopped:
        return fuzzer.stopped
    if time.monotonic() - started > budget:
        return f"time budget of {budget:g} s spent"
    return None


async def fuzz_contract(target: WsTarget, access: Access) -> ContractResult:
    clock = Clock()
    suffix = "fuzz"
    name = "any client frame gets schema-valid answers and never kills the connection"
    # Every exchange ends with the probe: an endpoint that stopped answering would not.
    unusable = access.unusable or target.stalls.blocks()
    if unusable is not None:
        return inconclusive(target, suffix, name, unusable, clock)
    settings_ = target.ctx.settings
    transcript = target.transcript()
    presented = await presented_for(target, access)
    fuzzer = _Fuzzer(target, presented, transcript)
    deadlines = target.deadlines
    budget = min(FUZZ_BUDGET_SECONDS, deadlines.total)
    if settings_.time_budget is not None:
        budget = min(budget, settings_.time_budget)
    strategy = client_frames(target.validator, target.contract.client_schemas)
    loop = asyncio.get_running_loop()
    cancelled = threading.Event()
    try:
        stopped = await asyncio.to_thread(
            _run_property,
            fuzzer,
            loop,
            strategy,
            max_examples=max(1, settings_.max_examples),
            run_seed=settings_.seed,
            budget=budget,
            per_example=deadlines.handshake + 2 * deadlines.first_frame + 2.0,
            cancelled=cancelled,
        )
    finally:
        cancelled.set()
        await fuzzer.close()
    findings: list[Finding] = []
    if fuzzer.failures:
        kind, frame, problem = fuzzer.failures[-1]
        findings.append(
            Finding(
                f"{problem} (after a {kind} frame; {len(fuzzer.failures)} failing exchanges "
                "while shrinking)",
                f"fuzz example ({kind})",
                repro=repro(target, presented=presented, send=[frame], seed=settings_.seed),
            )
        )
    details = {
        "examples": str(fuzzer.examples),
        "seed": str(settings_.seed),
        "connections": str(fuzzer.connections),
        "rate_limited": str(fuzzer.throttles),
    }
    if stopped:
        details["stopped"] = stopped
    if not findings and fuzzer.answered == 0:
        # Zero exchanges prove nothing about the server, whatever stopped them.
        reason = f"no example was exchanged: {stopped or 'hypothesis generated none'}"
        return inconclusive(target, suffix, name, reason, clock, transcript=transcript)
    return judged(target, suffix, name, findings, clock, transcript=transcript, details=details)
