"""The tool-call boundary: each function tool call is checked, journaled, and run once.

Every ``FunctionTool`` of a durable agent is wrapped (a copy; the user's tool is untouched).
Inside a durable run the wrapper, in order:

1. for a long external call, returns the result the external system posted to tether;
2. refuses a call that needs a person's approval unless tether holds an approving answer for
   this call id *and these arguments* (the stored run state cannot approve anything);
3. returns the journaled result when the call already ran (a resumed run never runs a
   finished tool body again);
4. passes the policy boundary, runs the body, and journals its result.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from agents import FunctionTool
from agents.tool_context import ToolContext

from . import _policy
from ._binding import Abort, Binding, current
from ._codec import (
    approval_key,
    decode_output,
    encode_output,
    parse_arguments,
    tool_step_key,
)
from .errors import UnapprovedToolCall
from .tools import ExternalCall, external_output, policy_of

Invoker = Callable[[ToolContext[Any], str], Awaitable[Any]]
_INNER = "_tether_inner_invoke"


def is_durable_tool(tool: object) -> bool:
    """Is this a tool wrapped by :func:`durable_tool` (its results are journaled)?"""
    return isinstance(tool, FunctionTool) and getattr(tool, _INNER, None) is not None


def inner_invoker(tool: FunctionTool) -> Invoker:
    """The SDK's own invoker of a wrapped tool (runs the body, with the SDK's error handling)."""
    found: Invoker | None = getattr(tool, _INNER, None)
    return found if found is not None else tool.on_invoke_tool


async def needs_approval(tool: FunctionTool, ctx: ToolContext[Any], arguments: str) -> bool:
    """Does this call need a person? Asked again at run time, from the tool's own setting:
    code, not stored data, decides."""
    setting = tool.needs_approval
    if not callable(setting):
        return bool(setting)
    params = parse_arguments(arguments)
    if not isinstance(params, dict):
        return True  # the SDK also asks a person when the arguments do not parse
    decided: Any = setting(ctx, params, ctx.tool_call_id)
    if inspect.isawaitable(decided):
        decided = await decided
    return bool(decided)


def durable_tool(tool: FunctionTool) -> FunctionTool:
    """A copy of ``tool`` that journals its calls and checks approvals against tether."""
    if is_durable_tool(tool):
        return tool
    wrapped = copy.copy(tool)
    inner: Invoker = wrapped.on_invoke_tool

    async def invoke(ctx: ToolContext[Any], arguments: str) -> Any:
        binding = current()
        if binding is None:
            return await inner(ctx, arguments)
        return await _invoke(binding, wrapped, inner, ctx, arguments)

    wrapped.on_invoke_tool = invoke
    setattr(wrapped, _INNER, inner)
    return wrapped


async def _invoke(
    binding: Binding, tool: FunctionTool, inner: Invoker, ctx: ToolContext[Any], arguments: str
) -> Any:
    call_id = ctx.tool_call_id
    key = tool_step_key(tool.name, call_id)
    if isinstance(policy_of(tool), ExternalCall):
        wait = binding.tool_waits.get(call_id)
        if wait is None:
            reason = "no result of this external call is on record in tether"
            raise Abort(UnapprovedToolCall(tool.name, call_id, reason))
        recorded = binding.journal.get(key)
        if recorded is not None:
            return decode_output(recorded)
        output = external_output(wait, tool.name)
        await binding.record(key, encode_output(output, schema=_has_schema(tool)))
        return output
    if (
        await needs_approval(tool, ctx, arguments)
        and approval_key(call_id, arguments) not in binding.approved
    ):
        reason = "tether holds no approving answer from a person for this call and arguments"
        raise Abort(UnapprovedToolCall(tool.name, call_id, reason))
    recorded = binding.journal.get(key)
    if recorded is not None:
        return decode_output(recorded)
    denied = await _policy.before_tool_call(binding, tool.name)
    if denied is not None:
        return denied
    output = await inner(ctx, arguments)
    # written with the next turn, in one commit
    binding.hold(key, encode_output(output, schema=_has_schema(tool)))
    return output


def _has_schema(tool: FunctionTool) -> bool:
    """Whether the tool declares an output schema (the SDK then renders its JSON form)."""
    return getattr(tool, "output_json_schema", None) is not None or (
        getattr(tool, "_output_type_adapter", None) is not None
    )
