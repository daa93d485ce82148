"""tether for LangGraph: graphs whose runs wait for people and tools, survive their process,
and resume where they stopped, in any process.

- :class:`TetherSaver`: a LangGraph checkpointer that stores in tether (in-process or HTTP).
- :class:`DurableGraph`: runs a compiled graph as tether intents; :meth:`DurableGraph.worker`
  resumes them when their wait is answered.
- :func:`requires_approval`, :func:`awaits_tool`: decorators that make a node wait first.
- :func:`wait_for_human`, :func:`wait_for_tool` (and async ``await_*``): the same, inside a
  node's body.
- :func:`tool_node`, :func:`journal_tool_call`, :func:`step`: side effects that happen once.

Example::

    import tether
    from tether_langgraph import DurableGraph, Decision, TetherSaver, requires_approval

    @requires_approval(lambda s: f"Refund {s['amount']} EUR?", when=lambda s: s["amount"] > 100)
    def refund(state: dict, decision: Decision) -> dict:
        return {"status": "refunded" if decision.approved else decision.outcome}

    client = tether.connect()
    graph = builder.compile(checkpointer=TetherSaver(client))
    run = DurableGraph(graph, client, agent="agent://shop/refunds").start({"amount": 500})
"""

from ._journal import ajournal_tool_call, astep, journal_tool_call, step, tool_node
from ._nodes import awaits_tool, requires_approval
from ._runner import DurableGraph, GraphChanged, RunResult, default_interrupt_task
from ._saver import TetherSaver
from ._waits import (
    Decision,
    ToolResult,
    await_human,
    await_tool,
    wait_for_human,
    wait_for_tool,
)

__all__ = [
    "Decision",
    "DurableGraph",
    "GraphChanged",
    "RunResult",
    "TetherSaver",
    "ToolResult",
    "ajournal_tool_call",
    "astep",
    "await_human",
    "await_tool",
    "awaits_tool",
    "default_interrupt_task",
    "journal_tool_call",
    "requires_approval",
    "step",
    "tool_node",
    "wait_for_human",
    "wait_for_tool",
]
