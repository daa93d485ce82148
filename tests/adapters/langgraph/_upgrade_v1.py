"""Version 1 of an agent's refund graph; ``_upgrade_v2.py`` is the next release of the same
agent. ``test_upgrade.py`` parks runs at a person's answer with this version and resumes them
with the next one::

    python -m tests.adapters.langgraph._upgrade_v1     # a worker; exits after RUNS runs

The graph: ``prepare`` (a journaled step), ``agent`` (a scripted model) and ``tools``
(``charge_back``, journaled), ``review`` (a journaled draft, then a person checks it, for runs
with ``review``), ``pay`` (a person approves refunds above 100 EUR, then a journaled payment).
Every side effect goes to the external system of ``_external.py``, labelled with this
version, so a test can tell which version of the code made it.

Environment: ``TETHER_DB`` (a store URL) or ``TETHER_URL`` + ``TETHER_API_KEY`` (a server),
``EFFECTS`` (the external system's file), ``RUNS`` (how many runs to take before exiting).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import tether
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.graph import END, START, MessagesState, StateGraph
from tether import HumanTask
from tether_langgraph import (
    Decision,
    DurableGraph,
    TetherSaver,
    requires_approval,
    step,
    tool_node,
    wait_for_human,
)
from tether_langgraph.testing import ScriptedChatModel

from . import _external

VERSION = "v1"
AGENT = "agent://test/upgrades"


class Refund(MessagesState, total=False):
    order: str
    amount: int
    review: bool
    note: str
    status: str


def effect(kind: str, name: str, label: str) -> str:
    return _external.call(_external.journal_key(kind, name), f"{label}:{VERSION}")


@tool
def charge_back(order: str, amount: int, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
    """Take the amount back from the merchant."""
    effect("tool", tool_call_id, "charge")
    return f"charged back {amount} EUR for {order}"


def _script(messages: list[BaseMessage]) -> AIMessage:
    if any(m.type == "tool" for m in messages):
        return AIMessage("Charged back; the refund is next.")
    order = str(messages[0].content)
    return AIMessage(
        "",
        tool_calls=[{"name": "charge_back", "args": {"order": order, "amount": 1}, "id": "c1"}],
    )


def prepare(state: Refund) -> dict[str, Any]:
    step("prepare", lambda: effect("step", "prepare", "prepare"))
    return {"status": "prepared"}


def agent(state: Refund) -> dict[str, Any]:
    return {"messages": [ScriptedChatModel(script=_script).invoke(state["messages"])]}


def review(state: Refund) -> dict[str, Any]:
    if not state.get("review"):
        return {}
    draft = step("draft", lambda: effect("step", "draft", "draft"))
    decision = wait_for_human(
        HumanTask(title=f"{VERSION}: check the refund note for {state['order']}"), key="review"
    )
    return {"note": f"{draft} {decision.outcome}"}


@requires_approval(
    lambda s: HumanTask(title=f"{VERSION}: refund {s['amount']} EUR for {s['order']}?"),
    when=lambda s: s["amount"] > 100,
)
def pay(state: Refund, decision: Decision) -> dict[str, Any]:
    if not decision.approved:
        return {"status": decision.outcome}
    step("pay", lambda: effect("step", "pay", "pay"))
    return {"status": "refunded", "messages": [AIMessage(f"Refunded {state['amount']} EUR.")]}


def build(client: tether.Client) -> DurableGraph:
    g = StateGraph(Refund)
    g.add_node("prepare", prepare)
    g.add_node("agent", agent)
    g.add_node("tools", tool_node([charge_back]))
    g.add_node("review", review)
    g.add_node("pay", pay)
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "agent")
    g.add_conditional_edges(
        "agent", lambda s: "tools" if s["messages"][-1].tool_calls else "review"
    )
    g.add_edge("tools", "agent")
    g.add_edge("review", "pay")
    g.add_edge("pay", END)
    return DurableGraph(g.compile(checkpointer=TetherSaver(client, agent=AGENT)), client,
                        agent=AGENT)  # fmt: skip


def main() -> None:
    url = os.environ.get("TETHER_URL") or os.environ["TETHER_DB"]
    with tether.connect(url, api_key=os.environ.get("TETHER_API_KEY")) as client:
        build(client).worker(poll_seconds=0.1).run(max_intents=int(os.environ["RUNS"]))


if __name__ == "__main__":
    main()
