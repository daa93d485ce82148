"""A refund agent on LangGraph: refunds above a limit wait for a person, across processes.

The agent looks an order up and refunds it with two tools. ``issue_refund`` asks
finance-lead@example.com first when the amount is above 100 EUR; the run then waits in
tether, the process exits, and a worker in another process finishes it once the person
answered. Tool calls are journaled, so the refund is issued exactly once.

    python examples/langgraph_refund.py                      # the whole story, offline
    python examples/langgraph_refund.py start A-1042         # submit and run until done or waiting
    python examples/langgraph_refund.py approve INTENT_ID    # as the finance lead
    python examples/langgraph_refund.py worker               # resume what can go on, then exit

Each command takes ``--db URL`` (default: ``TETHER_DB``, or a fresh temporary store for the
whole story). Offline by default, with a scripted model; with ``OPENAI_API_KEY`` set, a real
model answers (``pip install 'tether-langgraph[openai]'``; ``OPENAI_MODEL`` picks it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from typing import Any

import tether
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from tether import HumanTask, Principal
from tether_langgraph import DurableGraph, TetherSaver, tool_node, wait_for_human
from tether_langgraph.testing import ScriptedChatModel

AGENT = "agent://demo/langgraph-refunds"
APPROVER = "finance-lead@example.com"
LIMIT = 100.0
ORDERS: dict[str, dict[str, Any]] = {
    "A-1042": {"amount": 120.0, "customer": "Ada", "reason": "arrived damaged"},
    "A-1043": {"amount": 30.0, "customer": "Bob", "reason": "wrong size"},
}
SYSTEM = (
    "You handle refund requests. Look the order up with lookup_order, then refund its full "
    "amount with issue_refund, then tell the customer in one sentence what happened."
)


@tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look an order up: its amount in EUR, the customer and the reason for the return."""
    return ORDERS.get(order_id, {"error": f"no order {order_id}"})


@tool
def issue_refund(order_id: str, amount: float) -> str:
    """Refund an amount in EUR for an order. Above the limit, a person approves first."""
    if amount > LIMIT:
        decision = wait_for_human(
            HumanTask(
                title=f"Refund {amount:.2f} EUR for order {order_id}?",
                description=f"Over the {LIMIT:.0f} EUR limit the agent may refund alone.",
                assignees=[APPROVER],
            ),
            key=f"refund-{order_id}",
            timeout=7 * 24 * 3600,
        )
        if not decision.approved:
            return f"Refund of {amount:.2f} EUR not issued: {decision.outcome}."
    # The payment provider; journaled by the tools node, so this runs once per run.
    print(f"  [psp] refunded {amount:.2f} EUR for order {order_id}", flush=True)
    return f"Refunded {amount:.2f} EUR for order {order_id} (receipt R-{order_id})."


def _scripted_turn(messages: list[BaseMessage]) -> AIMessage:
    """What a model would say at each turn, decided from the conversation so far (so a
    resumed run in a new process gets the same answers)."""
    request = next(m for m in messages if isinstance(m, HumanMessage))
    order_id = str(request.content).split()[-1]
    results = [m for m in messages if m.type == "tool"]
    if not results:
        call = {"name": "lookup_order", "args": {"order_id": order_id}, "id": "call_lookup"}
        return AIMessage("", tool_calls=[call])
    if len(results) == 1:
        args = {"order_id": order_id, "amount": ORDERS[order_id]["amount"]}
        return AIMessage(
            "", tool_calls=[{"name": "issue_refund", "args": args, "id": "call_refund"}]
        )
    return AIMessage(f"Done: {results[-1].content}")


def model() -> BaseChatModel:
    if not os.environ.get("OPENAI_API_KEY"):
        return ScriptedChatModel(script=_scripted_turn)
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise SystemExit(
            "OPENAI_API_KEY is set but langchain-openai is missing: "
            "pip install 'tether-langgraph[openai]'"
        ) from exc
    return ChatOpenAI(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), temperature=0)


def build(client: tether.Client) -> DurableGraph:
    llm = model().bind_tools([lookup_order, issue_refund])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [llm.invoke([SystemMessage(SYSTEM), *state["messages"]])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", tool_node([lookup_order, issue_refund]))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    g.add_edge("tools", "agent")
    graph = g.compile(checkpointer=TetherSaver(client, agent=AGENT))
    return DurableGraph(graph, client, agent=AGENT)


def _connect(db: str) -> tether.Client:
    return tether.connect(db, actor=Principal.agent(AGENT))


def start(db: str, order_id: str) -> None:
    with _connect(db) as client:
        run = build(client).start({"messages": [HumanMessage(f"Please refund order {order_id}")]})
        if run.status == "waiting" and run.wait is not None and run.wait.human_task is not None:
            print(f"run {run.intent_id} waits for {APPROVER}: {run.wait.human_task.title}")
        else:
            print(f"run {run.intent_id} {run.status}: {run.output['messages'][-1]['content']}")


def approve(db: str, intent_id: str) -> None:
    with tether.connect(db, actor=Principal.human(APPROVER)) as client:
        client.approve(intent_id, comment="Photos confirm the damage.")
        print(f"{APPROVER} approved run {intent_id}")


def work(db: str) -> None:
    with _connect(db) as client:
        worker = build(client).worker(poll_seconds=0.2)
        while worker.run_once():
            pass
        for intent in client.list_intents(to_agent=AGENT, status=tether.Status.COMPLETED).items:
            if any(e.event_type == "intent.claimed" for e in client.list_events(intent.intent_id)):
                answer = intent.result["messages"][-1]["content"]
                print(f"run {intent.intent_id} completed: {answer}")


def story(db: str) -> None:
    """Every step in its own process, on one store, as it would happen days apart."""

    def step(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, __file__, *args, "--db", db],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        print(out.stdout.rstrip())
        return out.stdout

    print("1. an agent process takes two refund requests, then exits")
    step("start", "A-1043")
    waiting = step("start", "A-1042")
    intent_id = waiting.split()[1]
    print("2. the finance lead approves, from another process")
    step("approve", intent_id)
    print("3. a new agent process resumes the waiting run where it stopped")
    step("worker")
    print("4. the run's trail")
    with tether.connect(db) as client:
        for event in client.list_events(intent_id):
            print(f"   {event.seq:>2} {event.event_type:<28} {event.actor}")
        calls = [s.key.rsplit("/", 1)[-1].lstrip("=") for s in client.list_steps(intent_id)]
        print(f"   journal: {', '.join(calls)} (each tool call recorded once)")
        assert client.verify_audit(intent_id).ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="story",
                        choices=["story", "start", "approve", "worker"])  # fmt: skip
    parser.add_argument("target", nargs="?", help="the order (start) or the run (approve)")
    parser.add_argument("--db", default=os.environ.get("TETHER_DB"))
    args = parser.parse_args(argv)
    db = args.db
    if args.command == "story":
        with tempfile.TemporaryDirectory() as tmp:
            story(db or f"sqlite:///{tmp}/refunds.db")
        return
    if db is None:
        raise SystemExit("pass --db (or set TETHER_DB)")
    if args.command == "start":
        start(db, args.target or "A-1042")
    elif args.command == "approve":
        approve(db, args.target)
    else:
        work(db)


if __name__ == "__main__":
    main()
