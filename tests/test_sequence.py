"""The transport-free sequence engine: every rule, its messages, and its exactness."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chatcontract.sequence as sequence_module
from chatcontract.sequence import (
    RULES,
    SequenceChecker,
    SequenceViolation,
    event_kind,
    lookup_pointer,
    message_type,
)
from chatcontract.spec import load_spec
from chatcontract.spec.model import Correlation, EventKind, OrderRule, Pair, SequenceContract

SPEC = load_spec()
AGENT_RUN = SPEC.sequences["agent-run"]
CHAT_STREAM = SPEC.sequences["chat-stream"]
RUN = "run_7c2e9a41b0d3"
THREAD = "thread_3f9a2c1b7d4e"


def ev(
    kind: str, call: str | None = None, *, run: str = RUN, thread: str = THREAD
) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if call is not None:
        payload["tool_call_id"] = call
    return {"type": kind, "run_id": run, "thread_id": thread, "payload": payload}


def check(
    contract: SequenceContract,
    events: list[dict[str, Any]],
    request: dict[str, Any] | None = None,
) -> list[SequenceViolation]:
    checker = SequenceChecker(contract, request)
    found: list[SequenceViolation] = []
    for number, event in enumerate(events, 1):
        found += checker.feed(event["type"], event, number)
    found += checker.finish()
    assert list(checker.violations) == found
    return found


def rules(found: list[SequenceViolation]) -> list[str]:
    return [v.rule for v in found]


GOOD_RUN = [
    ev("agent_started"),
    ev("agent_thinking"),
    ev("tool_executing", "call_1"),
    ev("tool_completed", "call_1"),
    ev("response_chunk"),
    ev("agent_completed"),
]


def test_a_well_formed_agent_run_keeps_every_rule() -> None:
    assert check(AGENT_RUN, GOOD_RUN) == []


def test_events_outside_the_contract_are_ignored() -> None:
    """chat-stream events interleave with agent-run ones; agent-run must not see them."""
    events = [ev("stream_start"), *GOOD_RUN, ev("response_complete"), ev("stream_end")]
    checker = SequenceChecker(AGENT_RUN)
    for number, event in enumerate(events, 1):
        assert checker.feed(event["type"], event, number) == []
    assert checker.finish() == []
    assert checker.governed_events == len(GOOD_RUN)


def test_first_governed_event_must_be_a_first_type() -> None:
    found = check(AGENT_RUN, [ev("stream_start"), ev("agent_thinking"), *GOOD_RUN[1:]])
    assert rules(found) == ["first"]
    assert found[0].index == 2
    assert found[0].event_type == "agent_thinking"
    assert found[0].message == (
        "event #2 (agent_thinking): the first agent-run event must be agent_started"
    )


def test_order_rule_needs_one_of_its_predecessors_earlier() -> None:
    found = check(AGENT_RUN, [ev("agent_started"), ev("agent_completed")])
    assert rules(found) == ["order"]
    assert found[0].message == (
        "event #2 (agent_completed): must come after response_chunk, none seen before it"
    )


def test_order_rule_with_several_predecessors_names_them_all() -> None:
    found = check(CHAT_STREAM, [ev("stream_start"), ev("stream_end")])
    assert found[0].message == (
        "event #2 (stream_end): must come after one of agent_completed, agent_error, "
        "none seen before it"
    )


def test_close_without_open_is_a_pair_violation_with_the_key() -> None:
    events = [ev("agent_started"), ev("response_chunk"), ev("tool_completed", "call_1")]
    found = check(AGENT_RUN, [*events, ev("agent_completed")])
    assert rules(found) == ["pair"]
    assert found[0].message == (
        "event #3 (tool_completed): closes tool call 'call_1' that was never opened "
        "by tool_executing"
    )


def test_close_before_open_reports_both_and_leaves_nothing_pending() -> None:
    """The events-out-of-order fault: tool_completed arrives before its tool_executing."""
    events = [
        ev("agent_started"),
        ev("tool_completed", "call_1"),
        ev("tool_executing", "call_1"),
        ev("response_chunk"),
        ev("agent_completed"),
    ]
    found = check(AGENT_RUN, events)
    assert rules(found) == ["pair", "pair"]
    assert "closes tool call 'call_1' that was never opened" in found[0].message
    assert found[1].message == (
        "event #3 (tool_executing): opens tool call 'call_1' after event #2 "
        "(tool_completed) already closed it"
    )


def test_duplicate_open_key_is_a_pair_violation() -> None:
    events = [
        ev("agent_started"),
        ev("tool_executing", "call_1"),
        ev("tool_executing", "call_1"),
        ev("tool_completed", "call_1"),
        ev("response_chunk"),
        ev("agent_completed"),
    ]
    found = check(AGENT_RUN, events)
    assert rules(found) == ["pair"]
    assert found[0].message == (
        "event #3 (tool_executing): opens tool call 'call_1' again while event #2 "
        "(tool_executing) holds it open"
    )


def test_reopening_a_closed_key_and_closing_twice_are_pair_violations() -> None:
    events = [
        ev("agent_started"),
        ev("tool_executing", "call_1"),
        ev("tool_completed", "call_1"),
        ev("tool_completed", "call_1"),
        ev("tool_executing", "call_1"),
        ev("response_chunk"),
        ev("agent_completed"),
    ]
    found = check(AGENT_RUN, events)
    assert rules(found) == ["pair", "pair"]
    assert "closes tool call 'call_1' again (event #3 (tool_completed) already closed it)" in (
        found[0].message
    )
    assert "opens tool call 'call_1' after event #3 (tool_completed) already closed it" in (
        found[1].message
    )


def test_pair_event_without_its_key_is_a_pair_violation() -> None:
    found = check(AGENT_RUN, [ev("agent_started"), ev("tool_executing"), *GOOD_RUN[4:]])
    assert rules(found) == ["pair"]
    assert found[0].message == (
        "event #2 (tool_executing): has no tool call key at /payload/tool_call_id"
    )


@pytest.mark.parametrize("key", [None, True, False])
def test_null_and_boolean_pair_keys_are_no_keys(key: object) -> None:
    """A null or boolean tool_call_id must not pair (True would collide with 1)."""
    opened = ev("tool_executing")
    opened["payload"]["tool_call_id"] = key
    found = check(AGENT_RUN, [ev("agent_started"), opened, *GOOD_RUN[4:]])
    assert rules(found) == ["pair"]
    assert "has no tool call key" in found[0].message


def test_open_pair_at_the_terminal_event_is_unclosed() -> None:
    events = [ev("agent_started"), ev("tool_executing", "call_9"), ev("agent_error")]
    found = check(AGENT_RUN, events)
    assert rules(found) == ["unclosed-pair"]
    assert found[0].index == 3
    assert found[0].message == (
        "event #3 (agent_error): ends the run while tool call 'call_9' opened by event #2 "
        "(tool_executing) is still open (no tool_completed)"
    )


def test_missing_terminal_and_open_pairs_are_reported_at_the_end() -> None:
    found = check(AGENT_RUN, [ev("agent_started"), ev("tool_executing", "call_2")])
    assert rules(found) == ["missing-terminal", "unclosed-pair"]
    assert all(v.index == 0 and v.event_type is None for v in found)
    assert found[0].message == (
        "the events ended without a terminal agent-run event (agent_completed or agent_error) "
        "after 2 agent-run events"
    )
    assert found[1].message == (
        "the events ended while tool call 'call_2' opened by event #2 (tool_executing) "
        "is still open (no tool_completed)"
    )


def test_no_events_at_all_is_a_missing_terminal() -> None:
    found = check(AGENT_RUN, [])
    assert rules(found) == ["missing-terminal"]
    assert "after 0 agent-run events" in found[0].message


def test_a_second_terminal_and_events_after_the_terminal_are_violations() -> None:
    events = [*GOOD_RUN, ev("agent_thinking"), ev("agent_error")]
    found = check(AGENT_RUN, events)
    assert rules(found) == ["after-terminal", "terminal"]
    assert found[0].message == (
        "event #7 (agent_thinking): arrives after the terminal event #6 (agent_completed)"
    )
    assert found[1].message == (
        "event #8 (agent_error): a second terminal event after event #6 (agent_completed)"
    )


def test_terminated_flips_at_the_terminal_event() -> None:
    checker = SequenceChecker(AGENT_RUN)
    for number, event in enumerate(GOOD_RUN, 1):
        assert not checker.terminated
        checker.feed(event["type"], event, number)
    assert checker.terminated


def test_consistent_correlation_names_both_values() -> None:
    events = [*GOOD_RUN[:3], ev("tool_completed", "call_1", run="run_other0000"), *GOOD_RUN[4:]]
    found = check(AGENT_RUN, events)
    assert rules(found) == ["correlation"]
    assert found[0].message == (
        "event #4 (tool_completed): /run_id is 'run_other0000' but event #1 (agent_started) "
        f"has '{RUN}'"
    )


def test_correlation_value_must_be_present() -> None:
    started = ev("agent_started")
    del started["run_id"]
    found = check(AGENT_RUN, [started, *GOOD_RUN[1:]])
    assert rules(found) == ["correlation"]
    assert found[0].message == "event #1 (agent_started): has no /run_id"


def test_request_correlation_compares_with_the_request() -> None:
    found = check(AGENT_RUN, GOOD_RUN, request={"thread_id": "thread_mine000"})
    assert rules(found) == ["correlation"] * len(GOOD_RUN)
    assert found[0].message == (
        f"event #1 (agent_started): /thread_id is '{THREAD}' but the request has 'thread_mine000'"
    )


def test_request_correlation_without_request_value_falls_back_to_consistent() -> None:
    assert check(AGENT_RUN, GOOD_RUN, request={"message": "hi"}) == []
    events = [*GOOD_RUN[:2], ev("agent_thinking", thread="thread_elsewhere"), *GOOD_RUN[2:]]
    found = check(AGENT_RUN, events, request={"message": "hi"})
    assert rules(found) == ["correlation"]
    assert "/thread_id is 'thread_elsewhere' but event #1 (agent_started) has" in (found[0].message)


def test_correlation_is_still_checked_once_values_are_known() -> None:
    """After the first events the engine compares all values at once; misses must remain."""
    late = ev("agent_thinking")
    del late["run_id"]
    events = [
        *GOOD_RUN[:3],
        late,
        ev("tool_completed", "call_1", thread="thread_x0000000"),
        *GOOD_RUN[4:],
    ]
    found = check(AGENT_RUN, events)
    assert [v.message for v in found] == [
        "event #4 (agent_thinking): has no /run_id",
        f"event #5 (tool_completed): /thread_id is 'thread_x0000000' but event #1 "
        f"(agent_started) has '{THREAD}'",
    ]


def test_correlation_distinguishes_json_types() -> None:
    contract = SequenceContract(
        name="typed",
        events=("a", "z"),
        terminal=("z",),
        correlate=(Correlation("/n", "consistent"),),
    )
    found = check(contract, [{"type": "a", "n": 1}, {"type": "z", "n": True}])
    assert rules(found) == ["correlation"]
    assert "/n is True but event #1 (a) has 1" in found[0].message


def test_violations_are_capped() -> None:
    checker = SequenceChecker(AGENT_RUN, max_violations=3)
    for number in range(1, 10):
        checker.feed("tool_completed", ev("tool_completed", f"call_{number}"), number)
    assert len(checker.violations) == 3
    assert checker.feed("tool_completed", ev("tool_completed", "call_x"), 10) == []


def test_finish_is_idempotent() -> None:
    checker = SequenceChecker(AGENT_RUN)
    assert checker.finish()
    assert checker.finish() == []


def test_nested_and_escaped_pointers_resolve() -> None:
    document = {"a/b": {"c~d": [10, {"e": "x"}]}}
    assert lookup_pointer(document, "/a~1b/c~0d/1/e") == "x"
    assert lookup_pointer(document, "/a~1b/c~0d/0") == 10
    assert lookup_pointer(document, "/a~1b/c~0d/5", "missing") == "missing"
    assert lookup_pointer(document, "") == document


def test_several_pairs_and_order_rules_on_one_type() -> None:
    contract = SequenceContract(
        name="multi",
        events=("open", "close", "a", "b", "end"),
        terminal=("end",),
        pairs=(Pair("open", "close", "/x"), Pair("open", "close", "/y")),
        order=(OrderRule("end", ("a",)), OrderRule("end", ("b",))),
    )
    found = check(
        contract,
        [{"type": "open", "x": 1, "y": 2}, {"type": "close", "x": 1, "y": 3}, {"type": "end"}],
    )
    assert rules(found) == ["pair", "order", "order", "unclosed-pair"]
    assert "closes y 3 that was never opened by open" in found[0].message
    assert "y 2 opened by event #1 (open) is still open" in found[3].message


def test_every_rule_name_is_documented() -> None:
    assert {
        "first",
        "order",
        "pair",
        "unclosed-pair",
        "terminal",
        "after-terminal",
        "missing-terminal",
        "correlation",
    } == RULES


def test_sequence_module_is_pure() -> None:
    """The WebSocket checker reuses the engine; it must carry no I/O stack with it."""
    source = Path(sequence_module.__file__).read_text()
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    forbidden = {
        "asyncio",
        "httpx",
        "websockets",
        "socket",
        "anyio",
        "trio",
        "uvicorn",
        "starlette",
    }
    assert not imported & forbidden
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("chatcontract")
        ):
            assert node.module in {"chatcontract.spec.model"}, node.module


# -- properties ---------------------------------------------------------------------------


@st.composite
def agent_runs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Any valid agent-run: tool calls properly nested or interleaved, one terminal last."""
    calls = draw(st.integers(min_value=0, max_value=4))
    filler = draw(st.lists(st.sampled_from(["agent_thinking", "response_chunk"]), max_size=6))
    tokens: list[tuple[str, str | None]] = [(kind, None) for kind in filler]
    tokens += [("tool_executing", f"call_{i}") for i in range(calls)]
    tokens += [("tool_completed", f"call_{i}") for i in range(calls)]
    order = draw(st.permutations(tokens))
    # Put every close after its open: swapping the two keeps the interleaving random.
    body = list(order)
    for i in range(calls):
        key = f"call_{i}"
        opened = body.index(("tool_executing", key))
        closed = body.index(("tool_completed", key))
        if closed < opened:
            body[opened], body[closed] = body[closed], body[opened]
    terminal = draw(st.sampled_from(["agent_completed", "agent_error"]))
    if terminal == "agent_completed" and ("response_chunk", None) not in body:
        body.append(("response_chunk", None))
    return [ev("agent_started")] + [ev(k, c) for k, c in body] + [ev(terminal)]


@settings(max_examples=300, deadline=None)
@given(agent_runs())
def test_any_valid_agent_run_passes(run: list[dict[str, Any]]) -> None:
    assert check(AGENT_RUN, run) == []


def _broken(events: list[dict[str, Any]]) -> dict[str, bool]:
    """Which rules a sequence of agent-run events breaks, worked out independently."""
    kinds = [e["type"] for e in events]
    terminals = [i for i, k in enumerate(kinds) if k in ("agent_completed", "agent_error")]
    end = terminals[0]
    pair = False
    for i, event in enumerate(events[: end + 1]):
        if event["type"] == "tool_completed":
            opened = [
                j
                for j, e in enumerate(events[:i])
                if e["type"] == "tool_executing" and e["payload"] == event["payload"]
            ]
            pair |= not opened
    order = kinds[end] == "agent_completed" and "response_chunk" not in kinds[:end]
    return {
        "first": kinds[0] != "agent_started",
        "terminal": end != len(kinds) - 1,
        "pair": pair,
        "order": order,
    }


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_a_permutation_is_caught_exactly_when_it_breaks_a_rule(data: st.DataObject) -> None:
    run = data.draw(agent_runs())
    shuffled = data.draw(st.permutations(run))
    found = rules(check(AGENT_RUN, list(shuffled)))
    broken = _broken(list(shuffled))
    if broken["first"]:
        assert "first" in found
    if broken["terminal"]:
        assert {"after-terminal", "terminal"} & set(found)
    if broken["pair"]:
        assert "pair" in found
    if broken["order"]:
        assert "order" in found
    if not any(broken.values()):
        # Agent_started first, the terminal last and every open before its close: a
        # valid run again, and the engine must not invent anything.
        assert found == []


@pytest.mark.parametrize("contract", [AGENT_RUN, CHAT_STREAM])
def test_spec_sequences_build_checkers(contract: SequenceContract) -> None:
    checker = SequenceChecker(contract)
    assert checker.contract is contract
    assert checker.violations == ()


# --- kinds: one frame type, told apart by a field value ----------------------------------

EXECUTION = SequenceContract(
    name="execution",
    events=("status-busy", "execute_input", "execute_result", "status-idle"),
    first=("status-busy",),
    terminal=("status-idle",),
    order=(OrderRule("execute_result", ("execute_input",)),),
    kinds=(
        EventKind("status-busy", "status", (("/content/execution_state", "busy"),)),
        EventKind("status-idle", "status", (("/content/execution_state", "idle"),)),
    ),
)


def status(state: str) -> dict[str, Any]:
    return {"header": {"msg_type": "status"}, "content": {"execution_state": state}}


def kernel(kind: str) -> dict[str, Any]:
    return {"header": {"msg_type": kind}, "content": {}}


def typed(events: list[dict[str, Any]]) -> list[SequenceViolation]:
    checker = SequenceChecker(EXECUTION)
    found: list[SequenceViolation] = []
    for index, event in enumerate(events, 1):
        kind = message_type(event, "/header/msg_type")
        assert kind is not None
        found += checker.feed(kind, event, index)
    return found + checker.finish()


def test_a_message_type_can_live_at_a_json_pointer_or_a_top_level_property() -> None:
    assert message_type(status("busy"), "/header/msg_type") == "status"
    assert message_type({"type": "ping"}, "type") == "ping"
    assert message_type({"header": {"msg_type": 7}}, "/header/msg_type") is None
    assert message_type(["status"], "type") is None


def test_a_kind_names_an_event_by_a_field_value_else_its_type_names_it() -> None:
    assert event_kind(EXECUTION.kinds, "status", status("busy")) == "status-busy"
    assert event_kind(EXECUTION.kinds, "status", status("starting")) == "status"
    assert event_kind(EXECUTION.kinds, "execute_input", kernel("execute_input")) == "execute_input"


def test_starts_busy_ends_idle_holds() -> None:
    events = [status("busy"), kernel("execute_input"), kernel("execute_result"), status("idle")]
    assert typed(events) == []


def test_idle_before_the_result_is_one_after_terminal_violation() -> None:
    events = [status("busy"), kernel("execute_input"), status("idle"), kernel("execute_result")]
    (violation,) = typed(events)
    assert violation.rule == "after-terminal"
    assert violation.message == (
        "event #4 (execute_result): arrives after the terminal event #3 (status-idle)"
    )


def test_a_run_that_starts_idle_breaks_first() -> None:
    events = [status("idle"), kernel("execute_input")]
    (violation,) = [v for v in typed(events) if v.rule == "first"]
    assert (
        violation.message == "event #1 (status-idle): the first execution event must be status-busy"
    )
