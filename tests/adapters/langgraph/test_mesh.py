"""The mesh at a graph's boundaries: a killed or paused agent stops at its next node (held,
not failed) and goes on after a resume; a tool outside its scope is not called and the model
is told; every model turn is reported as spend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import tether
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from tether import AgentPolicy, Client, Status, ToolPolicy
from tether_langgraph import DurableGraph, TetherSaver, tool_node
from tether_langgraph.testing import ScriptedChatModel

from .conftest import AGENT

SCRIPT = [
    AIMessage("", tool_calls=[{"name": "notify", "args": {"text": "hi"}, "id": "c1"}]),
    AIMessage("", tool_calls=[{"name": "refund", "args": {"amount": 70}, "id": "c2"}]),
    AIMessage("All done."),
]


def durable_graph(
    client: Client, effects: list[str], on_notify: Callable[[], Any] | None = None
) -> DurableGraph:
    @tool
    def notify(text: str) -> str:
        """Tell the customer something."""
        effects.append(f"notify:{text}")
        if on_notify is not None:
            on_notify()
        return "sent"

    @tool
    def refund(amount: int) -> str:
        """Refund money."""
        effects.append(f"refund:{amount}")
        return f"refunded {amount}"

    model = ScriptedChatModel(script=SCRIPT)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", tool_node([notify, refund]))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    graph = g.compile(checkpointer=TetherSaver(client))
    return DurableGraph(graph, client, agent=AGENT,
                        price=lambda model, tokens_in, tokens_out: (tokens_in + tokens_out) / 1e3)  # fmt: skip


def test_a_tool_outside_the_agents_scope_is_not_called_and_the_model_is_told(
    client: Client,
) -> None:
    client.set_policy(AGENT, AgentPolicy(tools=ToolPolicy(allow=["notify"])))
    effects: list[str] = []
    run = durable_graph(client, effects).start({"messages": [HumanMessage("Refund 70")]})
    assert run.status == "completed"
    assert effects == ["notify:hi"]  # refund was never called
    tool_messages = [m for m in run.output["messages"] if m["type"] == "tool"]
    assert "'refund' is not allowed for this agent" in tool_messages[-1]["content"]
    denied = [e for e in client.list_events(run.intent_id) if e.event_type == "tool.denied"]
    assert [e.details["tool"] for e in denied] == ["refund"]


@pytest.mark.parametrize("stop", ["kill", "pause"])
def test_a_stopped_agent_is_held_at_its_next_node_and_goes_on_after_resume(
    client: Client, stop: str
) -> None:
    effects: list[str] = []
    halt = client.kill_agent if stop == "kill" else client.pause_agent
    durable = durable_graph(client, effects, on_notify=lambda: halt(AGENT, reason="test"))
    with pytest.raises(tether.AgentStopped):
        durable.start({"messages": [HumanMessage("Refund 70")]})
    intent = client.list_intents(to_agent=AGENT).items[0]
    held = client.get_intent(intent.intent_id)
    assert held.status is Status.IN_PROGRESS and held.lease is None  # held, not failed
    assert effects == ["notify:hi"]
    client.resume_agent(AGENT)
    done = durable.run(intent.intent_id)
    assert done.status == "completed"
    assert effects == ["notify:hi", "refund:70"]  # each tool once across the stop


def test_every_model_turn_is_reported_as_spend(client: Client) -> None:
    run = durable_graph(client, []).start({"messages": [HumanMessage("Refund 70")]})
    usage = client.intent_usage(run.intent_id)
    assert usage.turns == 3 and (usage.tokens_in, usage.tokens_out) == (30, 15)
    assert usage.cost_usd == pytest.approx(0.045)
    assert client.get_agent(AGENT).spend.day.turns == 3
