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

Every request schemathesis sends has a total deadline (connect + status line
+ headers + whole body), enforced by :class:`DeadlineAdapter` on the sessions
its engine builds: ``requests`` only has per-read timeouts, which a server
trickling one byte a second never trips. A cut response is a finding of the
operation (check ``transport``: ``the response took longer than N s (...)``);
a reply that is not HTTP, a reset, a 101 to a plain request are findings too,
named by :func:`chatcontract.transport.classify`, never "Network Error".

Nothing is written to the working directory: schemathesis' cache and the
example database are off (a run is replayed from its seed, not from earlier
runs) and hypothesis' own files (its constants cache, Unicode tables) go to
the run's cache folder (:func:`chatcontract.transport.hypothesis_home`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from chatcontract.budget import RunBudget
from chatcontract.presentation import Presentation
from chatcontract.transport import (
    Deadline,
    FailureKind,
    TransportFailure,
    cache_folder,
    caused_by,
    classify,
    hypothesis_home,
)

__all__ = [
    "DeadlineAdapter",
    "EnginePlan",
    "RecordedFailure",
    "Recording",
    "ResponseTooSlow",
    "SwitchedProtocols",
    "bounded_session",
    "run_engine",
]


@dataclass(frozen=True, slots=True)
class EnginePlan:
    """Everything one schemathesis run needs; plain data, safe to hand to a thread."""

    document: Mapping[str, Any]
    base_url: str
    operation_ids: tuple[str, ...]
    protected: Mapping[str, Presentation]
    """Operation id → how its token is presented (:mod:`chatcontract.presentation`)."""
    token: Callable[[], str] | None
    """Blocking: a valid token (called from schemathesis' threads)."""
    budget: RunBudget
    deadline: float | None = None
    """``time.monotonic()`` past which no new work starts."""
    seed: int = 0
    max_examples: int = 25
    request_timeout: float = 15.0
    """Per read (schemathesis' ``request-timeout``)."""
    request_deadline: float | None = None
    """Seconds one whole request may take, connect to last body byte (None: ``request_timeout``)."""
    cache_dir: Path | None = None
    """Where hypothesis may keep state (None: :func:`chatcontract.transport.cache_folder`)."""
    rate_limit: str | None = None
    producers: frozenset[str] = frozenset()
    """Labels of the operations whose successful answers name an object the run must
    delete at the end (:mod:`chatcontract.objects`)."""
    refusals: Mapping[str, frozenset[int]] = field(default_factory=dict)
    """Operation label → the credential refusals (401, 403) it documents."""
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


MAX_CREATED = 1000
MAX_BODY = 64 * 1024
"""The largest creation answer read for its links."""
"""Creations one REST run remembers for the cleanup at most."""


@dataclass(slots=True)
class Recording:
    """What a run found, by operation label (``GET /api/threads``)."""

    failures: dict[str, list[RecordedFailure]] = field(default_factory=dict)
    created: list[tuple[str, Any]] = field(default_factory=list)
    """``(label, JSON body)`` of each successful answer of a producer, oldest first."""
    uncounted: int = 0
    """Creations beyond :data:`MAX_CREATED`, not remembered."""
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


# -- a total deadline on every request schemathesis sends ---------------------------------


class ResponseTooSlow(requests.exceptions.Timeout):
    """The deadline passed before the whole response arrived; ``failure`` says how far it got."""

    def __init__(self, failure: TransportFailure, request: requests.PreparedRequest) -> None:
        super().__init__(failure.line(), request=request)
        self.failure = failure


class SwitchedProtocols(requests.exceptions.ConnectionError):
    """101 Switching Protocols to a request that asked for no upgrade."""

    def __init__(self, failure: TransportFailure, request: requests.PreparedRequest) -> None:
        super().__init__(failure.line(), request=request)
        self.failure = failure


class _Watch:
    """One request's wall-clock bound: at the deadline the socket in use is shut down.

    urllib3 and http.client have per-operation socket timeouts only, which a server
    trickling one byte at a time never trips, and a blocked read cannot be interrupted
    from outside except by shutting its socket down. So a timer thread does exactly
    that; the blocked read returns at once and the adapter reports the cut.
    """

    _current: ClassVar[threading.local] = threading.local()

    def __init__(self, seconds: float) -> None:
        self.deadline = Deadline(seconds)
        self.fired = False
        self.cut = False
        """The socket was shut down: whatever was read after that is truncated."""
        self._connection: HTTPConnection | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._timer = threading.Thread(target=self._run, name="chatcontract-deadline", daemon=True)

    def __enter__(self) -> _Watch:
        self._current.watch = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done.set()
        self._current.watch = None

    @classmethod
    def attach(cls, connection: HTTPConnection) -> None:
        """``connection`` carries the current request of this thread (if it is watched)."""
        watch: _Watch | None = getattr(cls._current, "watch", None)
        if watch is not None:
            watch._connection = connection

    def _run(self) -> None:
        if self._done.wait(self.deadline.seconds):
            return
        self.fired = True
        while True:
            with self._lock:
                if self._done.is_set():
                    return
                sock = getattr(self._connection, "sock", None)
                if sock is not None:
                    self.cut = True
                    with contextlib.suppress(OSError):
                        # The plain socket's shutdown, also under TLS: it wakes the reader.
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                    return
            # Still connecting (bounded by the connect timeout): look again shortly.
            if self._done.wait(0.05):
                return


class _WatchedConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _Watch.attach(self)
        super().request(*args, **kwargs)


class _WatchedTLSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _Watch.attach(self)
        super().request(*args, **kwargs)


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedTLSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedTLSConnection


def _is_event_stream(response: requests.Response) -> bool:
    return response.headers.get("Content-Type", "").lower().startswith("text/event-stream")


class DeadlineAdapter(HTTPAdapter):
    """A requests transport adapter whose every exchange ends by a wall-clock deadline.

    Connect, status line, headers and the whole body must arrive within
    ``seconds``; past it the connection is cut and :class:`ResponseTooSlow`
    raised, carrying how far the response got. An event stream is left to its
    reader (schemathesis bounds it by total time) once its headers are in.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__()

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        # urllib3's documented extension point: pools (and so connections) of our classes.
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedTLSPool}

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        if isinstance(timeout, int | float):
            timeout = min(float(timeout), self.seconds)
        with _Watch(self.seconds) as watch:
            response: requests.Response | None = None
            try:
                response = super().send(
                    request, stream=True, timeout=timeout, verify=verify, cert=cert, proxies=proxies
                )
                if watch.cut:
                    # http.client ends the headers at EOF: these were cut short, not complete.
                    response.close()
                    response = None
                    raise ResponseTooSlow(self._cut(None, watch, None), request)
                if response.status_code == 101 and "upgrade" not in request.headers:
                    response.close()  # and its connection: it speaks another protocol now
                    failure = TransportFailure.switched(watch.deadline.elapsed())
                    raise SwitchedProtocols(failure, request)
                if not stream or not _is_event_stream(response):
                    # What the caller would read next, read here inside the deadline.
                    response.content  # noqa: B018
            except (SwitchedProtocols, ResponseTooSlow):
                raise
            except (requests.RequestException, OSError) as exc:
                if watch.fired:
                    raise ResponseTooSlow(self._cut(response, watch, exc), request) from exc
                if isinstance(exc, requests.ReadTimeout) and isinstance(timeout, float):
                    # Silence for the whole per-read timeout: no answer, just sooner.
                    failure = self._cut(response, watch, exc, silence=timeout)
                    raise ResponseTooSlow(failure, request) from exc
                raise
        if watch.cut:
            # The read "ended" because the deadline shut the socket: it is truncated.
            cut = self._cut(response, watch, None)
            if response is not None:
                response.close()
            raise ResponseTooSlow(cut, request)
        return response

    def _cut(
        self,
        response: requests.Response | None,
        watch: _Watch,
        exc: BaseException | None,
        silence: float | None = None,
    ) -> TransportFailure:
        elapsed = watch.deadline.elapsed()
        if response is None:
            # http.client read an empty status line: not one byte had come.
            nothing = exc is not None and caused_by(exc, http.client.RemoteDisconnected)
            if silence is not None or nothing:
                limit = self.seconds if silence is None else silence
                detail = f"no answer within {limit:g} s (waited {elapsed:.2f} s)"
                return TransportFailure(FailureKind.NO_ANSWER, detail, elapsed)
            detail = (
                f"the response took longer than {self.seconds:g} s "
                "(its status line and headers were still incomplete)"
            )
            return TransportFailure(FailureKind.TOO_SLOW, detail, elapsed)
        body = response.raw.tell() if response.raw is not None else 0
        got = f"{response.status_code} and its headers, then {body} bytes of the body received"
        if silence is not None:
            detail = f"the response stalled for {silence:g} s ({got})"
        else:
            detail = f"the response took longer than {self.seconds:g} s ({got})"
        return TransportFailure(FailureKind.TOO_SLOW, detail, elapsed, body)


def bounded_session(session: requests.Session, seconds: float) -> requests.Session:
    """``session`` with :class:`DeadlineAdapter` for http(s) and no proxy or netrc from the
    environment (as for every client of the run, see :mod:`chatcontract.transport`)."""
    session.trust_env = False
    for prefix in ("http://", "https://"):
        previous = session.adapters.get(prefix)
        if isinstance(previous, DeadlineAdapter) and previous.seconds == seconds:
            continue
        session.mount(prefix, DeadlineAdapter(seconds))
        if previous is not None:
            previous.close()
    return session


_ROUTE_FAILURES = frozenset(
    {FailureKind.NOT_HTTP, FailureKind.SWITCHED, FailureKind.RESET, FailureKind.CLOSED}
)
_SESSIONS_LOCK = threading.Lock()
_DEADLINES: dict[int, float] = {}
"""``id(schemathesis config)`` -> seconds, for the engine runs in progress."""


@contextlib.contextmanager
def _bounded_sessions(config: Any, seconds: float) -> Iterator[None]:
    """Every requests session schemathesis' engine builds for ``config`` gets the deadline.

    schemathesis 4.32 builds all of them (its probes', each worker's) in
    ``schemathesis.engine.context.make_session`` and offers no hook to mount a
    transport adapter on them. So that one function is wrapped, once per
    process; the wrapper leaves sessions of any other config (another
    schemathesis user in this process) exactly as they were.
    """
    from schemathesis.engine import context as engine_context

    with _SESSIONS_LOCK:
        original = engine_context.make_session
        if not getattr(original, "chatcontract_bounded", False):

            def make_session(config: Any, *, operation: Any = None) -> requests.Session:
                session: requests.Session = original(config, operation=operation)
                seconds = _DEADLINES.get(id(config))
                return session if seconds is None else bounded_session(session, seconds)

            make_session.chatcontract_bounded = True  # type: ignore[attr-defined]
            engine_context.make_session = make_session
        _DEADLINES[id(config)] = seconds
    try:
        yield
    finally:
        with _SESSIONS_LOCK:
            _DEADLINES.pop(id(config), None)


def _transport_failure(error: BaseException) -> TransportFailure | None:
    """Our verdict on a request schemathesis could not complete, or None if it is not one."""
    if isinstance(error, ResponseTooSlow | SwitchedProtocols):
        return error.failure
    if not isinstance(error, requests.RequestException):
        return None
    failure = classify(error, elapsed=None, limit=0.0)
    # Refused or unresolved: the target went away, which schemathesis reports itself.
    return failure if failure.kind in _ROUTE_FAILURES else None


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


def _documented_refusal(failure: Any, refusals: Mapping[str, frozenset[int]]) -> bool:
    """schemathesis wants 401, and only 401, for a request without ``Authorization``
    (``missing_required_header``); the spec is the contract, and an operation that
    documents 403 for it (Jupyter Server's) keeps it. Any other answer still fails."""
    header = str(getattr(failure, "header_name", "")).lower()
    status = getattr(failure, "status_code", None)
    label = str(failure.operation or "")
    return header == "authorization" and status in refusals.get(label, frozenset())


class _Collector:
    def __init__(
        self,
        recording: Recording,
        refusals: Mapping[str, frozenset[int]] | None = None,
        producers: frozenset[str] = frozenset(),
    ) -> None:
        self.rec = recording
        self.refusals = refusals or {}
        self.producers = producers
        # Stateful findings are deduplicated apart: a sequence breaking the contract is news
        # for `rest/stateful-links` even when the same operation already failed on its own.
        self._seen: dict[tuple[bool, str], set[tuple[str, Any]]] = {}

    def _creations(self, recorder: Any) -> None:
        """Remember each object a producer's successful answer names, for the cleanup."""
        for case_id, interaction in getattr(recorder, "interactions", {}).items():
            response = getattr(interaction, "response", None)
            status = getattr(response, "status_code", 0)
            node = recorder.cases.get(case_id)
            operation = getattr(getattr(node, "value", None), "operation", None)
            label = getattr(operation, "label", None)
            if label not in self.producers or not 200 <= status < 300:
                continue
            content = getattr(response, "content", b"") or b""
            try:
                body = json.loads(content) if len(content) <= MAX_BODY else None
            except ValueError:
                body = None
            if body is None:
                continue
            if len(self.rec.created) < MAX_CREATED:
                self.rec.created.append((label, body))
            else:
                self.rec.uncounted += 1

    def _failures(
        self, recorder: Any, default_label: str, *, stateful: bool = False
    ) -> list[RecordedFailure]:
        found = []
        for case_id, checks in recorder.checks.items():
            for node in checks:
                info = node.failure_info
                if info is None:
                    continue
                sample = _exact_sample(recorder, case_id) or info.code_sample
                failure = info.failure
                if node.name == "missing_required_header" and _documented_refusal(
                    failure, self.refusals
                ):
                    continue
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
                        code_sample=sample,
                        severity=str(getattr(failure, "severity", "")),
                        code=str(getattr(failure, "code", "")),
                    )
                )
        return found

    def _transport(self, label: str, failure: TransportFailure, code_sample: str) -> None:
        """A request to ``label`` got no usable answer: a finding, once per kind."""
        seen = self._seen.setdefault((False, label), set())
        if ("transport", failure.kind) in seen:
            return
        seen.add(("transport", failure.kind))
        self.rec.failures.setdefault(label, []).append(
            RecordedFailure(
                check="transport",
                operation=label,
                title="",
                message=failure.detail,
                code_sample=code_sample,
                severity="",
                code=failure.code,
            )
        )
        self.rec.tested.add(label)

    def handle(self, event: Any) -> None:
        from schemathesis.engine import Status, events
        from schemathesis.engine.run import PhaseName

        rec = self.rec
        if isinstance(event, events.ScenarioFinished):
            if event.phase is PhaseName.AUTH_BOOTSTRAP:
                return
            label = event.label or event.recorder.label
            if self.producers:
                self._creations(event.recorder)
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
            cut = _transport_failure(event.value)
            if cut is not None and event.related_to_operation:
                self._transport(event.label, cut, event.info.code_sample or "")
                return
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
    with hypothesis_home(cache_folder(plan.cache_dir)):
        return _run(plan)


def _present_tokens(
    schema: Any, protected: Mapping[str, Presentation], get_token: Callable[[], str]
) -> None:
    """One schemathesis auth provider per way of presenting the token, each applied to
    the operations whose security scheme says so (the first matching provider wins)."""
    groups: dict[Presentation, list[str]] = {}
    for operation_id, presented in protected.items():
        groups.setdefault(presented, []).append(operation_id)
    for presented, operation_ids in groups.items():

        class FromCredentials:
            way = presented

            def get(self, case: Any, context: Any) -> str:
                return get_token()

            def set(self, case: Any, data: str, context: Any) -> None:
                case.headers = {**(case.headers or {}), **self.way.headers(data)}
                case.query = {**(case.query or {}), **self.way.params(data)}

        schema.auth(refresh_interval=None).apply_to(operation_id=operation_ids)(FromCredentials)


def _run(plan: EnginePlan) -> Recording:
    import schemathesis
    from schemathesis.engine import from_schema

    started = time.monotonic()
    recording = Recording()
    loaded = schemathesis.openapi.from_dict(_plain(plan.document), config=_config(plan))
    schema = loaded.include(operation_id=list(plan.operation_ids))
    deadline = plan.request_deadline or plan.request_timeout
    if plan.token is not None:
        _present_tokens(schema, plan.protected, plan.token)

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
    collector = _Collector(recording, plan.refusals, plan.producers)
    with _bounded_sessions(schema.config, deadline):
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


def _exact_sample(recorder: Any, case_id: str) -> str | None:
    """A curl line that sends exactly the bytes sent, when they are not UTF-8.

    schemathesis' own sample decodes the body with ``errors="replace"``: a U+FFFD in
    the repro would send other bytes than the ones that broke the contract.
    """
    interaction = getattr(recorder, "interactions", {}).get(case_id)
    request = getattr(interaction, "request", None)
    body = getattr(request, "body", None)
    if request is None or not isinstance(body, bytes):
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return None
    parts = ["curl", "-X", str(request.method)]
    for name, values in dict(request.headers).items():
        if name.lower() in ("content-length", "accept-encoding", "connection", "user-agent"):
            continue
        for value in values if isinstance(values, list) else [values]:
            parts += ["-H", shlex.quote(f"{name}: {value}")]
    escaped = "".join(
        chr(b) if 0x20 <= b < 0x7F and chr(b) not in "\\'" else f"\\x{b:02x}" for b in body
    )
    parts += ["--data-binary", "@-", shlex.quote(str(request.uri))]
    return f"printf '%b' '{escaped}' | " + " ".join(parts)
