"""A durable refund graph run by the tests from real processes::

    python -m tests.adapters.langgraph._app      # a worker, until killed

Environment: ``TETHER_DB`` (a store URL) or ``TETHER_URL`` + ``TETHER_API_KEY`` (a server),
``EFFECTS`` (a file every side effect appends a line to, so a test can count how often each
really ran), ``LEASE`` (seconds), ``SLOW`` (seconds the audit tool sleeps: time to kill the
process inside the tools node, after the charge tool ran).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import tether
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from tether import HumanTask
from tether_langgraph import Decision, DurableGraph, TetherSaver, requires_approval, step, tool_node
from tether_langgraph.testing import ScriptedChatModel

AGENT = "agent://test/refunds"


def effect(name: str) -> str:
    with Path(os.environ["EFFECTS"]).open("a") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())
    return name


class Refund(MessagesState, total=False):
    order: str
    amount: int
    status: str


@tool
def charge_back(order: str, amount: int) -> str:
    """Take the amount back from the merchant."""
    return effect(f"charge:{order}")


@tool
def audit(order: str) -> str:
    """Write the audit record (slow)."""
    time.sleep(float(os.environ.get("SLOW", "0")))
    return effect(f"audit:{order}")


def _script(messages: Any) -> AIMessage:
    if any(m.type == "tool" for m in messages):
        return AIMessage("Charged back and audited.")
    order = str(messages[0].content)  # the run's input message names the order
    return AIMessage(
        "",
        tool_calls=[
            {"name": "charge_back", "args": {"order": order, "amount": 1}, "id": "call_charge"},
            {"name": "audit", "args": {"order": order}, "id": "call_audit"},
        ],
    )


def prepare(state: Refund) -> dict[str, Any]:
    # Not journaled on purpose: only the checkpoint keeps it from running twice.
    effect(f"prepare:{state['order']}")
    return {"status": "prepared"}


def agent(state: Refund) -> dict[str, Any]:
    return {"messages": [ScriptedChatModel(script=_script).invoke(state["messages"])]}


@requires_approval(
    lambda s: HumanTask(title=f"Refund {s['amount']} EUR for {s['order']}?"),
    when=lambda s: s["amount"] > 100,
)
def pay(state: Refund, decision: Decision) -> dict[str, Any]:
    if not decision.approved:
        return {"status": decision.outcome}
    step("pay", lambda: effect(f"pay:{state['order']}"))
    return {"status": "refunded"}


def build(client: tether.Client) -> DurableGraph:
    g = StateGraph(Refund)
    g.add_node("prepare", prepare)
    g.add_node("agent", agent)
    g.add_node("tools", tool_node([charge_back, audit]))
    g.add_node("pay", pay)
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "agent")
    g.add_conditional_edges("agent", lambda s: "tools" if s["messages"][-1].tool_calls else "pay")
    g.add_edge("tools", "agent")
    g.add_edge("pay", END)
    graph = g.compile(checkpointer=TetherSaver(client, agent=AGENT))
    return DurableGraph(
        graph, client, agent=AGENT, lease_seconds=float(os.environ.get("LEASE", "30"))
    )


def main() -> None:
    url = os.environ.get("TETHER_URL") or os.environ["TETHER_DB"]
    client = tether.connect(url, api_key=os.environ.get("TETHER_API_KEY"))
    build(client).worker(poll_seconds=0.1).run()


if __name__ == "__main__":
    main()
