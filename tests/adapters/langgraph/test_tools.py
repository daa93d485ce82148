"""Side effects once: tool calls and steps in tether's journal; and the policy boundaries."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import tether_langgraph._boundaries as boundaries
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from tether import Client, Status
from tether_langgraph import DurableGraph, TetherSaver, step, tool_node, wait_for_human
from tether_langgraph.testing import ScriptedChatModel

from .conftest import AGENT, person

SCRIPT = [
    AIMessage(
        "",
        tool_calls=[
            {"name": "notify", "args": {"text": "refund coming"}, "id": "call_notify"},
            {"name": "pay", "args": {"amount": 500}, "id": "call_pay"},
        ],
    ),
    AIMessage("Paid 500 EUR and told the customer."),
]


def _agent_graph(client: Client, effects: list[str]) -> Any:
    """A model that calls two tools in one step; ``pay`` asks a person first."""

    @tool
    def notify(text: str) -> str:
        """Tell the customer something."""
        effects.append(f"notify:{text}")
        return "sent"

    @tool
    def pay(amount: int) -> str:
        """Pay a refund."""
        decision = wait_for_human(f"Pay {amount} EUR?", key="pay")
        if not decision.approved:
            return f"not paid ({decision.outcome})"
        effects.append(f"pay:{amount}")
        return f"paid {amount}"

    model = ScriptedChatModel(script=SCRIPT)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", tool_node([notify, pay]))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=TetherSaver(client))


def test_each_tool_call_of_a_step_runs_once(client: Client) -> None:
    effects: list[str] = []
    durable = DurableGraph(_agent_graph(client, effects), client, agent=AGENT)
    run = durable.start({"messages": [HumanMessage("Refund order 42, please")]})
    assert run.status == "waiting"
    assert effects == ["notify:refund coming"]  # pay waits for a person

    person(client).approve(run.intent_id)
    done = durable.run(run.intent_id)
    assert done.status == "completed"
    # ToolNode ran both calls again on resume; notify came from the journal
    assert effects == ["notify:refund coming", "pay:500"]
    messages = done.output["messages"]
    assert messages[-1]["content"] == "Paid 500 EUR and told the customer."
    tool_messages = [m for m in messages if m["type"] == "tool"]
    assert sorted(m["content"] for m in tool_messages) == ["paid 500", "sent"]
    keys = [s.key for s in client.list_steps(run.intent_id)]
    assert sum("/tool/=call_notify" in k for k in keys) == 1
    assert sum("/tool/=call_pay" in k for k in keys) == 1


def test_a_tool_call_that_failed_is_not_recorded_and_runs_again(client: Client) -> None:
    attempts: list[int] = []

    @tool
    def flaky(n: int) -> str:
        """Fails the first time."""
        attempts.append(n)
        if len(attempts) == 1:
            raise RuntimeError("upstream timed out")
        return "ok"

    @tool
    def ask(question: str) -> str:
        """Ask a person."""
        return wait_for_human(question, key="ask").outcome

    def agent(state: MessagesState) -> dict[str, Any]:
        calls = [
            {"name": "flaky", "args": {"n": 1}, "id": "call_flaky"},
            {"name": "ask", "args": {"question": "Go on?"}, "id": "call_ask"},
        ]
        return {"messages": [AIMessage("", tool_calls=calls)]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", tool_node([flaky, ask], handle_tool_errors=True))
    g.add_edge(START, "agent")
    g.add_edge("agent", "tools")
    g.add_edge("tools", END)
    durable = DurableGraph(g.compile(checkpointer=TetherSaver(client)), client, agent=AGENT)
    run = durable.start({"messages": []})
    assert run.status == "waiting" and attempts == [1]
    assert client.list_steps(run.intent_id) == []  # the error was not recorded

    person(client).approve(run.intent_id)
    done = durable.run(run.intent_id)
    assert attempts == [1, 1], "the failed call ran again on resume"
    contents = sorted(m["content"] for m in done.output["messages"] if m["type"] == "tool")
    assert contents == ["approved", "ok"]
    assert len(client.list_steps(run.intent_id)) == 2


def test_a_step_in_a_node_runs_once(client: Client) -> None:
    effects: list[str] = []

    def settle(state: MessagesState) -> dict[str, Any]:
        receipt = step("charge", lambda: effects.append("charge") or "receipt-1")
        decision = wait_for_human("Ship it?")
        return {"messages": [AIMessage(f"{receipt}:{decision.outcome}")]}

    g = StateGraph(MessagesState)
    g.add_node("settle", settle)
    g.add_edge(START, "settle")
    g.add_edge("settle", END)
    durable = DurableGraph(g.compile(checkpointer=TetherSaver(client)), client, agent=AGENT)
    run = durable.start({"messages": []})
    person(client).approve(run.intent_id)
    done = durable.run(run.intent_id)
    assert done.output["messages"][-1]["content"] == "receipt-1:approved"
    assert effects == ["charge"]


def test_outside_a_run_tools_and_steps_just_run() -> None:
    effects: list[str] = []

    @tool
    def notify(text: str) -> str:
        """Tell the customer something."""
        effects.append(text)
        return "sent"

    def agent(state: MessagesState) -> dict[str, Any]:
        value = step("note", lambda: "noted")
        call = {"name": "notify", "args": {"text": value}, "id": "c1"}
        return {"messages": [AIMessage("", tool_calls=[call])]}

    graph = _agent_then_tools(agent, [notify], InMemorySaver())
    graph.invoke({"messages": []}, {"configurable": {"thread_id": str(uuid.uuid4())}})
    assert effects == ["noted"]


def test_every_boundary_is_reached_once(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, ...]] = []
    monkeypatch.setattr(boundaries, "node_start", lambda b, node: seen.append(("node", node)))
    monkeypatch.setattr(boundaries, "tool_call", lambda b, name: seen.append(("tool", name)))
    monkeypatch.setattr(
        boundaries,
        "model_turn",
        lambda b, **usage: seen.append(
            ("model", str(usage["tokens_in"]), str(usage["tokens_out"]))
        ),
    )
    effects: list[str] = []
    durable = DurableGraph(_agent_graph(client, effects), client, agent=AGENT)
    run = durable.start({"messages": [HumanMessage("Refund order 42, please")]})
    assert seen == [
        ("node", "agent"),
        ("model", "10", "5"),
        ("node", "tools"),
        ("tool", "notify"),
        ("tool", "pay"),
    ] or seen == [
        ("node", "agent"),
        ("model", "10", "5"),
        ("node", "tools"),
        ("tool", "pay"),
        ("tool", "notify"),
    ]
    seen.clear()
    person(client).approve(run.intent_id)
    assert durable.run(run.intent_id).status == "completed"
    # notify came from the journal: no second tool boundary for it
    assert seen == [("node", "tools"), ("tool", "pay"), ("node", "agent"), ("model", "10", "5")]
    assert client.get_intent(run.intent_id).status is Status.COMPLETED


def _two_payments_graph(client: Client, effects: list[str]) -> Any:
    """A model that pays twice in one step; each payment asks a person and charges once."""

    @tool
    def pay(amount: int) -> str:
        """Pay a refund, once a person says so."""
        decision = wait_for_human(f"Pay {amount} EUR?", key="pay")
        if not decision.approved:
            return f"not paid ({decision.outcome})"
        return step("charge", lambda: effects.append(f"pay:{amount}") or f"paid {amount}")

    calls = [
        {"name": "pay", "args": {"amount": 10}, "id": "call_small"},
        {"name": "pay", "args": {"amount": 9000}, "id": "call_big"},
    ]

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage("", tool_calls=calls)]}

    return _agent_then_tools(agent, [pay], TetherSaver(client))


def test_each_call_of_a_step_asks_its_own_question_and_keeps_its_own_steps(
    client: Client,
) -> None:
    """Two calls of one tool in one step share their task: each must still get its own wait
    (approving one pays nothing else) and its own steps (each charge runs)."""
    effects: list[str] = []
    durable = DurableGraph(_two_payments_graph(client, effects), client, agent=AGENT)
    run = durable.start({"messages": []})
    asked = client.get_intent(run.intent_id)
    assert run.status == "waiting" and asked.human_task is not None
    first = asked.human_task.title
    person(client).approve(run.intent_id)
    run = durable.run(run.intent_id)
    assert run.status == "waiting", "the other payment asks its own question"
    second = client.get_intent(run.intent_id).human_task
    assert second is not None and {first, second.title} == {"Pay 10 EUR?", "Pay 9000 EUR?"}
    person(client).reject(run.intent_id)
    done = durable.run(run.intent_id)
    assert done.status == "completed"
    approved = int(first.split()[1])
    assert effects == [f"pay:{approved}"]
    replies = {
        m["tool_call_id"]: m["content"] for m in done.output["messages"] if m["type"] == "tool"
    }
    small, big = (
        ("paid 10", "not paid (rejected)")
        if approved == 10
        else ("not paid (rejected)", "paid 9000")
    )
    assert replies == {"call_small": small, "call_big": big}
    waits = client.list_waits(run.intent_id)
    assert len(waits) == 2 and len({w.key for w in waits}) == 2


def test_parallel_calls_each_record_their_own_step(client: Client) -> None:
    effects: list[str] = []

    @tool
    def charge(who: str, amount: int) -> str:
        """Charge a customer."""
        return step("charge", lambda: effects.append(f"{who}:{amount}") or f"receipt {who}")

    calls = [
        {"name": "charge", "args": {"who": "ann", "amount": 10}, "id": "call_a"},
        {"name": "charge", "args": {"who": "bob", "amount": 20}, "id": "call_b"},
    ]
    graph = _agent_then_tools(
        lambda state: {"messages": [AIMessage("", tool_calls=calls)]}, [charge], TetherSaver(client)
    )
    durable = DurableGraph(graph, client, agent=AGENT)
    done = durable.start({"messages": []})
    assert done.status == "completed"
    assert sorted(effects) == ["ann:10", "bob:20"]
    replies = {
        m["tool_call_id"]: m["content"] for m in done.output["messages"] if m["type"] == "tool"
    }
    assert replies == {"call_a": "receipt ann", "call_b": "receipt bob"}


def test_a_run_parked_before_calls_had_their_own_waits_is_answered_where_it_waits(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run parked in a tool's wait by a release that keyed waits by the task alone is
    answered under that key after the upgrade: the person is not asked again."""
    import contextlib

    import tether_langgraph._journal as journal

    effects: list[str] = []
    durable = DurableGraph(_agent_graph(client, effects), client, agent=AGENT)
    with monkeypatch.context() as old_release:
        old_release.setattr(journal, "in_tool_call", lambda call_id: contextlib.nullcontext())
        run = durable.start({"messages": [HumanMessage("Refund order 42, please")]})
    assert run.status == "waiting"
    [parked] = client.list_waits(run.intent_id)
    assert "/call/" not in parked.key
    person(client).approve(run.intent_id)
    done = durable.run(run.intent_id)
    assert done.status == "completed"
    assert effects == ["notify:refund coming", "pay:500"]
    assert len(client.list_waits(run.intent_id)) == 1  # not asked again


def _agent_then_tools(agent: Any, tools: list[Any], checkpointer: Any) -> Any:
    """A graph whose agent node asks for tool calls once; the tools run, and it ends."""
    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", tool_node(tools))
    g.add_edge(START, "agent")
    g.add_edge("agent", "tools")
    g.add_edge("tools", END)
    return g.compile(checkpointer=checkpointer)
