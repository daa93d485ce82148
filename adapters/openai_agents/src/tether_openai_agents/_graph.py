"""Making an agent durable: a copy of its graph whose models and tools are journaled.

The user's agents are left as they are. Each agent reachable by handoffs is cloned once
(cycles included) with its function tools wrapped (``_tools.durable_tool``) and, when it holds
a ``Model`` instance, that model wrapped (``_model.JournalingModel``); models named by a
string are wrapped by the run's model provider instead, so the SDK's defaults for named models
still apply. Agents used as tools (``agent.as_tool``) run as the SDK runs them: their nested
runs are not journaled.
"""

from __future__ import annotations

import copy
import weakref
from typing import Any

from agents import Agent, FunctionTool, Handoff, Model, RunContextWrapper
from agents.tool import Tool

from ._model import journaling
from ._tools import durable_tool


class DurableGraph:
    """The durable copies of an agent graph; keeps the copies alive (handoffs hold weak
    references to their targets)."""

    def __init__(self, root: Agent[Any]) -> None:
        self._copies: dict[int, Agent[Any]] = {}
        self._originals: list[Agent[Any]] = []
        self.root = self.durable(root)

    def durable(self, agent: Agent[Any]) -> Agent[Any]:
        found = self._copies.get(id(agent))
        if found is not None:
            return found
        changes: dict[str, Any] = {"tools": [_tool(t) for t in agent.tools]}
        if isinstance(agent.model, Model):
            changes["model"] = journaling(agent.model)
        clone = agent.clone(**changes)
        self._copies[id(agent)] = clone
        self._originals.append(agent)  # ids stay unique while the originals live
        clone.handoffs = [self._handoff(h) for h in agent.handoffs]
        return clone

    def _handoff(self, target: Agent[Any] | Handoff[Any, Any]) -> Agent[Any] | Handoff[Any, Any]:
        if isinstance(target, Agent):
            return self.durable(target)
        moved = copy.copy(target)
        invoke = target.on_invoke_handoff

        async def on_invoke_handoff(ctx: RunContextWrapper[Any], arguments: str) -> Any:
            chosen = await invoke(ctx, arguments)
            return self.durable(chosen) if isinstance(chosen, Agent) else chosen

        moved.on_invoke_handoff = on_invoke_handoff
        # The SDK finds a handoff's target through this reference when it rebuilds a stored
        # run state; point it at the durable copy so the restored run uses that copy.
        ref = getattr(target, "_agent_ref", None)
        original = ref() if ref is not None else None
        if isinstance(original, Agent):
            moved._agent_ref = weakref.ref(self.durable(original))
        return moved


def _tool(tool: Tool) -> Tool:
    if isinstance(tool, FunctionTool) and not getattr(tool, "_is_agent_tool", False):
        return durable_tool(tool)
    return tool
