"""The boundaries of a run where tether's per-agent policy applies: a node starting, a tool
being called, a model turn ending. Each has exactly one function here, called from one place:

- :func:`node_start`: from :class:`BoundaryCallbacks` (``on_chain_start`` of every node of
  the graph, subgraphs included), which the runner adds to the run's callbacks;
- :func:`tool_call`: from :func:`tether_langgraph.journal_tool_call` (every tool call of a
  ``ToolNode``) and :func:`tether_langgraph.step` with ``tool=``, before the tool runs and
  only when the journal has no result for it;
- :func:`model_turn`: from :class:`BoundaryCallbacks` (``on_llm_end`` of every chat model
  call inside the graph), with the turn's token usage.

An exception raised at a boundary stops the run there (callbacks raise errors here, unlike
LangChain's default), and the runner ends the attempt without failing the intent when it is
one of tether's stop errors: a killed or paused agent (``tether.AgentStopped``, the intent is
held and goes on after a resume), a spend cap waiting for a person (``ApprovalPending``), an
intent canceled meanwhile (``IntentTerminal``). A tool outside the agent's scope
(``tether.ToolDenied``) becomes an error ``ToolMessage`` for the model in a ``ToolNode``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from ._binding import RunBinding


def node_start(binding: RunBinding, node: str) -> None:
    """A node of the run is about to start: a killed or paused agent stops here. The agent's
    guard answers while the agent is active (no round trip); otherwise the store decides and
    records the hold. An intent canceled meanwhile shows at the run's next write."""
    if binding.guard is not None and binding.guard.allows():
        return
    binding.client.check(binding.intent_id, lease=binding.lease())


def tool_call(binding: RunBinding, tool: str) -> None:
    """A tool is about to be called (not found in the journal): as :func:`node_start`, and
    ``tether.ToolDenied`` (on the intent's trail) when the agent's scope leaves it out."""
    if binding.guard is not None and binding.guard.allows(tool):
        return
    binding.client.authorize_tool(binding.intent_id, tool, lease=binding.lease())


def model_turn(binding: RunBinding, *, model: str | None, tokens_in: int, tokens_out: int) -> None:
    """A chat model call of the run has ended: its usage is the agent's spend (its cost
    from the graph's ``price``); past a ``require_approval`` cap this raises
    ``ApprovalPending`` and the run stops for a person."""
    cost = binding.price(model or "", tokens_in, tokens_out) if binding.price else 0.0
    binding.client.report_usage(
        binding.intent_id, model=model, tokens_in=tokens_in, tokens_out=tokens_out,
        cost_usd=cost, lease=binding.lease(),
    )  # fmt: skip


def _usage(response: LLMResult) -> tuple[str | None, int, int]:
    """Model name and tokens of a turn, from LangChain's usage metadata."""
    tokens_in = tokens_out = 0
    model: str | None = None
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            usage = getattr(message, "usage_metadata", None) or {}
            tokens_in += int(usage.get("input_tokens", 0))
            tokens_out += int(usage.get("output_tokens", 0))
            meta = getattr(message, "response_metadata", None) or {}
            model = model or meta.get("model_name") or meta.get("model")
    return model, tokens_in, tokens_out


class BoundaryCallbacks(BaseCallbackHandler):
    """LangChain callbacks that call :func:`node_start` and :func:`model_turn`."""

    raise_error = True
    run_inline = True

    def __init__(self, binding: RunBinding) -> None:
        self.binding = binding

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        node = (metadata or {}).get("langgraph_node")
        # Runnables inside a node inherit its metadata; the node itself carries its name.
        if node is not None and kwargs.get("name") == node:
            node_start(self.binding, str(node))

    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        model, tokens_in, tokens_out = _usage(response)
        model_turn(self.binding, model=model, tokens_in=tokens_in, tokens_out=tokens_out)
