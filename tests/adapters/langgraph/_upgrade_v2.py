"""Version 2 of the refund graph of ``_upgrade_v1.py``: the next release of the same agent::

    python -m tests.adapters.langgraph._upgrade_v2     # a worker, until stopped

The same nodes where runs wait (``review``, ``pay``) with changed bodies: every task title,
message and note is worded anew, the tool and the steps are new implementations (their effects
are labelled ``v2``), the state has a new key, and a new node, ``notify``, runs after ``pay``.

``UPGRADE_VARIANT`` (or ``build(..., variant=)``) makes a release that breaks runs parked in
``pay``: ``renamed`` (the node is now ``approve_refund``) or ``removed`` (no such node:
``review`` goes straight to ``notify``).

Environment: as ``_upgrade_v1.py``, without ``RUNS``.
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
from ._upgrade_v1 import AGENT

VERSION = "v2"


class Refund(MessagesState, total=False):
    order: str
    amount: int
    review: bool
    note: str
    status: str
    notified: str  # new in v2


def effect(kind: str, name: str, label: str) -> str:
    return _external.call(_external.journal_key(kind, name), f"{label}:{VERSION}")


@tool
def charge_back(order: str, amount: int, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
    """Take the amount back from the merchant, through the new chargeback API."""
    effect("tool", tool_call_id, "charge")
    return f"chargeback filed: {amount} EUR, order {order}"


def _script(messages: list[BaseMessage]) -> AIMessage:
    if any(m.type == "tool" for m in messages):
        return AIMessage("The chargeback is filed.")
    order = str(messages[0].content)
    return AIMessage(
        "",
        tool_calls=[{"name": "charge_back", "args": {"order": order, "amount": 1}, "id": "c1"}],
    )


def prepare(state: Refund) -> dict[str, Any]:
    step("prepare", lambda: effect("step", "prepare", "prepare"))
    return {"status": "ready"}


def agent(state: Refund) -> dict[str, Any]:
    return {"messages": [ScriptedChatModel(script=_script).invoke(state["messages"])]}


def review(state: Refund) -> dict[str, Any]:
    if not state.get("review"):
        return {}
    draft = step("draft", lambda: effect("step", "draft", "draft"))
    decision = wait_for_human(
        HumanTask(title=f"{VERSION}: is this note right for {state['order']}?"), key="review"
    )
    return {"note": f"{VERSION} read {draft}, {decision.outcome}"}


@requires_approval(
    lambda s: HumanTask(title=f"{VERSION}: pay back {s['amount']} EUR on {s['order']}?"),
    when=lambda s: s["amount"] > 100,
)
def pay(state: Refund, decision: Decision) -> dict[str, Any]:
    if not decision.approved:
        return {"status": f"not paid ({decision.outcome})"}
    step("pay", lambda: effect("step", "pay", "pay"))
    message = f"{VERSION}: your {state['amount']} EUR are on their way."
    return {"status": "paid", "messages": [AIMessage(message)]}


def notify(state: Refund) -> dict[str, Any]:
    sent = step("notify", lambda: effect("step", "notify", "notify"))
    return {"notified": f"{sent} ({state['status']})"}


def build(client: tether.Client, variant: str = "same") -> DurableGraph:
    g = StateGraph(Refund)
    g.add_node("prepare", prepare)
    g.add_node("agent", agent)
    g.add_node("tools", tool_node([charge_back]))
    g.add_node("review", review)
    g.add_node("notify", notify)
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "agent")
    g.add_conditional_edges(
        "agent", lambda s: "tools" if s["messages"][-1].tool_calls else "review"
    )
    g.add_edge("tools", "agent")
    if variant == "removed":
        g.add_edge("review", "notify")
    else:
        paying = {"same": "pay", "renamed": "approve_refund"}[variant]
        g.add_node(paying, pay)
        g.add_edge("review", paying)
        g.add_edge(paying, "notify")
    g.add_edge("notify", END)
    return DurableGraph(g.compile(checkpointer=TetherSaver(client, agent=AGENT)), client,
                        agent=AGENT)  # fmt: skip


def main() -> None:
    url = os.environ.get("TETHER_URL") or os.environ["TETHER_DB"]
    with tether.connect(url, api_key=os.environ.get("TETHER_API_KEY")) as client:
        build(client, os.environ.get("UPGRADE_VARIANT", "same")).worker(poll_seconds=0.1).run()


if __name__ == "__main__":
    main()
