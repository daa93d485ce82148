"""The agent's boundaries: the one place per boundary where tether's policy is asked.

Every model turn passes :func:`before_model_turn` and, when the model really answered (not a
turn replayed from the journal), :func:`turn_usage`; every tool call passes
:func:`before_tool_call` before its body runs. The mesh (kill switch, pause, tool scope,
spend caps) is asked here and nowhere else. The agent's guard (``client.guard``, kept
current within the mesh's propagation bound) answers the common case from memory; when it
says the agent is stopped or a tool is out of scope, the store decides and records it:

- ``before_model_turn``: ``client.check`` (a killed or paused agent stops; the intent is held,
  not failed, and goes on after a resume),
- ``before_tool_call``: ``client.authorize_tool`` (the same, and a tool outside the agent's
  scope is reported to the model instead of running; the denial is on the intent's trail),
- ``turn_usage``: the turn's tokens and cost (from the runner's ``price``), which the journal
  reports as spend with the write that records the turn (``record_step(..., usage=)``: no
  extra write; a ``require_approval`` spend cap stops the run for a person there).
"""

from __future__ import annotations

import asyncio

import tether
from agents import ModelResponse
from tether import TurnUsage

from ._binding import Abort, Binding


async def before_model_turn(binding: Binding) -> None:
    """A model turn is about to be taken (or replayed) for ``binding.intent_id``.

    The agent's guard answers from memory while the agent is active; when it says the agent
    is stopped, the store decides (and records the stop). A canceled intent or a spend cap
    shows at the turn's own write."""
    if binding.guard is None or not binding.guard.allows():
        await binding.call(binding.client.check, binding.intent_id, lease=binding.lease)


def turn_usage(binding: Binding, model: str, response: ModelResponse) -> TurnUsage:
    """A fresh model turn's usage (its cost from the runner's ``price``): the journal write
    that records the turn reports it as the agent's spend, in the same transaction, and a
    ``require_approval`` spend cap stops the run there for a person."""
    usage = response.usage
    tokens_in, tokens_out = usage.input_tokens or 0, usage.output_tokens or 0
    cost = binding.price(model, tokens_in, tokens_out) if binding.price is not None else 0.0
    return TurnUsage(model=model, tokens_in=tokens_in, tokens_out=tokens_out, cost_usd=cost)


async def before_tool_call(binding: Binding, tool_name: str) -> str | None:
    """A tool body is about to run. Returns a message for the model instead of running the
    tool when policy denies it (``None``: go ahead)."""
    if binding.guard is not None and binding.guard.allows(tool_name):
        return None  # the common case, from memory; a refusal is decided (and recorded) below
    try:
        await asyncio.to_thread(
            binding.client.authorize_tool, binding.intent_id, tool_name, lease=binding.lease
        )
    except tether.ToolDenied as denied:
        return f"The tool {tool_name!r} is not allowed for this agent ({denied.message})."
    except tether.TetherError as exc:
        raise Abort(exc) from exc
    return None
