"""Judging parsed SSE events against a stream's contract, without any I/O.

:class:`EventStreamChecker` is the hot path of every stream check: for each
:class:`~chatcontract.sse.parser.SSEEvent` it names the event's type from the
one place the spec puts it (the SSE ``event`` field, a discriminator inside the
JSON data, or a sentinel such as ``[DONE]``), validates the data as that type
declares it (JSON against its schema, or a plain string), and feeds typed
events to one :class:`~chatcontract.sequence.SequenceChecker` per
``x-sequence``. Events no type names are validated against the spec's untyped
branches, if it has some. Findings are sorted by *aspect* (``events`` or
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
from chatcontract.spec.model import EventShape, SequenceContract, Spec, StreamContract
from chatcontract.sse.parser import SSEEvent, SSEUndispatched

__all__ = [
    "EVENTS",
    "CompiledKind",
    "CompiledStream",
    "EventStreamChecker",
    "compile_stream",
    "sequence_aspect",
]

EVENTS: Final = "events"
"""Aspect of per-event findings: JSON, type, schema (and, from the reader, transport)."""

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_SCHEMA_ERRORS_PER_EVENT = 3
_UNDECODED: Final[Any] = object()
_Block = SSEEvent | SSEUndispatched
"""What the checker is fed; the helpers read only ``event``, ``data`` and ``has_event_field``."""


def sequence_aspect(name: str) -> str:
    return f"sequence:{name}"


@dataclass(frozen=True, slots=True)
class CompiledKind:
    """One :class:`~chatcontract.spec.model.EventShape`, its schemas compiled."""

    name: str
    json: Validator | None
    """For JSON data; ``None``: this kind's data is not JSON."""
    text: Validator | None
    """For the data as a plain string (a sentinel); ``None``: no such form, unless
    ``any_text``."""
    any_text: bool
    """Any string is valid data (the spec says nothing about ``data``)."""
    dataless: bool

    def text_ok(self, data: str) -> bool:
        return self.any_text or (self.text is not None and self.text.is_valid(data))


def _compile_kind(shape: EventShape) -> CompiledKind:
    text = shape.text
    return CompiledKind(
        shape.name,
        None if shape.json is None else compile_schema(shape.json),
        None if text is None or text is True or text == {} else compile_schema(text),
        text is True or text == {},
        shape.dataless,
    )


@dataclass(frozen=True, slots=True)
class CompiledStream:
    """A stream contract with its validators compiled and its sequences looked up."""

    stream: StreamContract
    label: str
    validators: Mapping[str, Validator]
    """Event type -> validator of its decoded JSON data (the types whose data is JSON)."""
    sequences: tuple[SequenceContract, ...]
    known_types: str
    """The spec's event types, for the unknown-type message."""
    run_pointers: tuple[str, ...]
    """Pointers every event of a run must agree on (``consistent`` correlations):
    the run's identity, used by the resume and isolation checks."""
    kinds: Mapping[str, CompiledKind]
    fallback: CompiledKind | None
    """What events no type names are validated against, if the spec says."""

    def declares_dataless(self, event_type: str) -> bool:
        """Whether the spec declares ``event_type`` as an event without data."""
        kind = self.kinds.get(event_type)
        return kind is not None and kind.dataless


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
    kinds = {name: _compile_kind(shape) for name, shape in stream.kinds.items()}
    compiled = CompiledStream(
        stream=stream,
        label=stream.operation.label,
        validators={name: kind.json for name, kind in kinds.items() if kind.json is not None},
        sequences=sequences,
        known_types=", ".join(stream.kinds) or "no event types",
        run_pointers=tuple(pointers),
        kinds=kinds,
        fallback=None if stream.fallback is None else _compile_kind(stream.fallback),
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
        "_fallback",
        "_feeds",
        "_kinds",
        "_label",
        "_max_findings",
        "_sentinels",
        "_sequences",
        "_typed_by_data",
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
        stream = compiled.stream
        self._compiled = compiled
        self._label = compiled.label
        self._validators = compiled.validators
        self._kinds = compiled.kinds
        self._fallback = compiled.fallback
        self._sentinels = stream.sentinels
        self._by_event_field = stream.event_type_from == "event"
        self._typed_by_data = stream.event_type_from == "data"
        self._discriminator = stream.discriminator if self._typed_by_data else None
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

    def feed(self, event: SSEEvent | SSEUndispatched) -> str | None:
        """Check one event; return its type when it could be named.

        An :class:`SSEUndispatched` block counts as an event only when the spec
        declares its type without data (:meth:`CompiledStream.declares_dataless`);
        the reader asks first. Such a block has no data, so the paths that notice
        it (data that is not JSON, a type without a JSON schema) are off this one.
        """
        self.events = number = self.events + 1
        event_type: str | None
        if self._by_event_field:
            event_type = event.event
            validator = self._validators.get(event_type)
            if validator is None:
                return self._by_field(event, number)
            try:
                data = _loads(event.data)
            except _JSONDecodeError as exc:
                return self._by_field_not_json(event, number, event_type, exc)
            if not validator.is_valid(data):
                self._invalid(self._kinds[event_type], event, data, number, event_type)
            # orjson decodes every JSON object to a plain dict, so `type(...) is dict`
            # stands in for the much slower isinstance(..., Mapping) on this path.
            is_object = type(data) is dict
        else:
            try:
                data = _loads(event.data)
            except _JSONDecodeError as exc:
                return self._not_json(event, number, exc)
            is_object = type(data) is dict
            # Untyped streams look up the key None, which no JSON object has.
            event_type = data.get(self._discriminator) if is_object else None
            if type(event_type) is str:
                validator = self._validators.get(event_type)
                if validator is None:
                    event_type = self._unlisted(event, data, number, event_type)
                elif not validator.is_valid(data):
                    self._invalid(self._kinds[event_type], event, data, number, event_type)
            else:
                event_type = self._untyped(event, data, number)
        self.last_type = event_type
        self.last_data = data
        if event_type is not None and is_object:
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

    def name_of(self, block: SSEEvent | SSEUndispatched) -> str | None:
        """The type ``block`` would have, without judging it (for messages)."""
        if self._by_event_field or not block.data:
            return block.event
        sentinel = self._sentinels.get(block.data)
        if sentinel is not None:
            return sentinel
        if not self._typed_by_data:
            return block.event if block.has_event_field else None
        try:
            data = _loads(block.data)
        except _JSONDecodeError:
            return None
        found = data.get(self._discriminator) if type(data) is dict else None
        return found if type(found) is str else None

    # -- the paths off the hot one -------------------------------------------------------

    def _by_field(self, event: _Block, number: int) -> str | None:
        """Event mode, a type whose data is not JSON (or an unlisted type)."""
        if type(event) is SSEUndispatched:
            return self._dataless(event, number)
        event_type = event.event
        kind = self._kinds.get(event_type)
        if kind is None:
            return self._unnamed_field(event, number)
        if not kind.text_ok(event.data):
            self._text_findings(kind, event, number, event_type)
        self.last_type = event_type
        self.last_data = None
        self._feed_sequences(event_type, None, number)
        return event_type

    def _by_field_not_json(
        self, event: _Block, number: int, event_type: str, exc: Exception
    ) -> str | None:
        """Event mode: a JSON type whose data did not decode (a plain-text alternative?)."""
        if type(event) is SSEUndispatched:
            return self._dataless(event, number)
        kind = self._kinds[event_type]
        self.last_type = event_type
        self.last_data = None
        if kind.text_ok(event.data):
            self._feed_sequences(event_type, None, number)
        else:
            self._event_finding(f"event #{number} ({event_type})", _not_json_message(event, exc))
        return event_type

    def _unnamed_field(self, event: _Block, number: int) -> str | None:
        """Event mode, a type the spec does not list: untyped branches, or a finding."""
        try:
            data = _loads(event.data)
        except _JSONDecodeError:
            data = _UNDECODED
        self.last_type = None
        self.last_data = None if data is _UNDECODED else data
        fallback = self._fallback
        if fallback is not None:
            self._judge_fallback(fallback, event, data, number)
            return None
        if not event.has_event_field:
            self._event_finding(
                f"event #{number}",
                "has no SSE event field; this stream names each event's type there",
            )
            return None
        event_type = event.event
        self._event_finding(
            f"event #{number} ({event_type})",
            f"unknown event type {event_type!r}; the spec defines {self._compiled.known_types}",
        )
        self.last_type = event_type
        return event_type

    def _unlisted(self, event: _Block, data: Any, number: int, event_type: str) -> str | None:
        """Data mode: the data names a type without a JSON schema."""
        kind = self._kinds.get(event_type)
        if kind is not None:
            if not kind.text_ok(event.data):
                self._text_findings(kind, event, number, event_type)
            return event_type
        fallback = self._fallback
        if fallback is not None:
            self._judge_fallback(fallback, event, data, number)
            return None
        self._event_finding(
            f"event #{number} ({event_type})",
            f"unknown event type {event_type!r}; the spec defines {self._compiled.known_types}",
        )
        return event_type

    def _untyped(self, event: _Block, data: Any, number: int) -> str | None:
        """Data mode or an untyped stream: JSON data that names no type."""
        sentinel = self._sentinels.get(event.data)
        if sentinel is not None:
            return self._sentinel(event, number, sentinel)
        fallback = self._fallback
        if fallback is not None:
            self._judge_fallback(fallback, event, data, number)
        elif self._typed_by_data:
            what = "a JSON object" if type(data) is dict else f"JSON {type(data).__name__}"
            self._event_finding(
                f"event #{number}",
                f"data is {what} without a string {self._discriminator!r} naming its event type",
            )
        return None

    def _not_json(self, event: _Block, number: int, exc: Exception) -> str | None:
        """Data mode or an untyped stream: data that is not JSON (a sentinel, plain text)."""
        if type(event) is SSEUndispatched:
            return self._dataless(event, number)
        self.last_data = None
        sentinel = self._sentinels.get(event.data)
        if sentinel is not None:
            self.last_type = sentinel
            return self._sentinel(event, number, sentinel)
        self.last_type = None
        fallback = self._fallback
        if fallback is not None and (fallback.any_text or fallback.text is not None):
            if not fallback.text_ok(event.data):
                self._text_findings(fallback, event, number, None)
        elif fallback is not None or self._typed_by_data:
            self._event_finding(f"event #{number}", _not_json_message(event, exc))
        return None

    def _sentinel(self, event: _Block, number: int, event_type: str) -> str:
        kind = self._kinds.get(event_type)
        if kind is not None and not kind.text_ok(event.data):
            self._text_findings(kind, event, number, event_type)
        self.last_type = event_type
        self._feed_sequences(event_type, None, number)
        return event_type

    def _dataless(self, block: SSEUndispatched, number: int) -> str | None:
        """A block without data whose type the spec declares without data."""
        kind = self._kinds.get(block.event)
        self.last_type = None
        self.last_data = None
        if kind is None or not kind.dataless or block.reason != "no-data":
            self.events -= 1  # the reader asks first; anything else is not an event
            return None
        self.last_type = block.event
        self._feed_sequences(block.event, None, number)
        return block.event

    def _feed_sequences(self, event_type: str, data: Any, number: int) -> None:
        for feed in self._feeds:
            for violation in feed(event_type, data, number):
                self._sequence_finding(violation)

    def _judge_fallback(self, kind: CompiledKind, event: _Block, data: Any, number: int) -> None:
        """Validate against the untyped branches; ``data`` is ``_UNDECODED`` if not JSON."""
        validator = kind.json
        decoded = data is not _UNDECODED
        if validator is not None and decoded and validator.is_valid(data):
            return
        if kind.text_ok(event.data):
            return
        if validator is not None and decoded:
            self._schema_findings(validator, data, number, None)
        elif kind.text is not None:
            self._text_findings(kind, event, number, None)
        else:
            self._event_finding(f"event #{number}", f"data is not JSON: {_excerpt(event.data)}")

    def _invalid(
        self, kind: CompiledKind, event: _Block, data: Any, number: int, event_type: str
    ) -> None:
        if kind.text_ok(event.data):
            return
        assert kind.json is not None
        self._schema_findings(kind.json, data, number, event_type)

    def _schema_findings(
        self, validator: Validator, data: Any, number: int, event_type: str | None
    ) -> None:
        where = f"event #{number}" + (f" ({event_type})" if event_type else "")
        for error in validator.errors(data, limit=_SCHEMA_ERRORS_PER_EVENT):
            self._event_finding(f"{where} {error.pointer or '/'}", error.message)

    def _text_findings(
        self, kind: CompiledKind, event: _Block, number: int, event_type: str | None
    ) -> None:
        where = f"event #{number}" + (f" ({event_type})" if event_type else "")
        if kind.text is None:
            self._event_finding(where, f"data {_excerpt(event.data)} is not JSON")
            return
        errors = kind.text.errors(event.data, limit=1)
        detail = errors[0].message if errors else "does not match the spec"
        self._event_finding(f"{where} data", f"{_excerpt(event.data)}: {detail}")

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


def _not_json_message(event: _Block, exc: Exception) -> str:
    problem = str(exc).split(":", 1)[0]
    return f"data is not JSON ({problem}): {_excerpt(event.data)}"


def _excerpt(text: str, width: int = 80) -> str:
    line = text.replace("\n", "\\n")
    return repr(line if len(line) <= width else line[: width - 1] + "…")
