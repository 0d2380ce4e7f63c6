"""Judging parsed SSE events against a stream's contract, without any I/O.

:class:`EventStreamChecker` is the hot path of every stream check: for each
:class:`~chatcontract.sse.parser.SSEEvent` it decodes the JSON ``data``,
names the event's type (from the SSE ``event`` field or a discriminator inside
the data, as the spec says), validates it with the schema compiled once per
stream, and feeds it to one :class:`~chatcontract.sequence.SequenceChecker`
per ``x-sequence``. Findings are sorted by *aspect* (``events`` or
``sequence:<name>``) so the category can turn each aspect into one result.
The reader in :mod:`chatcontract.sse.stream` owns sockets and clocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from chatcontract.report.model import Finding
from chatcontract.schemas import Validator, compile_schema
from chatcontract.sequence import SequenceChecker, SequenceViolation
from chatcontract.spec.model import SequenceContract, Spec, StreamContract
from chatcontract.sse.parser import SSEEvent

__all__ = [
    "EVENTS",
    "CompiledStream",
    "EventStreamChecker",
    "compile_stream",
    "sequence_aspect",
]

EVENTS: Final = "events"
"""Aspect of per-event findings: JSON, type, schema (and, from the reader, transport)."""

_loads = orjson.loads
_SCHEMA_ERRORS_PER_EVENT = 3


def sequence_aspect(name: str) -> str:
    return f"sequence:{name}"


@dataclass(frozen=True, slots=True)
class CompiledStream:
    """A stream contract with its validators compiled and its sequences looked up."""

    stream: StreamContract
    label: str
    validators: Mapping[str, Validator]
    sequences: tuple[SequenceContract, ...]
    known_types: str
    """The spec's event types, for the unknown-type message."""
    run_pointers: tuple[str, ...]
    """Pointers every event of a run must agree on (``consistent`` correlations):
    the run's identity, used by the resume and isolation checks."""


# Keyed by the identities of the (immutable) stream contract and spec; the entry
# holds both objects, so neither id can be reused while the entry exists.
_COMPILED: dict[tuple[int, int], tuple[StreamContract, Spec | None, CompiledStream]] = {}
_COMPILED_MAX = 64


def compile_stream(stream: StreamContract, spec: Spec | None = None) -> CompiledStream:
    """Compile ``stream`` once; later calls with the same contract object are free.

    ``spec`` supplies the sequence contracts named by ``x-sequence``; without it
    only per-event checks run.
    """
    key = (id(stream), id(spec))
    cached = _COMPILED.get(key)
    if cached is not None and cached[0] is stream and cached[1] is spec:
        return cached[2]
    sequences = tuple(
        spec.sequences[name] for name in stream.sequences if spec and name in spec.sequences
    )
    pointers: list[str] = []
    for sequence in sequences:
        for correlation in sequence.correlate:
            if correlation.source == "consistent" and correlation.pointer not in pointers:
                pointers.append(correlation.pointer)
    compiled = CompiledStream(
        stream=stream,
        label=stream.operation.label,
        validators={name: compile_schema(schema) for name, schema in stream.event_schemas.items()},
        sequences=sequences,
        known_types=", ".join(stream.event_schemas),
        run_pointers=tuple(pointers),
    )
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[key] = (stream, spec, compiled)
    return compiled


class EventStreamChecker:
    """Checks one stream's events, in order; keep one per stream (or per resumed run)."""

    __slots__ = (
        "_by_event_field",
        "_capped",
        "_compiled",
        "_discriminator",
        "_feeds",
        "_label",
        "_max_findings",
        "_sequences",
        "_validators",
        "events",
        "findings",
        "last_data",
        "last_type",
    )

    def __init__(
        self,
        compiled: CompiledStream,
        request: Mapping[str, Any] | None = None,
        *,
        max_findings: int = 25,
    ) -> None:
        self._compiled = compiled
        self._label = compiled.label
        self._validators = compiled.validators
        self._by_event_field = compiled.stream.event_type_from == "event"
        self._discriminator = compiled.stream.discriminator
        self._sequences = tuple(SequenceChecker(s, request) for s in compiled.sequences)
        # Bound once: feed() calls each of them for every event.
        self._feeds = tuple(checker.feed for checker in self._sequences)
        self._max_findings = max_findings
        self._capped: dict[str, int] = {}
        self.events = 0
        """Events fed so far; event numbers in messages count from 1."""
        self.findings: dict[str, list[Finding]] = {EVENTS: []}
        for sequence in compiled.sequences:
            self.findings[sequence_aspect(sequence.name)] = []
        self.last_type: str | None = None
        """The type of the last event fed, when it could be named."""
        self.last_data: Any = None
        """The decoded data of the last event fed (``None`` when it was not JSON)."""

    @property
    def compiled(self) -> CompiledStream:
        return self._compiled

    @property
    def sequences(self) -> tuple[SequenceChecker, ...]:
        return self._sequences

    @property
    def done(self) -> bool:
        """Every sequence reached its terminal event: a reader may stop here."""
        return bool(self._sequences) and all(s.terminated for s in self._sequences)

    def feed(self, event: SSEEvent) -> str | None:
        """Check one event; return its type when it could be named."""
        self.events = number = self.events + 1
        try:
            data = _loads(event.data)
        except orjson.JSONDecodeError as exc:
            return self._undecodable(event, number, exc)
        # orjson decodes every JSON object to a plain dict, so `type(...) is dict`
        # stands in for the much slower isinstance(..., Mapping) on this path.
        is_object = type(data) is dict
        if self._by_event_field:
            event_type: str | None = event.event
            if not event.has_event_field and event_type not in self._validators:
                event_type = self._type_from_field(event, data, number)
            elif is_object:
                inner = data.get(self._discriminator)
                if inner is not None and inner != event_type:
                    event_type = self._type_from_field(event, data, number)
        else:
            event_type = data.get(self._discriminator) if is_object else None
            if type(event_type) is not str:
                self._type_from_data(data, number)
                event_type = None
        self.last_type = event_type
        self.last_data = data
        if event_type is None:
            return None
        validator = self._validators.get(event_type)
        if validator is None:
            self._event_finding(
                f"event #{number} ({event_type})",
                f"unknown event type {event_type!r}; the spec defines {self._compiled.known_types}",
            )
        elif not validator.is_valid(data):
            self._schema_findings(validator, data, number, event_type)
        if is_object:
            for feed in self._feeds:
                violations = feed(event_type, data, number)
                if violations:
                    for violation in violations:
                        self._sequence_finding(violation)
        return event_type

    def finish(self, cut: str | None = None) -> None:
        """Judge the end of the stream; ``cut`` says why reading stopped early, if it did."""
        for checker in self._sequences:
            for violation in checker.finish():
                self._sequence_finding(violation, cut)
        for aspect, dropped in self._capped.items():
            self.findings[aspect].append(
                Finding(
                    f"{self._label}: {dropped} more findings of this kind not shown",
                    severity="warning",
                )
            )
        self._capped.clear()

    def _undecodable(self, event: SSEEvent, number: int, exc: Exception) -> str | None:
        problem = str(exc).split(":", 1)[0]
        event_type = event.event if self._by_event_field and event.has_event_field else None
        where = f"event #{number}" + (f" ({event_type})" if event_type else "")
        self._event_finding(where, f"data is not JSON ({problem}): {_excerpt(event.data)}")
        if self._by_event_field and event_type is None:
            self._type_from_field(event, None, number)
        self.last_type = event_type
        self.last_data = None
        return event_type

    def _type_from_field(self, event: SSEEvent, data: Any, number: int) -> str | None:
        if not event.has_event_field and event.event not in self._validators:
            self._event_finding(
                f"event #{number}",
                "has no SSE event field; this stream names each event's type there",
            )
            return None
        event_type = event.event
        inner = data.get(self._discriminator) if isinstance(data, Mapping) else None
        if inner is not None and inner != event_type:
            self._event_finding(
                f"event #{number} ({event_type}) /{self._discriminator}",
                f"data says {inner!r} but the SSE event field says {event_type!r}",
            )
        return event_type

    def _type_from_data(self, data: Any, number: int) -> None:
        what = "a JSON object" if isinstance(data, Mapping) else f"JSON {type(data).__name__}"
        self._event_finding(
            f"event #{number}",
            f"data is {what} without a string {self._discriminator!r} naming its event type",
        )

    def _schema_findings(
        self, validator: Validator, data: Any, number: int, event_type: str
    ) -> None:
        for error in validator.errors(data, limit=_SCHEMA_ERRORS_PER_EVENT):
            if self._by_event_field and error.pointer == "/" + self._discriminator:
                continue  # already reported as a mismatch with the SSE event field
            self._event_finding(
                f"event #{number} ({event_type}) {error.pointer or '/'}", error.message
            )

    def _add(self, aspect: str, finding: Finding) -> None:
        found = self.findings[aspect]
        if len(found) < self._max_findings:
            found.append(finding)
        else:
            self._capped[aspect] = self._capped.get(aspect, 0) + 1

    def _event_finding(self, location: str, message: str) -> None:
        self._add(EVENTS, Finding(f"{self._label} {location}: {message}", location=location))

    def _sequence_finding(self, violation: SequenceViolation, cut: str | None = None) -> None:
        message = f"{self._label} {violation.message}"
        if cut and violation.index == 0:
            message += f" (reading stopped early: {cut})"
        location = f"event #{violation.index} ({violation.event_type})" if violation.index else ""
        self._add(sequence_aspect(violation.contract), Finding(message, location=location))


def _excerpt(text: str, width: int = 80) -> str:
    line = text.replace("\n", "\\n")
    return repr(line if len(line) <= width else line[: width - 1] + "…")
