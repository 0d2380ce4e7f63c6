"""Driving schemathesis 4.32 programmatically, on a worker thread.

Two public ways exist: per operation, ``schema[path][method].as_strategy()``
with our own hypothesis loop, ``case.call()`` and ``case.validate_response()``;
or the engine (``schemathesis.engine.from_schema(schema).execute()``), the
event stream the ``st`` CLI itself consumes. We use the engine because it is
the path schemathesis tests hardest and it already does what a hand-made loop
would have to re-implement: every phase (examples, coverage, fuzzing and the
stateful phase built from the spec's links), failure deduplication and
reproduction (``code_sample`` is the curl command), per-operation scheduling,
the rate limiter, stop on request, and the probes ``ignored_auth`` sends.

Authentication goes through schemathesis' own auth API: a provider class
registered on *this* schema (``schema.auth(...).apply_to(...)``, never the
process-global registry, so concurrent runs cannot see each other's tokens)
whose ``get`` asks our :class:`~chatcontract.context.Credentials` on the
event loop for a currently valid token. Caching is left to the credentials
(``refresh_interval=None``), which know the real expiry.

schemathesis is synchronous, so :func:`run_engine` blocks; the ``rest``
category runs it with :func:`asyncio.to_thread` so the event loop (and an
embedded reference server on it) stays free.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chatcontract.budget import RunBudget

__all__ = [
    "EnginePlan",
    "RecordedFailure",
    "Recording",
    "run_engine",
]


@dataclass(frozen=True, slots=True)
class EnginePlan:
    """Everything one schemathesis run needs; plain data, safe to hand to a thread."""

    document: Mapping[str, Any]
    base_url: str
    operation_ids: tuple[str, ...]
    protected_ids: tuple[str, ...]
    token: Callable[[], str] | None
    """Blocking: a valid bearer token (called from schemathesis' threads)."""
    budget: RunBudget
    deadline: float | None = None
    """``time.monotonic()`` past which no new work starts."""
    seed: int = 0
    max_examples: int = 25
    request_timeout: float = 15.0
    rate_limit: str | None = None
    workers: int = 1
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True, slots=True)
class RecordedFailure:
    check: str
    operation: str
    title: str
    message: str
    code_sample: str
    severity: str
    code: str


@dataclass(slots=True)
class Recording:
    """What a run found, by operation label (``GET /api/threads``)."""

    failures: dict[str, list[RecordedFailure]] = field(default_factory=dict)
    stateful_failures: list[RecordedFailure] = field(default_factory=list)
    tested: set[str] = field(default_factory=set)
    fuzzed: set[str] = field(default_factory=set)
    """Labels that went through the fuzzing phase (the bulk of the evidence)."""
    phases: dict[str, list[str]] = field(default_factory=dict)
    """Label -> the phases that sent it requests, in order."""
    skipped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    run_errors: list[str] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)
    stateful_ran: bool = False
    stateful_skip: str | None = None
    stopped: str | None = None
    """Why the run was cut short (budget, deadline, cancellation); None if it completed."""
    requests: int = 0
    elapsed: float = 0.0
    completed: bool = False
    """schemathesis ran every phase to the end."""


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _config(plan: EnginePlan) -> Any:
    from schemathesis.config import SchemathesisConfig

    settings: dict[str, Any] = {
        "seed": plan.seed,
        "base-url": plan.base_url,
        "request-timeout": plan.request_timeout,
        # A retried request hides the failure it retried; negative tests must see the first answer.
        "request-retries": 0,
        "workers": plan.workers,
        "warnings": False,
        # Nothing written into the user's working directory.
        "cache": {"enabled": False},
        "generation": {"max-examples": plan.max_examples, "database": "none"},
        "checks": {
            "ignored_auth": {"enabled": True},
            "use_after_free": {"enabled": True},
            "ensure_resource_availability": {"enabled": True},
        },
        # schemathesis would print "[Filtered]" in place of the token, which breaks the
        # curl reproduction; our redactor swaps in a shell variable instead.
        "output": {"sanitization": {"enabled": False}},
    }
    if plan.rate_limit:
        settings["rate-limit"] = plan.rate_limit
    return SchemathesisConfig.from_dict(settings)


class _Collector:
    def __init__(self, recording: Recording) -> None:
        self.rec = recording
        # Stateful findings are deduplicated apart: a sequence breaking the contract is news
        # for `rest/stateful-links` even when the same operation already failed on its own.
        self._seen: dict[tuple[bool, str], set[tuple[str, Any]]] = {}

    def _failures(
        self, recorder: Any, default_label: str, *, stateful: bool = False
    ) -> list[RecordedFailure]:
        found = []
        for checks in recorder.checks.values():
            for node in checks:
                info = node.failure_info
                if info is None:
                    continue
                failure = info.failure
                label = failure.operation or default_label
                seen = self._seen.setdefault((stateful, label), set())
                if (node.name, failure) in seen:
                    continue
                seen.add((node.name, failure))
                found.append(
                    RecordedFailure(
                        check=node.name,
                        operation=label,
                        title=failure.title,
                        message=failure.message,
                        code_sample=info.code_sample,
                        severity=str(getattr(failure, "severity", "")),
                        code=str(getattr(failure, "code", "")),
                    )
                )
        return found

    def handle(self, event: Any) -> None:
        from schemathesis.engine import Status, events
        from schemathesis.engine.run import PhaseName

        rec = self.rec
        if isinstance(event, events.ScenarioFinished):
            if event.phase is PhaseName.AUTH_BOOTSTRAP:
                return
            label = event.label or event.recorder.label
            if event.phase is PhaseName.STATEFUL_TESTING:
                if event.status is not Status.SKIP:
                    rec.stateful_ran = True
                rec.stateful_failures.extend(
                    self._failures(event.recorder, "stateful", stateful=True)
                )
                return
            rec.durations[label] = rec.durations.get(label, 0.0) + event.elapsed_time
            if event.recorder.has_responses():
                rec.tested.add(label)
                phases = rec.phases.setdefault(label, [])
                if event.phase.value not in phases:
                    phases.append(event.phase.value)
                if event.phase is PhaseName.FUZZING:
                    rec.fuzzed.add(label)
            elif event.status is Status.SKIP and event.skip_reason:
                rec.skipped.setdefault(label, event.skip_reason)
            for failure in self._failures(event.recorder, label):
                rec.failures.setdefault(failure.operation, []).append(failure)
        elif isinstance(event, events.NonFatalError):
            message = f"{event.info.title}: {event.info.message}".strip()
            if event.related_to_operation:
                rec.errors.setdefault(event.label, []).append(message)
            else:
                rec.run_errors.append(message)
        elif isinstance(event, events.FatalError):
            rec.run_errors.append(
                f"schemathesis failed: {type(event.exception).__name__}: {event.exception}"
            )
        elif isinstance(event, events.PhaseFinished):
            if event.phase.name is PhaseName.STATEFUL_TESTING and event.status is Status.SKIP:
                reason = event.phase.skip_reason
                rec.stateful_skip = None if reason is None else str(reason.value)
        elif isinstance(event, events.EngineFinished):
            rec.completed = event.stop_reason.value == "completed"
            for run_failure in event.failures or ():
                rec.stateful_failures.append(
                    RecordedFailure(
                        check="after_run",
                        operation=run_failure.operation or "run",
                        title=run_failure.title,
                        message=run_failure.message,
                        code_sample="",
                        severity=str(getattr(run_failure, "severity", "")),
                        code=str(getattr(run_failure, "code", "")),
                    )
                )


def _stop_reason(plan: EnginePlan) -> str | None:
    if plan.stop.is_set():
        return "the run was cancelled"
    if plan.deadline is not None and time.monotonic() >= plan.deadline:
        return "time budget exhausted"
    return plan.budget.reason()


def run_engine(plan: EnginePlan) -> Recording:
    """Run every schemathesis phase over the planned operations; blocks until done."""
    import schemathesis
    from schemathesis.engine import from_schema

    started = time.monotonic()
    recording = Recording()
    loaded = schemathesis.openapi.from_dict(_plain(plan.document), config=_config(plan))
    schema = loaded.include(operation_id=list(plan.operation_ids))
    if plan.token is not None and plan.protected_ids:
        get_token = plan.token

        class BearerFromCredentials:
            def get(self, case: Any, context: Any) -> str:
                return get_token()

            def set(self, case: Any, data: str, context: Any) -> None:
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

        schema.auth(refresh_interval=None).apply_to(operation_id=list(plan.protected_ids))(
            BearerFromCredentials
        )

    stream: list[Any] = []
    lock = threading.Lock()

    def stop_if_spent() -> None:
        reason = _stop_reason(plan)
        if reason is not None and stream:
            with lock:
                if recording.stopped is None:
                    recording.stopped = reason
            stream[0].stop()

    def counted(context: Any, case: Any, *rest: Any) -> None:
        with lock:
            recording.requests += 1
        plan.budget.note()
        stop_if_spent()

    schema.hook("after_call")(counted)
    schema.hook("after_network_error")(counted)
    collector = _Collector(recording)
    events = from_schema(schema).execute()
    stream.append(events)
    for event in events:
        collector.handle(event)
        stop_if_spent()
    if recording.completed:
        # The budget ran out with the last request, after the work was done: nothing was cut.
        recording.stopped = None
    recording.elapsed = time.monotonic() - started
    return recording
