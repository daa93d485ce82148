"""The workload of the adapter's chaos test (``test_chaos.py``): a graph whose every side
effect goes to the external system of ``_external.py`` (each idempotency key applied once,
every call logged with its process), run by a worker process until it is killed::

    python -m tests.adapters.langgraph._chaos_app

The graph: ``prepare`` (a journaled step), ``agent`` (a scripted model) and ``tools`` (a slow
``charge`` and a quick ``notify``, both journaled), ``approve`` (a person approves the runs
that ask for it), ``ship`` (a slow journaled step). The slow calls sleep before and after
their effect, so a kill lands inside them, and between an effect and its record, now and then.

Each worker keeps what it is doing in ``PHASES/<pid>`` (``idle``, or how it claimed its run,
where the run is, and the run's intent: ``answer/node:approve <intent id>``), so the test can
tell at which boundary each kill struck.

Environment: ``TETHER_DB`` (the store), ``EFFECTS`` (the external system's file),
``PHASES`` (a directory), ``LEASE`` (seconds).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import tether
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.graph import END, START, MessagesState, StateGraph
from tether import HumanTask, Status, WorkContext
from tether_langgraph import Decision, DurableGraph, TetherSaver, requires_approval, step, tool_node
from tether_langgraph.testing import ScriptedChatModel

from . import _external

AGENT = "agent://chaos/langgraph"
_claim = "none"  # how this process's current run was claimed: new, answer or takeover
_intent = ""  # and its intent
_last = ""


def phase(where: str) -> None:
    """Record what this process does now (replaced atomically: a kill never leaves half)."""
    global _last
    text = where if where == "idle" else f"{_claim}/{where} {_intent}"
    if text == _last:
        return
    _last = text
    folder = Path(os.environ["PHASES"])
    scratch = folder / f".{os.getpid()}"
    scratch.write_text(text)
    os.replace(scratch, folder / str(os.getpid()))


class Order(MessagesState, total=False):
    order: str
    approval: bool
    status: str
    approved_by: str


def effect(kind: str, name: str, label: str) -> str:
    return _external.call(_external.journal_key(kind, name), label)


@tool
def charge(order: str, seconds: float, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
    """Charge the customer (slow)."""
    phase("tool:charge")
    time.sleep(seconds / 2)
    effect("tool", tool_call_id, "charge")
    time.sleep(seconds / 2)  # the provider's answer: killed here, the charge runs again
    phase("node:tools")
    return f"charged {order}"


@tool
def notify(order: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
    """Tell the customer."""
    effect("tool", tool_call_id, "notify")
    return f"told {order}"


def _script(messages: list[BaseMessage]) -> AIMessage:
    if any(m.type == "tool" for m in messages):
        return AIMessage("Charged and told.")
    order, seconds = str(messages[0].content).split("|")
    return AIMessage(
        "",
        tool_calls=[
            {"name": "charge", "args": {"order": order, "seconds": float(seconds)}, "id": "c1"},
            {"name": "notify", "args": {"order": order}, "id": "c2"},
        ],
    )


def prepare(state: Order) -> dict[str, Any]:
    phase("node:prepare")
    step("prepare", lambda: effect("step", "prepare", "prepare"))
    return {"status": "prepared"}


def agent(state: Order) -> dict[str, Any]:
    phase("node:agent")
    return {"messages": [ScriptedChatModel(script=_script).invoke(state["messages"])]}


def _ask(state: Order) -> HumanTask:
    phase("asking")  # the wait opens next (or, resumed, its answer is read)
    time.sleep(0.05)  # looking up who decides
    return HumanTask(title=f"Ship {state['order']}?")


@requires_approval(_ask, when=lambda s: s["approval"])
def approve(state: Order, decision: Decision) -> dict[str, Any]:
    phase("node:approve")
    if decision.automatic:
        return {}
    return {"status": decision.outcome, "approved_by": decision.decided_by or ""}


def _ship() -> str:
    time.sleep(0.05)
    done = effect("step", "ship", "ship")
    time.sleep(0.1)  # killed here, the step runs again
    return done


def ship(state: Order) -> dict[str, Any]:
    phase("node:ship")
    step("ship", _ship)
    return {"status": "shipped"}


def build(client: tether.Client) -> DurableGraph:
    g = StateGraph(Order)
    g.add_node("prepare", prepare)
    g.add_node("agent", agent)
    g.add_node("tools", tool_node([charge, notify]))
    g.add_node("approve", approve)
    g.add_node("ship", ship)
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "agent")
    g.add_conditional_edges(
        "agent", lambda s: "tools" if s["messages"][-1].tool_calls else "approve"
    )
    g.add_edge("tools", "agent")
    g.add_edge("approve", "ship")
    g.add_edge("ship", END)
    graph = g.compile(checkpointer=TetherSaver(client, agent=AGENT))
    return DurableGraph(
        graph, client, agent=AGENT, lease_seconds=float(os.environ.get("LEASE", "30"))
    )


def main() -> None:
    with tether.connect(os.environ["TETHER_DB"]) as client:
        durable = build(client)

        def handle(ctx: WorkContext) -> Any:
            global _claim, _intent
            _intent = ctx.intent.intent_id
            if ctx.intent.status in (Status.SUBMITTED, Status.DELIVERED):
                _claim = "new"
            else:  # back after a person's answer, or taken over from a dead worker
                events = client.list_events(ctx.intent.intent_id)
                _claim = "answer" if events[-2].event_type == "intent.resumed" else "takeover"
            phase("claimed")
            time.sleep(0.05)  # loading what the run needs
            try:
                return durable.handle(ctx)
            finally:
                phase("ending")  # the worker records how it ended

        worker = tether.Worker(client, agent=AGENT, lease_seconds=durable.lease_seconds,
                               poll_seconds=0.1)  # fmt: skip
        worker.handler(durable.intent_type)(handle)
        while True:
            phase("idle")
            try:
                worker.run_once()
            except tether.StoreError:
                time.sleep(0.2)


if __name__ == "__main__":
    main()
