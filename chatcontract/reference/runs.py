"""Agent runs: their lifecycle, their event log and who receives their events.

A run executes as its own task on the server's event loop, independent of
the stream or socket that started it: a client may disconnect and resume
(``Last-Event-ID``), another request may cancel it. Events are kept per run
(bounded by ``run_retention`` finished runs) so a resume can replay them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatcontract.reference.agent import AgentSpec, RunPlan, plan_run
from chatcontract.reference.faults import ActiveFaults
from chatcontract.reference.store import Store, new_id, utc_now

__all__ = [
    "TERMINAL_EVENTS",
    "Delivery",
    "Listener",
    "QueueListener",
    "Run",
    "RunRegistry",
    "envelope",
]

TERMINAL_EVENTS = frozenset({"agent_completed", "agent_error"})
_log = logging.getLogger("chatcontract.reference")


def envelope(kind: str, run_id: str, thread_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's one event envelope, shared by both SSE routes and /ws."""
    return {
        "type": kind,
        "run_id": run_id,
        "thread_id": thread_id,
        "timestamp": utc_now(),
        "payload": dict(payload),
    }


@dataclass(eq=False)
class Run:
    run_id: str
    user: str
    agent: str
    thread_id: str | None
    plan: RunPlan
    started_at: str = field(default_factory=utc_now)
    started_clock: float = field(default_factory=time.monotonic)
    status: str = "running"
    finished_at: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    followers: list[Listener] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started_clock) * 1000)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event of ``run`` numbered ``seq`` (1-based), or its end when ``event`` is None."""

    run: Run
    seq: int
    event: Mapping[str, Any] | None


class Listener(Protocol):
    """Something that receives run events: an SSE response or a WebSocket connection."""

    @property
    def user(self) -> str: ...

    def deliver(self, delivery: Delivery) -> None: ...


class QueueListener:
    """A listener that buffers deliveries for one consumer task."""

    def __init__(self, user: str) -> None:
        self._user = user
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue()

    @property
    def user(self) -> str:
        return self._user

    def deliver(self, delivery: Delivery) -> None:
        self.queue.put_nowait(delivery)


class RunRegistry:
    """All runs of one server; only ever touched from the server's event loop."""

    def __init__(
        self,
        store: Store,
        faults: ActiveFaults,
        *,
        seed: int,
        event_delay: float,
        retention: int,
    ) -> None:
        self._store = store
        self._faults = faults
        self._seed = seed
        self._delay = event_delay
        self._retention = retention
        self._runs: dict[str, Run] = {}
        self._finished: collections.deque[str] = collections.deque()
        self._listeners: set[Listener] = set()

    # bookkeeping

    def create(self, user: str, agent: AgentSpec, message: str, thread_id: str | None) -> Run:
        run = Run(
            run_id=new_id("run"),
            user=user,
            agent=agent.name,
            thread_id=thread_id,
            plan=plan_run(agent, message, self._seed),
        )
        self._runs[run.run_id] = run
        return run

    def get(self, run_id: str, user: str) -> Run | None:
        """The run if ``user`` owns it; another user's run does not exist for them."""
        run = self._runs.get(run_id)
        return run if run is not None and run.user == user else None

    def add_listener(self, listener: Listener) -> None:
        self._listeners.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.discard(listener)
        for run in self._runs.values():
            if listener in run.followers:
                run.followers.remove(listener)

    def follow(self, run: Run, listener: Listener, after: int = 0) -> None:
        """Replay the events after ``after`` to ``listener``, then keep it informed."""
        for seq, event in enumerate(run.events[after:], start=after + 1):
            listener.deliver(Delivery(run, seq, event))
        if run.running:
            run.followers.append(listener)
        else:
            listener.deliver(Delivery(run, len(run.events), None))

    # execution

    def start(self, run: Run) -> None:
        """Run in the background, paced, so streaming is observable."""
        run.task = asyncio.get_running_loop().create_task(self._drive(run, self._delay))

    async def execute(self, run: Run) -> None:
        """Run to completion now, without pacing (``POST /api/agents/execute``)."""
        await self._drive(run, 0.0)

    def cancel(self, run: Run) -> bool:
        """Stop a running run at once; False if it already finished."""
        if not run.running:
            return False
        self._emit(run, "agent_error", {"error_code": "CANCELLED", "message": "run cancelled"})
        self._finish(run, "cancelled")
        return True

    async def shutdown(self) -> None:
        tasks = [run.task for run in self._runs.values() if run.task and not run.task.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _drive(self, run: Run, delay: float) -> None:
        try:
            for kind, payload in self._script(run):
                # Pause before each event so a slow run looks like a slow run on the wire,
                # and check after it: a cancel may have finished the run meanwhile.
                if delay:
                    await asyncio.sleep(delay)
                if not run.running:
                    return
                self._emit(run, kind, payload)
            self._finish(run, "failed" if run.plan.fails else "completed")
        except Exception:
            _log.exception("run %s crashed", run.run_id)
            if run.running:
                self._emit(run, "agent_error", {"error_code": "AGENT_FAILED", "message": "crash"})
                self._finish(run, "failed")

    def _script(self, run: Run) -> Iterator[tuple[str, dict[str, Any]]]:
        plan, faults = run.plan, self._faults
        step: int | str = "1" if "event-drift" in faults else 1
        yield "agent_started", {"agent_name": plan.agent, "message": plan.message}
        yield "agent_thinking", {"thought": plan.thought, "step_number": step}
        calls = plan.tool_calls[:1] if plan.fails else plan.tool_calls
        for call in calls:
            call_id = new_id("call")
            executing = {
                "tool_call_id": call_id,
                "tool_name": call.tool_name,
                "parameters": dict(call.parameters),
            }
            completed = {
                "tool_call_id": call_id,
                "tool_name": call.tool_name,
                "result": call.result,
                "execution_time_ms": call.execution_time_ms,
            }
            if "events-out-of-order" in faults:
                yield "tool_completed", completed
                yield "tool_executing", executing
            else:
                yield "tool_executing", executing
                yield "tool_completed", completed
        if plan.fails:
            yield (
                "agent_error",
                {"error_code": "AGENT_FAILED", "message": "the agent failed (#fail)"},
            )
            return
        for i, chunk in enumerate(plan.chunks):
            yield "response_chunk", {"content": chunk, "is_final": i == len(plan.chunks) - 1}
        yield "agent_completed", {"result": plan.response, "duration_ms": run.elapsed_ms()}

    def _emit(self, run: Run, kind: str, payload: Mapping[str, Any]) -> None:
        if kind in TERMINAL_EVENTS and "missing-terminal" in self._faults:
            return
        event = envelope(kind, run.run_id, run.thread_id or "", payload)
        if run.thread_id is None:
            # Synchronous runs without a thread are never streamed; the envelope
            # still needs a value, and an empty one would be invalid if it leaked.
            event["thread_id"] = "thread_" + run.run_id.removeprefix("run_")
        run.events.append(event)
        delivery = Delivery(run, len(run.events), event)
        for listener in list(run.followers):
            listener.deliver(delivery)
        if "cross-user-leak" in self._faults:
            for listener in list(self._listeners):
                if listener.user != run.user and listener not in run.followers:
                    listener.deliver(delivery)

    def _finish(self, run: Run, status: str) -> None:
        run.status = status
        run.finished_at = utc_now()
        if status == "completed" and run.thread_id is not None:
            with contextlib.suppress(Exception):  # the thread may have been deleted meanwhile
                self._store.add_message(run.thread_id, "assistant", run.plan.response[:8000])
        end = Delivery(run, len(run.events), None)
        followers, run.followers = run.followers, []
        for listener in followers:
            listener.deliver(end)
        self._finished.append(run.run_id)
        while len(self._finished) > self._retention:
            self._runs.pop(self._finished.popleft(), None)
