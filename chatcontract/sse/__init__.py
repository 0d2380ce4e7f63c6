"""SSE stream contracts: a sans-I/O parser and a stream checker over httpx."""

from __future__ import annotations

from chatcontract.sse.checker import EventStreamChecker, compile_stream
from chatcontract.sse.parser import (
    ParserLimits,
    ParserViolation,
    SSEComment,
    SSEEvent,
    SSEParser,
    SSEUndispatched,
)
from chatcontract.sse.session import SSEOptions
from chatcontract.sse.stream import read_stream

__all__ = [
    "EventStreamChecker",
    "ParserLimits",
    "ParserViolation",
    "SSEComment",
    "SSEEvent",
    "SSEOptions",
    "SSEParser",
    "SSEUndispatched",
    "compile_stream",
    "read_stream",
]
