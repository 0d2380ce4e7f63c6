"""Fault profiles: each one a single, documented breach of the contract.

The reference server is clean by default. A fault profile switches on one
misbehaviour so that a checker can prove it catches exactly what it claims;
``staging-2025-09`` bundles the two failures of the September 2025 status
report. Other engineers' checkers are written against these exact names, so
renaming one is a breaking change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from chatcontract.errors import ConfigError

__all__ = [
    "FAULTS",
    "ActiveFaults",
    "parse_faults",
    "validate_faults",
]

FAULTS: Mapping[str, str] = MappingProxyType(
    {
        "chat-stream-missing": "POST /api/chat/stream answers 404 like an unknown route.",
        "agents-stream-missing": "POST /api/agents/stream answers 404 like an unknown route.",
        "ws-accepts-no-token": "/ws accepts connections that carry no token at all.",
        "ws-accepts-expired": "/ws accepts expired tokens (the signature is still checked).",
        "accepts-alg-none": "unsigned `alg: none` tokens are accepted on REST, SSE and /ws.",
        "ws-accepts-query-token": "/ws accepts a token in the `?token=` query parameter.",
        "events-out-of-order": "tool_completed is sent before its tool_executing (SSE and /ws).",
        "missing-terminal": (
            "runs end without agent_completed/agent_error; the chat stream also lacks "
            "response_complete and stream_end."
        ),
        "cross-user-leak": "a run's events also reach every other user's open streams and sockets.",
        "thread-idor": "another user's thread and its messages are readable (GET only).",
        "response-drift": "Thread.message_count is returned as a string.",
        "event-drift": "agent_thinking.payload.step_number is sent as a string (SSE and /ws).",
        "server-error": "GET /api/threads?limit=100 (a valid boundary value) answers 500.",
        "ws-drops-oversize": "oversize /ws messages are silently dropped instead of close 1009.",
        "ws-acks-unknown-type": "unknown /ws message types get a message_ack, not an error frame.",
        "ws-bad-json-1011": "invalid JSON on /ws closes the connection with 1011.",
        "rate-limit-no-retry-after": (
            "POST /api/chat/messages is limited to 3 requests a minute and its 429 lacks "
            "Retry-After."
        ),
        "stream-stall": "both SSE routes send their first event and then stall without heartbeats.",
        "staging-2025-09": (
            "the status report's staging: both stream routes 404 and /ws refuses every "
            "handshake with 403, even with tokens REST accepts."
        ),
    }
)

# Behaviour switched on only as part of a composite; it is not a profile of its
# own because nobody asked a checker to isolate it.
WS_REJECTS_ALL = "ws-rejects-all"

_COMPOSITES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "staging-2025-09": frozenset(
            {"chat-stream-missing", "agents-stream-missing", WS_REJECTS_ALL}
        ),
    }
)


def validate_faults(names: Iterable[str]) -> frozenset[str]:
    """Return ``names`` as a frozenset, or raise ConfigError naming the first unknown one."""
    chosen = frozenset(names)
    for name in sorted(chosen):
        if name not in FAULTS:
            valid = ", ".join(FAULTS)
            raise ConfigError(f"unknown fault profile {name!r}; valid profiles: {valid}")
    return chosen


def parse_faults(value: str | Iterable[str] | None) -> frozenset[str]:
    """Fault names from a comma- or space-separated string (a CLI option) or an iterable."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return validate_faults(name.strip() for name in value if name.strip())


@dataclass(frozen=True, slots=True)
class ActiveFaults:
    """The behaviours switched on, with composite profiles expanded."""

    profiles: frozenset[str]
    behaviours: frozenset[str]

    @classmethod
    def of(cls, profiles: Iterable[str]) -> ActiveFaults:
        chosen = validate_faults(profiles)
        expanded = set(chosen)
        for name in chosen:
            expanded |= _COMPOSITES.get(name, frozenset())
        return cls(profiles=chosen, behaviours=frozenset(expanded))

    def __contains__(self, behaviour: object) -> bool:
        return behaviour in self.behaviours

    def __bool__(self) -> bool:
        return bool(self.profiles)
