"""Throughput of the whole SSE checking pipeline on realistic agent streams.

Measures, on one core, events per second for

* ``pipeline``: parse (SSEParser, 64 KiB chunks) + JSON decode + schema
  validation + every x-sequence of the route (EventStreamChecker);
* ``baseline``: ``orjson.loads`` + a compiled jsonschema-rs ``is_valid`` on the
  same event data, already split out: the floor any Python checker pays;

and prints both with their ratio. The goal is >= 250,000 events/s for the pipeline.

Run: ``.venv/bin/python benchmarks/bench_sse.py [--events N] [--repeat R] [--chunk BYTES]
[--clock wall|cpu]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from chatcontract.spec import StreamContract, load_spec
from chatcontract.sse.checker import EventStreamChecker, compile_stream
from chatcontract.sse.parser import SSEEvent, SSEParser

GOAL = 250_000
RUN_EVENTS = 1000
"""Events per run: the spec's max-events, so each run is as long as a stream may be."""


def _envelope(kind: str, run: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": kind,
        "run_id": f"run_{run:012x}",
        "thread_id": "thread_3f9a2c1b7d4e",
        "timestamp": "2025-09-07T13:10:00.123Z",
        "payload": payload,
    }


def _run(run: int, size: int, chat: bool) -> list[dict[str, Any]]:
    """One valid run of ``size`` events: start, cycles of think/tool/chunk, terminal."""
    events = []
    if chat:
        events.append(_envelope("stream_start", run, {"agent": "research"}))
        events.append(
            _envelope("user_message", run, {"message_id": "msg_51d0c8e2aa97", "content": "hi"})
        )
    events.append(
        _envelope("agent_started", run, {"agent_name": "research", "message": "Compare regions"})
    )
    tail = 4 if chat else 2
    step = 0
    while len(events) < size - tail:
        step += 1
        call = f"call_{step:06d}"
        cycle = [
            _envelope(
                "agent_thinking", run, {"thought": "Check the error budget", "step_number": step}
            ),
            _envelope(
                "tool_executing",
                run,
                {"tool_call_id": call, "tool_name": "query_metrics", "parameters": {"m": "p95"}},
            ),
            _envelope(
                "tool_completed",
                run,
                {
                    "tool_call_id": call,
                    "tool_name": "query_metrics",
                    "result": [0.3, 0.1],
                    "execution_time_ms": 12,
                },
            ),
            _envelope(
                "response_chunk", run, {"content": "Error rates fell 4% ", "is_final": False}
            ),
        ]
        events.extend(cycle[: size - tail - len(events)])
    events.append(_envelope("response_chunk", run, {"content": "overall.", "is_final": True}))
    if chat:
        events.append(_envelope("response_complete", run, {"content": "Error rates fell."}))
    events.append(_envelope("agent_completed", run, {"result": "done", "duration_ms": 830}))
    if chat:
        events.append(_envelope("stream_end", run, {"status": "completed"}))
    return events


def make_runs(total: int, chat: bool) -> list[tuple[bytes, list[str]]]:
    """``(SSE body, data strings)`` per run, for ``total`` events in all."""
    runs = []
    for run in range(0, total, RUN_EVENTS):
        body = []
        datas = []
        for number, event in enumerate(_run(run, min(RUN_EVENTS, total - run), chat), 1):
            data = json.dumps(event, separators=(",", ":"))
            datas.append(data)
            if chat:
                body.append(f"data: {data}\n\n")
            else:
                body.append(
                    f"event: {event['type']}\nid: {event['run_id']}:{number}\ndata: {data}\n\n"
                )
        runs.append(("".join(body).encode(), datas))
    return runs


def pipeline(stream: StreamContract, runs: list[tuple[bytes, list[str]]], chunk: int) -> int:
    compiled = compile_stream(stream, SPEC)
    findings = 0
    for body, _ in runs:
        parser = SSEParser()
        checker = EventStreamChecker(compiled)
        feed = checker.feed
        for start in range(0, len(body), chunk):
            parser.receive_data(body[start : start + chunk])
            for item in parser.events_received():
                if type(item) is SSEEvent:
                    feed(item)
        parser.receive_eof()
        checker.finish()
        findings += sum(len(f) for f in checker.findings.values())
    return findings


def parse_only(stream: StreamContract, runs: list[tuple[bytes, list[str]]], chunk: int) -> int:
    count = 0
    for body, _ in runs:
        parser = SSEParser()
        for start in range(0, len(body), chunk):
            parser.receive_data(body[start : start + chunk])
            count += len(parser.events_received())
        parser.receive_eof()
    return 0 if count else 1


def check_only(stream: StreamContract, parsed: list[list[SSEEvent]], chunk: int) -> int:
    compiled = compile_stream(stream, SPEC)
    findings = 0
    for events in parsed:
        checker = EventStreamChecker(compiled)
        feed = checker.feed
        for event in events:
            feed(event)
        checker.finish()
        findings += sum(len(f) for f in checker.findings.values())
    return findings


def parsed_runs(runs: list[tuple[bytes, list[str]]]) -> list[list[SSEEvent]]:
    out = []
    for body, _ in runs:
        parser = SSEParser()
        parser.receive_data(body)
        out.append([e for e in parser.events_received() if isinstance(e, SSEEvent)])
    return out


def baseline(stream: StreamContract, runs: list[tuple[bytes, list[str]]], chunk: int) -> int:
    validators = compile_stream(stream, SPEC).validators
    invalid = 0
    loads = orjson.loads
    for _, datas in runs:
        for data in datas:
            event = loads(data)
            if not validators[event["type"]].is_valid(event):
                invalid += 1
    return invalid


def best_rate(
    fn: Callable[[], int], events: int, repeat: int, clock: Callable[[], float] = time.perf_counter
) -> tuple[float, int]:
    best = float("inf")
    result = 0
    for _ in range(repeat):
        started = clock()
        result = fn()
        best = min(best, clock() - started)
    return events / best, result


SPEC = load_spec()


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--events", type=int, default=200_000)
    options.add_argument("--repeat", type=int, default=5)
    options.add_argument("--chunk", type=int, default=65536, help="bytes per receive_data call")
    # On a shared machine wall time counts the other tenants' work too; the CPU
    # time of this process is what "events/s per core" means.
    options.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="wall time or process CPU time"
    )
    args = options.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    for route, chat in (("POST /api/agents/stream", False), ("POST /api/chat/stream", True)):
        stream = SPEC.stream(route)
        runs = make_runs(args.events, chat)
        size = sum(len(body) for body, _ in runs) / args.events
        stages = {
            "pipeline (parse+JSON+validate+sequences)": partial(pipeline, stream, runs),
            "  of which the parser alone": partial(parse_only, stream, runs),
            "  of which the checker alone": partial(check_only, stream, parsed_runs(runs)),
            "baseline (orjson.loads + is_valid alone)": partial(baseline, stream, runs),
        }
        rates = {}
        for name, stage in stages.items():
            rate, problems = best_rate(partial(stage, args.chunk), args.events, args.repeat, clock)
            # Valid generated runs: a finding would mean measuring the error paths.
            assert problems == 0, (name, problems)
            rates[name] = rate
        ours = rates["pipeline (parse+JSON+validate+sequences)"]
        floor = rates["baseline (orjson.loads + is_valid alone)"]
        print(
            f"{route}: {args.events:,} events of {size:.0f} B on the wire "
            f"({args.chunk} B chunks, best of {args.repeat}, {args.clock} clock)"
        )
        for name, rate in rates.items():
            print(f"  {name:<42} {rate:>10,.0f} events/s  {1e6 / rate:5.2f} us/event")
        verdict = "meets" if ours >= GOAL else "is BELOW"
        print(f"  pipeline / baseline: {ours / floor:.2f}; the pipeline {verdict} {GOAL:,}/s")


if __name__ == "__main__":
    main()
