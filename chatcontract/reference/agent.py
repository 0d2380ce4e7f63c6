"""The scripted agent: deterministic runs without a model.

A run's shape (which tools, how many response chunks, whether it fails) is a
pure function of the seed, the agent and the message, so a contract failure
found against the reference server reproduces exactly. Only ids, timestamps
and pacing vary between runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import jsonschema_rs

__all__ = [
    "AGENTS",
    "FAIL_MARKER",
    "TOOLS",
    "AgentSpec",
    "RunPlan",
    "ToolCall",
    "ToolSpec",
    "plan_run",
    "run_tool",
]

FAIL_MARKER = "#fail"


@dataclass(frozen=True, slots=True)
class AgentSpec:
    name: str
    description: str
    capabilities: tuple[str, ...]
    tools: tuple[str, ...]
    max_steps: int
    timeout_seconds: int
    model: str = "scripted-v1"


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: Mapping[str, Any]
    run: Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    tool_name: str
    parameters: Mapping[str, Any]
    result: Any
    execution_time_ms: int


@dataclass(frozen=True, slots=True)
class RunPlan:
    agent: str
    message: str
    thought: str
    tool_calls: tuple[ToolCall, ...]
    chunks: tuple[str, ...]
    fails: bool

    @property
    def response(self) -> str:
        return "".join(self.chunks)


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()


def _search_docs(args: Mapping[str, Any]) -> Any:
    query = str(args["query"])
    limit = int(args.get("limit", 3))
    digest = _digest("search_docs", query)
    return {
        "hits": [
            {
                "title": f"{query[:40]} (guide {digest[i] % 97})",
                "url": f"https://docs.example.invalid/{digest[i]:02x}{digest[i + 1]:02x}",
                "score": round(1 - i * 0.1, 2),
            }
            for i in range(limit)
        ]
    }


def _query_metrics(args: Mapping[str, Any]) -> Any:
    metric = str(args["metric"])
    window = int(args.get("window_minutes", 60))
    digest = _digest("query_metrics", metric, args.get("service", ""), window)
    return {
        "metric": metric,
        "service": args.get("service", "all"),
        "window_minutes": window,
        "points": [round(b / 255, 3) for b in digest[:5]],
    }


class ToolFailed(Exception):
    """The tool ran and refused its input; the message is part of the result."""


def _run_sql(args: Mapping[str, Any]) -> Any:
    query = str(args["query"]).strip()
    if not query.lower().startswith("select"):
        raise ToolFailed("only read-only SELECT statements are allowed")
    rows = int(args.get("max_rows", 3))
    digest = _digest("run_sql", query)
    return {
        "columns": ["region", "error_rate"],
        "rows": [[f"region-{digest[i] % 7}", round(digest[i] / 2550, 4)] for i in range(rows)],
    }


TOOLS: Mapping[str, ToolSpec] = MappingProxyType(
    {
        "search_docs": ToolSpec(
            "search_docs",
            "Search the product documentation and runbooks.",
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["query"],
                "properties": {
                    "query": {"type": "string", "minLength": 1, "maxLength": 500},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
                },
            },
            _search_docs,
        ),
        "query_metrics": ToolSpec(
            "query_metrics",
            "Read a service metric over a recent time window.",
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["metric"],
                "properties": {
                    "metric": {"type": "string", "enum": ["error_rate", "latency_p95", "requests"]},
                    "service": {"type": "string", "maxLength": 100},
                    "window_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
                },
            },
            _query_metrics,
        ),
        "run_sql": ToolSpec(
            "run_sql",
            "Run a read-only SQL query against the analytics warehouse.",
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["query"],
                "properties": {
                    "query": {"type": "string", "minLength": 1, "maxLength": 2000},
                    "max_rows": {"type": "integer", "minimum": 1, "maximum": 10},
                },
            },
            _run_sql,
        ),
    }
)

_TOOL_VALIDATORS = {
    name: jsonschema_rs.validator_for(dict(t.parameters)) for name, t in TOOLS.items()
}

AGENTS: Mapping[str, AgentSpec] = MappingProxyType(
    {
        "triage": AgentSpec(
            "triage",
            "Routes a question, answers simple ones, looks up docs and metrics.",
            ("chat", "routing", "tool_use"),
            ("search_docs", "query_metrics"),
            max_steps=4,
            timeout_seconds=60,
        ),
        "research": AgentSpec(
            "research",
            "Digs through docs, metrics and the warehouse to answer in depth.",
            ("chat", "research", "tool_use", "streaming"),
            ("search_docs", "query_metrics", "run_sql"),
            max_steps=8,
            timeout_seconds=120,
        ),
        "data_helper": AgentSpec(
            "data_helper",
            "Answers data questions with metrics and read-only SQL.",
            ("chat", "analytics", "tool_use"),
            ("query_metrics", "run_sql"),
            max_steps=6,
            timeout_seconds=90,
        ),
    }
)


def run_tool(name: str, arguments: Mapping[str, Any]) -> tuple[bool, Any]:
    """Run a tool: ``(True, result)`` or ``(False, error message)``."""
    tool = TOOLS[name]
    errors = [e.message for e in _TOOL_VALIDATORS[name].iter_errors(dict(arguments))]
    if errors:
        return False, "invalid arguments: " + "; ".join(errors)
    try:
        return True, tool.run(arguments)
    except ToolFailed as exc:
        return False, str(exc)


def _arguments_for(tool: str, message: str, digest: int) -> dict[str, Any]:
    topic = message.strip()[:200] or "question"
    if tool == "search_docs":
        return {"query": topic, "limit": 1 + digest % 3}
    if tool == "query_metrics":
        metrics = ("error_rate", "latency_p95", "requests")
        return {"metric": metrics[digest % 3], "window_minutes": 15 * (1 + digest % 8)}
    return {"query": "SELECT region, error_rate FROM incidents LIMIT 3", "max_rows": 3}


def plan_run(agent: AgentSpec, message: str, seed: int) -> RunPlan:
    """The deterministic script of one run."""
    digest = _digest(seed, agent.name, message)
    tool_count = 1 + digest[0] % min(3, len(agent.tools))
    calls = []
    for i in range(tool_count):
        name = agent.tools[(digest[1] + i) % len(agent.tools)]
        args = _arguments_for(name, message, digest[2 + i])
        ok, result = run_tool(name, args)
        calls.append(ToolCall(name, args, result if ok else {"error": result}, digest[5 + i] % 40))
    fails = FAIL_MARKER in message
    answer = (
        f"{agent.name} looked into {message.strip()[:120]!r} with "
        f"{', '.join(c.tool_name for c in calls)}; "
        f"summary: {json.dumps(calls[-1].result, sort_keys=True)[:200]}"
    )
    chunk_count = 2 + digest[9] % 4
    size = -(-len(answer) // chunk_count)
    chunks = tuple(answer[i : i + size] for i in range(0, len(answer), size))
    return RunPlan(
        agent=agent.name,
        message=message,
        thought=f"Step 1: decide which of {', '.join(agent.tools)} can answer this.",
        tool_calls=tuple(calls),
        chunks=chunks,
        fails=fails,
    )
