"""Transport-free checking of event-sequence contracts (``components.x-sequences``).

One :class:`SequenceChecker` follows one run of typed events, whatever carried
them (an SSE stream, a WebSocket conversation, a recorded transcript): feed it
``(type, decoded event, number)`` and it answers with the rules just broken.
It is deliberately pure, no I/O and no clocks, so the SSE and WebSocket
checkers share exactly the same semantics and a test can drive it with plain
lists.

Rules, each violation naming the ``rule`` it broke:

``first``
    The first governed event must be one of ``first``.
``order``
    An event with an order rule needs one of its ``after`` types earlier.
``pair``
    A ``close`` needs a pending ``open`` with the same key (at the pair's JSON
    pointer); a key is opened once per run.
``unclosed-pair``
    An ``open`` still pending at the terminal event (or at the end).
``terminal`` / ``after-terminal`` / ``missing-terminal``
    Exactly one terminal event, and no governed event after it.
``correlation``
    ``consistent``: every governed event has the same value at the pointer.
    ``request``: that value equals the request's value at ``request_pointer``
    when the request has one, else it must be consistent.

An event is named by its *kind* when the contract refines its type
(``kinds``: ``status`` whose ``/content/execution_state`` is ``busy`` is
``status-busy``), so every rule can tell two frames of one type apart;
:func:`event_kind` and :func:`message_type` are the pure extraction both
transports use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

from chatcontract.spec.model import EventKind, SequenceContract

__all__ = [
    "RULES",
    "SequenceChecker",
    "SequenceViolation",
    "event_kind",
    "lookup_pointer",
    "message_type",
]

RULES: Final = frozenset(
    {
        "first",
        "order",
        "pair",
        "unclosed-pair",
        "terminal",
        "after-terminal",
        "missing-terminal",
        "correlation",
    }
)

_MISSING: Final[Any] = object()
_VALUE_WIDTH = 80


@dataclass(frozen=True, slots=True)
class SequenceViolation:
    """One broken rule of one sequence contract."""

    contract: str
    rule: str
    """One of :data:`RULES`."""
    message: str
    """One line, starting with the event it is about: ``event #4 (tool_completed): ...``."""
    index: int
    """The 1-based event number given to :meth:`SequenceChecker.feed`; 0 for end-of-stream."""
    event_type: str | None


def _tokens(pointer: str) -> tuple[str, ...]:
    if not pointer:
        return ()
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


def _resolve(node: Any, tokens: tuple[str, ...]) -> Any:
    for token in tokens:
        if type(node) is dict or isinstance(node, Mapping):
            node = node.get(token, _MISSING)
            if node is _MISSING:
                return _MISSING
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return _MISSING
    return node


def _nothing(event: Any) -> None:
    return None


def lookup_pointer(document: Any, pointer: str, default: Any = None) -> Any:
    """The value at a JSON pointer (RFC 6901) in ``document``, or ``default``."""
    found = _resolve(document, _tokens(pointer))
    return default if found is _MISSING else found


def message_type(value: Any, discriminator: str) -> str | None:
    """A message's type: the string at ``discriminator``, a top-level property name
    (``type``) or a JSON pointer (``/header/msg_type``); ``None`` when there is none."""
    if not isinstance(value, dict):
        return None
    if discriminator.startswith("/"):
        found = _resolve(value, _tokens(discriminator))
    else:
        found = value.get(discriminator)
    return found if isinstance(found, str) else None


def event_kind(kinds: Sequence[EventKind], event_type: str, event: Any) -> str:
    """The name rules know ``event`` by: the first kind of its type whose every
    ``where`` holds, else its type."""
    for kind in kinds:
        if kind.type == event_type and all(
            _same(_resolve(event, _tokens(pointer)), value) for pointer, value in kind.where
        ):
            return kind.name
    return event_type


def _same(found: Any, value: Any) -> bool:
    return found is not _MISSING and found == value and type(found) is type(value)


def _show(value: Any) -> str:
    # repr() for anything unprintable, so a hostile value cannot break the one-line message.
    text = f"'{value}'" if isinstance(value, str) and value.isprintable() else repr(value)
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


def _one_of(types: Sequence[str]) -> str:
    if len(types) == 1:
        return types[0]
    return "one of " + ", ".join(types)


def _either(types: Sequence[str]) -> str:
    return " or ".join(types)


def _noun(pointer: str) -> str:
    """``/payload/tool_call_id`` -> ``tool call``: what a pair key identifies, for messages."""
    last = _tokens(pointer)[-1] if pointer else "key"
    for suffix in ("_id", "Id", "-id"):
        if last.endswith(suffix) and len(last) > len(suffix):
            last = last[: -len(suffix)]
            break
    return last.replace("_", " ").replace("-", " ")


@dataclass(slots=True)
class _PairState:
    open: str
    close: str
    pointer: str
    tokens: tuple[str, ...]
    noun: str
    pending: dict[Any, int]
    """Key -> number of the event that opened it."""
    used: dict[Any, tuple[int, str]]
    """Key -> (event number, type) that last opened or closed it; keys live once per run."""


@dataclass(slots=True)
class _CorrelationState:
    pointer: str
    tokens: tuple[str, ...]
    expected: Any
    source: str
    """Where ``expected`` came from, for messages: ``the request`` or ``event #1``."""
    top: str | None
    """The key, for a one-token pointer: most correlations (``/run_id``) need no walk."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything one event type is subject to, found with a single dict lookup per event."""

    after: tuple[tuple[str, ...], ...]
    opens: tuple[_PairState, ...]
    closes: tuple[_PairState, ...]
    terminal: bool
    remembered: bool
    """Some order rule asks whether this type was seen."""
    rules: bool
    """An order, pair or terminal rule applies: events of most types only need their
    correlations checked (and perhaps remembering)."""


class SequenceChecker:
    """Follows one run of events against one :class:`SequenceContract`."""

    __slots__ = (
        "_contract",
        "_correlations",
        "_count",
        "_edge",
        "_fast",
        "_fast_expected",
        "_finished",
        "_first",
        "_kinds",
        "_max_violations",
        "_pairs",
        "_plans",
        "_seen",
        "_terminal_at",
        "_violations",
    )

    def __init__(
        self,
        contract: SequenceContract,
        request: Mapping[str, Any] | None = None,
        *,
        max_violations: int = 100,
    ) -> None:
        self._contract = contract
        self._kinds = contract.kinds
        self._first = frozenset(contract.first)
        after: dict[str, list[tuple[str, ...]]] = {}
        for rule in contract.order:
            after.setdefault(rule.event, []).append(rule.after)
        remembered = {name for rule in contract.order for name in rule.after}
        self._pairs = tuple(
            _PairState(p.open, p.close, p.key, _tokens(p.key), _noun(p.key), {}, {})
            for p in contract.pairs
        )
        self._plans = {}
        for name in contract.events:
            rule_after = tuple(after.get(name, ()))
            opens = tuple(p for p in self._pairs if p.open == name)
            closes = tuple(p for p in self._pairs if p.close == name)
            terminal = name in contract.terminal
            seen = name in remembered
            self._plans[name] = _Plan(
                rule_after,
                opens,
                closes,
                terminal,
                seen,
                bool(rule_after or opens or closes or terminal),
            )
        correlations = []
        for correlation in contract.correlate:
            expected = _MISSING
            source = ""
            if correlation.source == "request" and correlation.request_pointer is not None:
                expected = _resolve(request, _tokens(correlation.request_pointer))
                source = "the request"
            tokens = _tokens(correlation.pointer)
            top = tokens[0] if len(tokens) == 1 else None
            correlations.append(
                _CorrelationState(correlation.pointer, tokens, expected, source, top)
            )
        self._correlations = tuple(correlations)
        self._fast: Callable[[Any], Any] | None = None if correlations else _nothing
        self._fast_expected: Any = None
        # The first event is still to come (and must be checked), or the run ended.
        self._edge = bool(contract.first)
        self._seen: set[str] = set()
        self._count = 0
        self._terminal_at: tuple[int, str] | None = None
        self._violations: list[SequenceViolation] = []
        self._max_violations = max_violations
        self._finished = False

    @property
    def contract(self) -> SequenceContract:
        return self._contract

    @property
    def terminated(self) -> bool:
        """Whether a terminal event has been seen."""
        return self._terminal_at is not None

    @property
    def violations(self) -> tuple[SequenceViolation, ...]:
        """Every violation so far (at most ``max_violations``), in order."""
        return tuple(self._violations)

    @property
    def governed_events(self) -> int:
        """How many events this contract governs have been fed."""
        return self._count

    def feed(
        self, event_type: str, event: Mapping[str, Any] | None, index: int
    ) -> list[SequenceViolation]:
        """Check one event; types outside ``contract.events`` are ignored.

        ``event`` is ``None`` for an event that carries no JSON (a ``[DONE]``
        sentinel, a block without data): it counts for every rule but the
        correlations, which it has nothing to show for.

        Returns the violations this event caused (empty when it kept every rule).
        An event of a type the contract refines is judged as its kind (:func:`event_kind`).
        """
        if self._kinds:
            event_type = event_kind(self._kinds, event_type, event)
        plan = self._plans.get(event_type)
        if plan is None:
            return []
        # Runs once per event of every stream, so the common path avoids calls and
        # attribute lookups: an event that matches the run's correlations and has
        # no other rule returns at once; otherwise violations land in
        # self._violations and the new tail is returned.
        self._count += 1
        fast = self._fast
        same = False
        if fast is not None and not self._edge and type(event) is dict:
            try:
                same = fast(event) == self._fast_expected
            except KeyError:
                same = False
            if same and not plan.rules:
                if plan.remembered:
                    self._seen.add(event_type)
                return []
        violations = self._violations
        before = len(violations)
        if self._edge:
            # The first event is due, or the run already ended.
            if self._terminal_at is not None:
                self._after_end(plan, event_type, index)
                return violations[before:]
            self._edge = False
            if event_type not in self._first:
                name = self._contract.name
                text = f"the first {name} event must be {_either(self._contract.first)}"
                self._add("first", index, event_type, text)
        if not same and event is not None:
            self._correlate_all(event, index, event_type)
        if plan.rules:
            for after in plan.after:
                if self._seen.isdisjoint(after):
                    text = f"must come after {_one_of(after)}, none seen before it"
                    self._add("order", index, event_type, text)
            # Pair keys are found by plain indexing, cheaper than _resolve; anything
            # it cannot reach (a missing key, a list on the way) takes _open/_close,
            # which resolve the pointer properly and judge the event.
            for pair in plan.opens:
                key: Any = event
                try:
                    for token in pair.tokens:
                        key = key[token]
                except (KeyError, TypeError, IndexError):
                    key = None
                if type(key) is str and key not in pair.used:
                    pair.pending[key] = index
                    pair.used[key] = (index, event_type)
                else:
                    self._open(pair, event, index, event_type)
            for pair in plan.closes:
                key = event
                try:
                    for token in pair.tokens:
                        key = key[token]
                except (KeyError, TypeError, IndexError):
                    key = None
                if type(key) is str and pair.pending.pop(key, None) is not None:
                    pair.used[key] = (index, event_type)
                else:
                    self._close(pair, event, index, event_type)
            if plan.terminal:
                self._terminal_at = (index, event_type)
                self._edge = True
                self._unclosed(index, event_type, "ends the run while")
        # Only after the order checks, so a type never satisfies its own rule.
        if plan.remembered:
            self._seen.add(event_type)
        return violations[before:] if len(violations) != before else []

    def finish(self) -> list[SequenceViolation]:
        """Judge the end of the events: a missing terminal, pairs left open. Idempotent."""
        if self._finished:
            return []
        self._finished = True
        before = len(self._violations)
        if self._terminal_at is None:
            name = self._contract.name
            terminals = _either(self._contract.terminal)
            plural = "" if self._count == 1 else "s"
            text = (
                f"the events ended without a terminal {name} event ({terminals}) "
                f"after {self._count} {name} event{plural}"
            )
            self._add("missing-terminal", 0, None, text)
            self._unclosed(0, None, "the events ended while")
        return self._violations[before:]

    def _add(self, rule: str, index: int, event_type: str | None, text: str) -> None:
        if len(self._violations) >= self._max_violations:
            return
        message = f"event #{index} ({event_type}): {text}" if index else text
        self._violations.append(
            SequenceViolation(self._contract.name, rule, message, index, event_type)
        )

    def _after_end(self, plan: _Plan, event_type: str, index: int) -> None:
        # Only the one fact matters after the end; pair or order noise would bury it.
        assert self._terminal_at is not None
        at, kind = self._terminal_at
        if plan.terminal:
            self._add(
                "terminal", index, event_type, f"a second terminal event after event #{at} ({kind})"
            )
        else:
            self._add(
                "after-terminal",
                index,
                event_type,
                f"arrives after the terminal event #{at} ({kind})",
            )

    def _correlate_all(self, event: Mapping[str, Any], index: int, event_type: str) -> None:
        is_dict = type(event) is dict
        for state in self._correlations:
            key = state.top
            if is_dict and key is not None:
                value = event.get(key, _MISSING)
            else:
                value = _resolve(event, state.tokens)
            expected = state.expected
            # An unset expectation is a sentinel that no JSON value equals.
            if value != expected or value is _MISSING or type(value) is not type(expected):
                self._correlate(state, value, index, event_type)
        correlations = self._correlations
        if self._fast is None and all(
            type(c.expected) is str and c.top is not None for c in correlations
        ):
            # Every expectation is now a known string under a top-level key: one
            # C-level itemgetter and a tuple comparison check them all from here on
            # (a non-string never equals a string, so no type check is lost).
            keys = [c.top for c in correlations if c.top is not None]
            self._fast = itemgetter(*keys)
            expected = tuple(c.expected for c in correlations)
            # itemgetter of a single key returns the bare value, not a 1-tuple.
            self._fast_expected = expected if len(keys) > 1 else expected[0]

    def _correlate(self, state: _CorrelationState, value: Any, index: int, event_type: str) -> None:
        if value is _MISSING:
            self._add("correlation", index, event_type, f"has no {state.pointer}")
        elif state.expected is _MISSING:
            state.expected = value
            state.source = f"event #{index} ({event_type})"
        else:
            text = (
                f"{state.pointer} is {_show(value)} but {state.source} has {_show(state.expected)}"
            )
            self._add("correlation", index, event_type, text)

    def _open(
        self, state: _PairState, event: Mapping[str, Any] | None, index: int, event_type: str
    ) -> None:
        key = _resolve(event, state.tokens)
        # null is no key; bool keys would collide with 1/0 in the pending map.
        if key is _MISSING or key is None or isinstance(key, dict | list | bool):
            self._add("pair", index, event_type, f"has no {state.noun} key at {state.pointer}")
            return
        earlier = state.used.get(key)
        if earlier is None:
            state.pending[key] = index
            state.used[key] = (index, event_type)
            return
        at, kind = earlier
        if key in state.pending:
            text = f"opens {state.noun} {_show(key)} again while event #{at} ({kind}) holds it open"
        elif kind == state.close:
            text = f"opens {state.noun} {_show(key)} after event #{at} ({kind}) already closed it"
        else:
            text = f"reuses {state.noun} {_show(key)} already opened by event #{at} ({kind})"
        self._add("pair", index, event_type, text)

    def _close(
        self, state: _PairState, event: Mapping[str, Any] | None, index: int, event_type: str
    ) -> None:
        key = _resolve(event, state.tokens)
        # null is no key; bool keys would collide with 1/0 in the pending map.
        if key is _MISSING or key is None or isinstance(key, dict | list | bool):
            self._add("pair", index, event_type, f"has no {state.noun} key at {state.pointer}")
            return
        if state.pending.pop(key, None) is not None:
            state.used[key] = (index, event_type)
            return
        earlier = state.used.get(key)
        if earlier is None:
            text = f"closes {state.noun} {_show(key)} that was never opened by {state.open}"
            state.used[key] = (index, event_type)
        else:
            at, kind = earlier
            text = (
                f"closes {state.noun} {_show(key)} again (event #{at} ({kind}) already closed it)"
            )
        self._add("pair", index, event_type, text)

    def _unclosed(self, index: int, event_type: str | None, lead: str) -> None:
        for state in self._pairs:
            for key, opened in state.pending.items():
                text = (
                    f"{lead} {state.noun} {_show(key)} opened by event #{opened} "
                    f"({state.open}) is still open (no {state.close})"
                )
                self._add("unclosed-pair", index, event_type, text)
            state.pending.clear()
