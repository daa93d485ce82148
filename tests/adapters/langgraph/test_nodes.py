"""The node decorators and helpers as plain LangGraph sees them (no tether run): signatures
kept, interrupts not swallowed, decisions read from ``Command(resume=...)``."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, RetryPolicy
from tether import HumanTask
from tether_langgraph import (
    Decision,
    ToolResult,
    await_human,
    awaits_tool,
    requires_approval,
    wait_for_human,
)


class State(TypedDict, total=False):
    amount: int
    status: str
    seen: list[str]


def _one_node(fn: Any, **node_options: Any) -> Any:
    g = StateGraph(State)
    g.add_node("node", fn, **node_options)
    g.add_edge(START, "node")
    g.add_edge("node", END)
    return g.compile(checkpointer=InMemorySaver())


def _config() -> RunnableConfig:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


def test_a_decorated_node_still_gets_config_and_runtime_injected() -> None:
    seen: dict[str, Any] = {}

    @requires_approval("Refund?")
    def refund(state: State, config: RunnableConfig, runtime: Runtime, decision: Decision) -> dict:
        seen.update(config=config, runtime=runtime, decision=decision)
        return {"status": decision.outcome}

    graph = _one_node(refund)
    config = _config()
    out = graph.invoke({"amount": 5}, config, version="v2")
    request = out.interrupts[0].value["tether"]
    assert request["kind"] == "human" and request["task"]["title"] == "Refund?"
    assert "decision" not in seen  # the body did not run before the answer

    done = graph.invoke(Command(resume="approved"), config, version="v2")
    assert done.value["status"] == "approved"
    assert seen["config"]["configurable"]["thread_id"] == config["configurable"]["thread_id"]
    assert isinstance(seen["runtime"], Runtime)
    assert seen["decision"] == Decision("approved")


def test_rejection_and_timeout_are_distinct_outcomes() -> None:
    @requires_approval(lambda s: HumanTask(title=f"Refund {s['amount']}?"))
    def refund(state: State, decision: Decision) -> dict:
        flags = [decision.approved, decision.rejected, decision.timed_out]
        return {"status": decision.outcome, "seen": [str(f) for f in flags]}

    outcomes = {}
    for answer in ("rejected", {"outcome": "timeout"}):
        graph, config = _one_node(refund), _config()
        graph.invoke({"amount": 5}, config)
        outcomes[str(answer)] = graph.invoke(Command(resume=answer), config)
    assert outcomes["rejected"]["seen"] == ["False", "True", "False"]
    assert outcomes["{'outcome': 'timeout'}"]["seen"] == ["False", "False", "True"]


def test_an_async_node_stays_async() -> None:
    calls: list[str] = []

    @requires_approval("Refund?")
    async def refund(state: State, decision: Decision) -> dict:
        calls.append(decision.outcome)
        await asyncio.sleep(0)
        return {"status": decision.outcome}

    assert asyncio.iscoroutinefunction(refund)

    async def main() -> dict[str, Any]:
        graph, config = _one_node(refund), _config()
        first = await graph.ainvoke({"amount": 5}, config, version="v2")
        assert first.interrupts
        done = await graph.ainvoke(Command(resume="approved"), config, version="v2")
        return dict(done.value)

    assert asyncio.run(main())["status"] == "approved"
    assert calls == ["approved"]


def test_the_interrupt_is_never_swallowed_nor_retried() -> None:
    attempts: list[int] = []

    def task(state: State) -> str:
        attempts.append(1)
        return "Go?"

    @requires_approval(task)
    def node(state: State, decision: Decision) -> dict:
        return {"status": decision.outcome}

    # a retry policy that retries any exception: LangGraph's interrupt is one
    graph = _one_node(node, retry_policy=RetryPolicy(max_attempts=3, retry_on=Exception))
    out = graph.invoke({"amount": 1}, _config(), version="v2")
    assert out.interrupts, "the graph suspended"
    assert attempts == [1], "an interrupt is not an error to retry"


def test_no_person_is_asked_when_the_condition_is_false() -> None:
    @requires_approval("Refund?", when=lambda s: s["amount"] > 100)
    def refund(state: State, decision: Decision) -> dict:
        return {"status": "auto" if decision.automatic and decision.approved else "asked"}

    graph = _one_node(refund)
    out = graph.invoke({"amount": 50}, _config(), version="v2")
    assert not out.interrupts and out.value["status"] == "auto"
    asked = graph.invoke({"amount": 500}, _config(), version="v2")
    assert asked.interrupts


def test_the_outcome_parameter_is_required() -> None:
    with pytest.raises(TypeError, match="named 'decision'"):

        @requires_approval("Refund?")
        def refund(state: State) -> dict:
            return {}

    with pytest.raises(TypeError, match="named 'tool_result'"):

        @awaits_tool("ocr", lambda s, token: None)
        def read(state: State) -> dict:
            return {}


def test_a_tool_wait_outside_a_run_is_resumed_by_hand() -> None:
    started: list[str] = []

    @awaits_tool("ocr", lambda s, token: started.append(token), timeout=60)
    def read(state: State, tool_result: ToolResult) -> dict:
        return {"status": f"{tool_result.outcome}:{tool_result.result}"}

    graph, config = _one_node(read), _config()
    out = graph.invoke({"amount": 1}, config, version="v2")
    request = out.interrupts[0].value["tether"]
    assert request["kind"] == "tool" and request["tool_name"] == "ocr" and request["timeout"] == 60
    done = graph.invoke(Command(resume={"outcome": "completed", "result": "text"}), config)
    assert done["status"] == "completed:text"
    assert started == []  # nothing opened a wait, so there was no token to start with


def test_helpers_inside_a_body_wait_under_their_own_keys() -> None:
    def node(state: State) -> dict:
        first = wait_for_human("First?", key="first")
        second = wait_for_human("Second?", key="second")
        return {"seen": [first.outcome, second.outcome]}

    graph, config = _one_node(node), _config()
    keys = []
    out = graph.invoke({"amount": 1}, config, version="v2")
    keys.append(out.interrupts[0].value["tether"]["key"])
    out = graph.invoke(Command(resume="approved"), config, version="v2")
    keys.append(out.interrupts[0].value["tether"]["key"])
    done = graph.invoke(Command(resume="rejected"), config, version="v2")
    assert done.value["seen"] == ["approved", "rejected"]
    assert keys[0] != keys[1] and keys[0].endswith("/=first") and keys[1].endswith("/=second")


def test_the_async_helper_suspends_too() -> None:
    async def node(state: State) -> dict:
        decision = await await_human("Go?")
        return {"status": decision.outcome}

    async def main() -> Any:
        graph, config = _one_node(node), _config()
        out = await graph.ainvoke({"amount": 1}, config, version="v2")
        assert out.interrupts
        return await graph.ainvoke(Command(resume={"outcome": "rejected"}), config)

    assert asyncio.run(main())["status"] == "rejected"


def test_helpers_outside_a_graph_say_where_they_belong() -> None:
    with pytest.raises(RuntimeError, match="inside a LangGraph node"):
        wait_for_human("Go?")
