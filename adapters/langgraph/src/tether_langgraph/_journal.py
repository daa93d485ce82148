"""Side effects that happen once: tool calls and steps recorded in tether's steps journal.

A node re-runs from its start when its run resumes or is taken over after a crash. A
finished tool call or step is then found in the journal (keyed by the node's task and the
call) and its recorded result returned, so the side effect is not repeated. Outside a tether
run these helpers simply call through.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command
from tether import ToolDenied

from . import _boundaries
from ._binding import RunBinding, binding_of, current_config, in_tool_call, scoped_key

T = TypeVar("T")
ToolOutput = ToolMessage | Command[Any]

_serde = JsonPlusSerializer()


def _pack(value: ToolOutput) -> dict[str, Any]:
    kind, data = _serde.dumps_typed(value)
    return {"v": 1, "typed": [kind, base64.b64encode(data).decode("ascii")]}


def _unpack(recorded: dict[str, Any]) -> ToolOutput:
    kind, text = recorded["typed"]
    value: ToolOutput = _serde.loads_typed((kind, base64.b64decode(text)))
    return value


def _call_key(request: ToolCallRequest) -> str:
    call = request.tool_call
    return scoped_key(request.runtime.config, "tool", call.get("id") or call["name"])


def _recorded(binding: RunBinding, key: str) -> ToolOutput | None:
    done = binding.client.get_step(binding.intent_id, key)
    return _unpack(done.result) if done is not None else None


def _record(binding: RunBinding, key: str, output: ToolOutput) -> ToolOutput:
    # A tool that failed is not recorded: it runs again on resume, as a retry.
    if isinstance(output, ToolMessage) and output.status == "error":
        return output
    step = binding.client.record_step(binding.intent_id, key, _pack(output), lease=binding.lease())
    return _unpack(step.result)  # the first record wins, also against a racing attempt


def journal_tool_call(
    request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolOutput]
) -> ToolOutput:
    """A ``ToolNode`` ``wrap_tool_call`` hook: each tool call runs once per run.

    Every call of a step with several tool calls is journaled on its own (by its tool call
    id), so on resume the calls that finished are not made again.

    Example::

        tools = ToolNode([charge_card, send_email], wrap_tool_call=journal_tool_call,
                         awrap_tool_call=ajournal_tool_call)
    """
    binding = binding_of(request.runtime.config)
    if binding is None:
        return execute(request)
    key = _call_key(request)
    done = _recorded(binding, key)
    if done is not None:
        return done
    try:
        _boundaries.tool_call(binding, request.tool_call["name"])
    except ToolDenied as denied:
        return _denied(request, denied)
    with in_tool_call(request.tool_call.get("id")):
        output = execute(request)
    return _record(binding, key, output)


async def ajournal_tool_call(
    request: ToolCallRequest, execute: Callable[[ToolCallRequest], Awaitable[ToolOutput]]
) -> ToolOutput:
    """:func:`journal_tool_call` for ``ToolNode``'s async path (``awrap_tool_call``)."""
    binding = binding_of(request.runtime.config)
    if binding is None:
        return await execute(request)
    key = _call_key(request)
    done = await asyncio.to_thread(_recorded, binding, key)
    if done is not None:
        return done
    try:
        await asyncio.to_thread(_boundaries.tool_call, binding, request.tool_call["name"])
    except ToolDenied as denied:
        return _denied(request, denied)
    with in_tool_call(request.tool_call.get("id")):
        output = await execute(request)
    return await asyncio.to_thread(_record, binding, key, output)


def _denied(request: ToolCallRequest, denied: ToolDenied) -> ToolMessage:
    """The model hears that the tool is not allowed (the denial is on the intent's trail)."""
    name = request.tool_call["name"]
    return ToolMessage(
        content=f"The tool {name!r} is not allowed for this agent ({denied.message}).",
        tool_call_id=request.tool_call["id"] or "",
        name=name,
        status="error",
    )


def tool_node(tools: Sequence[BaseTool | Callable[..., Any]], **kwargs: Any) -> ToolNode:
    """LangGraph's ``ToolNode`` with every tool call journaled (see
    :func:`journal_tool_call`); ``kwargs`` go to ``ToolNode``."""
    return ToolNode(
        tools, wrap_tool_call=journal_tool_call, awrap_tool_call=ajournal_tool_call, **kwargs
    )


def step(key: str, fn: Callable[[], T], *, tool: str | None = None) -> T:
    """Run ``fn`` once per run for this node and ``key``; a re-run gets the recorded result.

    The result must be JSON (it is stored in the journal). With ``tool``, the call is a tool
    call for tether's policy (see :mod:`tether_langgraph._boundaries`).

    Example::

        def charge(state: State) -> dict:
            receipt = step("charge", lambda: psp.charge(state["order"], state["amount"]))
            return {"receipt": receipt}
    """
    config = current_config()
    binding = binding_of(config)
    if binding is None:
        return fn()
    full = scoped_key(config, "step", key)
    done = binding.client.get_step(binding.intent_id, full)
    if done is not None:
        return done.result  # type: ignore[no-any-return]
    if tool is not None:
        _boundaries.tool_call(binding, tool)
    value = fn()
    recorded = binding.client.record_step(binding.intent_id, full, value, lease=binding.lease())
    return recorded.result  # type: ignore[no-any-return]


async def astep(key: str, fn: Callable[[], Awaitable[T]], *, tool: str | None = None) -> T:
    """:func:`step` for async nodes: ``fn`` returns an awaitable."""
    config = current_config()
    binding = binding_of(config)
    if binding is None:
        return await fn()
    full = scoped_key(config, "step", key)
    done = await asyncio.to_thread(binding.client.get_step, binding.intent_id, full)
    if done is not None:
        return done.result  # type: ignore[no-any-return]
    if tool is not None:
        await asyncio.to_thread(_boundaries.tool_call, binding, tool)
    value = await fn()
    recorded = await asyncio.to_thread(
        lambda: binding.client.record_step(binding.intent_id, full, value, lease=binding.lease())
    )
    return recorded.result  # type: ignore[no-any-return]
