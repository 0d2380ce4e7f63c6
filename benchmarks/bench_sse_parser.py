"""Throughput of the SSE parser alone on a realistic agent event stream.

Run: ``.venv/bin/python benchmarks/bench_sse_parser.py [--events N] [--chunk BYTES]``.
"""

from __future__ import annotations

import argparse
import json
import time

from chatcontract.sse.parser import SSEEvent, SSEParser

_TYPES = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")


def make_frames(events: int) -> list[bytes]:
    """Frames shaped like the agent protocol: an id, sometimes an event field, ~200 B of JSON."""
    frames = []
    for number in range(events):
        payload = {
            "type": _TYPES[number % len(_TYPES)],
            "run_id": "run_7f3c2a9e4b1d4e0f8a6c5b3d2e1f0a9b",
            "timestamp": "2025-09-07T12:34:56.789012+00:00",
            "step_number": number,
            "thought": "Looking up the order history before answering the question",
        }
        event = f"event: {payload['type']}\n" if number % 2 else ""
        frames.append(f"id: {number}\n{event}data: {json.dumps(payload)}\n\n".encode())
    return frames


def make_stream(events: int) -> bytes:
    return b"".join(make_frames(events))


def chunked(stream: bytes, size: int) -> list[bytes]:
    return [stream[start : start + size] for start in range(0, len(stream), size)]


def parse(chunks: list[bytes]) -> int:
    """Feed the chunks and drain after each, as a stream reader would; return the event count."""
    parser = SSEParser()
    count = 0
    for chunk in chunks:
        parser.receive_data(chunk)
        count += sum(isinstance(item, SSEEvent) for item in parser.events_received())
    parser.receive_eof()
    return count


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--events", type=int, default=200_000)
    options.add_argument(
        "--chunk", type=int, default=0, help="chunk size in bytes; 0 feeds one event per chunk"
    )
    options.add_argument("--repeat", type=int, default=5)
    args = options.parse_args()

    frames = make_frames(args.events)
    chunks = chunked(b"".join(frames), args.chunk) if args.chunk else frames
    size = sum(map(len, frames))
    best = float("inf")
    for _ in range(args.repeat):
        started = time.perf_counter()
        count = parse(chunks)
        best = min(best, time.perf_counter() - started)
    assert count == args.events, count
    framing = f"{args.chunk} B chunks" if args.chunk else "one chunk per event"
    print(
        f"{args.events} events of {size / args.events:.0f} B, {framing}: "
        f"{args.events / best:,.0f} events/s, {size / best / 1e6:.1f} MB/s (best of {args.repeat})"
    )


if __name__ == "__main__":
    main()
