"""REST handlers: health, agents, runs, tools, threads and messages.

Handlers see only requests that passed authentication and spec validation
(see routing.py), so they deal with resources, never with input shape.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import JSONResponse, Response

from chatcontract import __version__
from chatcontract.reference.agent import AGENTS, TOOLS, run_tool
from chatcontract.reference.problems import problem
from chatcontract.reference.routing import Call, handles
from chatcontract.reference.runs import Run
from chatcontract.reference.store import ThreadRecord, utc_now

__all__ = [
    "run_json",
    "thread_json",
]


def thread_json(thread: ThreadRecord, call: Call) -> dict[str, Any]:
    count: int | str = thread.message_count
    if "response-drift" in call.services.faults:
        count = str(count)
    return {
        "id": thread.id,
        "title": thread.title,
        "created_at": thread.created_at,
        "updated_at": thread.updated_at,
        "message_count": count,
        "metadata": dict(thread.metadata),
    }


def run_json(run: Run) -> dict[str, Any]:
    body: dict[str, Any] = {
        "run_id": run.run_id,
        "agent": run.agent,
        "status": run.status,
        "started_at": run.started_at,
    }
    if run.thread_id is not None:
        body["thread_id"] = run.thread_id
    if run.finished_at is not None:
        body["finished_at"] = run.finished_at
    return body


def _health() -> Response:
    return JSONResponse(
        {
            "status": "healthy",
            "service": "chat-reference",
            "version": __version__,
            "timestamp": utc_now(),
        }
    )


@handles("getHealth")
async def get_health(call: Call) -> Response:
    return _health()


@handles("getLiveness")
async def get_liveness(call: Call) -> Response:
    return _health()


@handles("getReadiness")
async def get_readiness(call: Call) -> Response:
    return _health()


# agents and runs


@handles("listAgents")
async def list_agents(call: Call) -> Response:
    agents = [
        {
            "name": a.name,
            "description": a.description,
            "capabilities": list(a.capabilities),
            "status": "available",
        }
        for a in AGENTS.values()
    ]
    return JSONResponse({"agents": agents})


@handles("getAgentConfig")
async def get_agent_config(call: Call) -> Response:
    agent = AGENTS.get(call.path["agent_name"])
    if agent is None:
        return problem(404, "no such agent")
    return JSONResponse(
        {
            "name": agent.name,
            "model": agent.model,
            "tools": list(agent.tools),
            "max_steps": agent.max_steps,
            "timeout_seconds": agent.timeout_seconds,
        }
    )


@handles("executeAgent")
async def execute_agent(call: Call) -> Response:
    body = call.body
    agent = AGENTS.get(body["type"])
    if agent is None:
        return problem(404, "no such agent")
    thread_id = body.get("thread_id")
    services = call.services
    if thread_id is not None:
        if services.store.get_thread(thread_id, call.user) is None:
            return problem(404, "no such thread")
        services.store.add_message(thread_id, "user", body["message"])
    run = services.runs.create(call.user, agent, body["message"], thread_id)
    await services.runs.execute(run)
    result: dict[str, Any] = {
        "run_id": run.run_id,
        "status": "completed" if run.status == "completed" else "failed",
        "agent": agent.name,
        "execution_time_ms": run.elapsed_ms(),
    }
    if run.status == "completed":
        result["response"] = run.plan.response
    else:
        result["error"] = "the agent failed"
    return JSONResponse(result)


@handles("getRunStatus")
async def get_run_status(call: Call) -> Response:
    run = call.services.runs.get(call.path["run_id"], call.user)
    if run is None:
        return problem(404, "no such run")
    return JSONResponse(run_json(run))


@handles("cancelRun")
async def cancel_run(call: Call) -> Response:
    run = call.services.runs.get(call.path["run_id"], call.user)
    if run is None:
        return problem(404, "no such run")
    if not call.services.runs.cancel(run):
        return problem(409, f"the run already ended ({run.status})")
    return JSONResponse(run_json(run))


# tools


@handles("listTools")
async def list_tools(call: Call) -> Response:
    tools = [
        {"name": t.name, "description": t.description, "parameters": dict(t.parameters)}
        for t in TOOLS.values()
    ]
    return JSONResponse({"tools": tools})


@handles("executeTool")
async def execute_tool(call: Call) -> Response:
    name = call.body["tool_name"]
    if name not in TOOLS:
        return problem(404, "no such tool")
    started = time.perf_counter()
    ok, outcome = run_tool(name, call.body["arguments"])
    body: dict[str, Any] = {
        "tool_name": name,
        "status": "success" if ok else "error",
        "execution_time_ms": int((time.perf_counter() - started) * 1000),
    }
    if ok:
        body["result"] = outcome
    else:
        body["error"] = outcome
    return JSONResponse(body)


# threads and messages


def _owner_filter(call: Call) -> str | None:
    """The owner a read must match; None lets `thread-idor` read anyone's thread."""
    return None if "thread-idor" in call.services.faults else call.user


@handles("listThreads")
async def list_threads(call: Call) -> Response:
    limit, offset = call.query["limit"], call.query["offset"]
    if limit == 100 and "server-error" in call.services.faults:
        return problem(500, "internal error")
    threads, total = call.services.store.list_threads(call.user, limit, offset)
    return JSONResponse(
        {
            "items": [thread_json(t, call) for t in threads],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )


@handles("createThread")
async def create_thread(call: Call) -> Response:
    thread = call.services.store.create_thread(
        call.user, call.body["title"], call.body.get("metadata")
    )
    return JSONResponse(thread_json(thread, call), status_code=201)


@handles("getThread")
async def get_thread(call: Call) -> Response:
    thread = call.services.store.get_thread(call.path["thread_id"], _owner_filter(call))
    if thread is None:
        return problem(404, "no such thread")
    return JSONResponse(thread_json(thread, call))


@handles("updateThread")
async def update_thread(call: Call) -> Response:
    thread = call.services.store.update_thread(
        call.path["thread_id"],
        call.user,
        title=call.body.get("title"),
        metadata=call.body.get("metadata"),
    )
    if thread is None:
        return problem(404, "no such thread")
    return JSONResponse(thread_json(thread, call))


@handles("deleteThread")
async def delete_thread(call: Call) -> Response:
    if not call.services.store.delete_thread(call.path["thread_id"], call.user):
        return problem(404, "no such thread")
    return Response(status_code=204)


def _messages_page(call: Call, thread_id: str) -> Response:
    store = call.services.store
    if store.get_thread(thread_id, _owner_filter(call)) is None:
        return problem(404, "no such thread")
    limit, offset = call.query["limit"], call.query["offset"]
    messages, total = store.list_messages(thread_id, limit, offset)
    return JSONResponse(
        {
            "items": [m.as_json() for m in messages],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )


@handles("listThreadMessages")
async def list_thread_messages(call: Call) -> Response:
    return _messages_page(call, call.path["thread_id"])


@handles("listChatMessages")
async def list_chat_messages(call: Call) -> Response:
    return _messages_page(call, call.query["thread_id"])


@handles("createChatMessage")
async def create_chat_message(call: Call) -> Response:
    store = call.services.store
    thread_id = call.body["thread_id"]
    if store.get_thread(thread_id, call.user) is None:
        return problem(404, "no such thread")
    message = store.add_message(thread_id, "user", call.body["content"])
    return JSONResponse(message.as_json(), status_code=201)
