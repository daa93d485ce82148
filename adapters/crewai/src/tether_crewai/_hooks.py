"""crewai's hooks for one durable run: the mesh's boundaries, the tool journal, spend.

- before each task and flow method, and before each model turn: ``client.check`` (a killed
  or paused agent stops here; its intent is held, not failed);
- before each tool call: ``client.authorize_tool``. A tool outside the agent's scope is not
  run; the model gets the denial as the tool's result (an exception in a tool would be
  retried by crewai and then fed to the model as an error text anyway), and tether records
  a ``tool.denied`` event. With ``on_tool_denied="fail"`` the run fails instead;
- each tool call is journaled under (scope, task, tool, arguments, occurrence): when a
  resumed segment makes the same call again, the model gets the recorded result and the tool
  does not run twice;
- after each model turn: ``client.report_usage`` with the turn's tokens (from the LLM's own
  token counters) and its cost (the runner's ``price``), so spend caps apply.

crewai swallows exceptions raised by hooks; every hook here turns one into :class:`Abort`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import tether
from crewai.hooks.dispatch import (
    InterceptionPoint,
    get_scoped_hooks,
    register_scoped,
    scoped_hooks,
)
from crewai.llms.base_llm import BaseLLM

from ._binding import Abort, Binding, bound

Hook = Callable[[Any], Any]


def _guarded(fn: Callable[[Binding, Any], Any], binding: Binding) -> Hook:
    """A hook whose errors end the run instead of being swallowed by crewai."""

    @functools.wraps(fn)
    def hook(ctx: Any) -> Any:
        try:
            return fn(binding, ctx)
        except Abort:
            raise
        except Exception as exc:
            raise Abort(exc) from exc

    return hook


def _slot(value: object) -> tuple[int, int]:
    return threading.get_ident(), id(value)


def _task_label(binding: Binding, ctx: Any) -> str:
    task = getattr(ctx, "task", None)
    if binding.boundary is not None and task is not None:
        label = binding.boundary.label(task)
        if label is not None:
            return label
    if task is not None:
        return f"task-{task.key[:12]}"
    role = getattr(getattr(ctx, "agent", None), "role", None) or "agent"
    return "agent-" + hashlib.sha256(str(role).encode()).hexdigest()[:12]


def tool_key(binding: Binding, ctx: Any) -> str:
    """The journal key of this tool call: the same call made again in a resumed segment
    (same task, tool and arguments, same occurrence) finds the same key."""
    args = json.dumps(ctx.tool_input, sort_keys=True, default=str)
    digest = hashlib.sha256(args.encode()).hexdigest()[:16]
    base = f"{binding.scope}/tool/{_task_label(binding, ctx)}/{ctx.tool_name}/{digest}"
    with binding.lock:
        n = binding.occurrences[base]
        binding.occurrences[base] += 1
    return f"{base}/{n}"


def _before_tool(binding: Binding, ctx: Any) -> bool | None:
    slot = _slot(ctx.tool_input)
    try:
        binding.authorize_tool(ctx.tool_name)
    except tether.ToolDenied as denied:
        binding.denials.append({"tool": ctx.tool_name, "message": denied.message})
        if binding.on_tool_denied == "fail":
            raise Abort(denied) from denied
        binding.shown[slot] = (
            f"The tool '{ctx.tool_name}' was not run: {denied.message}. It is outside this "
            "agent's tool scope; do not call it again, and finish the task without it."
        )
        return False
    except tether.TetherError as exc:
        raise Abort(exc) from exc
    key = tool_key(binding, ctx)
    found, value = binding.recorded(key)
    if found:
        binding.shown[slot] = str(value.get("result") if isinstance(value, dict) else value)
        return False
    binding.pending_keys[slot] = key
    return None


def _after_tool(binding: Binding, ctx: Any) -> str | None:
    slot = _slot(ctx.tool_input)
    shown = binding.shown.pop(slot, None)
    key = binding.pending_keys.pop(slot, None)
    if key is not None:
        result = ctx.tool_result
        binding.record(
            key,
            {
                "tool": ctx.tool_name,
                "input": json.loads(json.dumps(ctx.tool_input, default=str)),
                "result": result if isinstance(result, str) else str(result),
            },
        )
        return None
    return shown  # (an empty recorded result is a result: "" replaces the blocked message)


def _before_model(binding: Binding, ctx: Any) -> None:
    binding.check()
    llm = ctx.llm
    if isinstance(llm, BaseLLM):
        totals = llm.get_token_usage_summary()
        binding.marks[_slot(llm)] = (totals.prompt_tokens, totals.completion_tokens)


def _after_model(binding: Binding, ctx: Any) -> None:
    llm = ctx.llm
    model = None
    tokens_in = tokens_out = 0
    if isinstance(llm, BaseLLM):
        model = llm.model
        totals = llm.get_token_usage_summary()
        before = binding.marks.pop(_slot(llm), (totals.prompt_tokens, totals.completion_tokens))
        tokens_in = max(totals.prompt_tokens - before[0], 0)
        tokens_out = max(totals.completion_tokens - before[1], 0)
    cost = binding.price(model or "", tokens_in, tokens_out) if binding.price else 0.0
    binding.call(
        binding.client.report_usage, binding.intent_id, model=model, tokens_in=tokens_in,
        tokens_out=tokens_out, cost_usd=cost, lease=binding.lease,
    )  # fmt: skip


def _before_step(binding: Binding, ctx: Any) -> Any:
    binding.check()
    if ctx.kind == "task" and binding.boundary is not None:
        return binding.boundary.before_task(ctx.task, ctx.payload)
    return None


def _after_step(binding: Binding, ctx: Any) -> None:
    if ctx.kind == "task" and binding.boundary is not None:
        binding.boundary.after_task(ctx.task, ctx.payload)


_HOOKS: dict[InterceptionPoint, Callable[[Binding, Any], Any]] = {
    InterceptionPoint.PRE_STEP: _before_step,
    InterceptionPoint.POST_STEP: _after_step,
    InterceptionPoint.PRE_TOOL_CALL: _before_tool,
    InterceptionPoint.POST_TOOL_CALL: _after_tool,
    InterceptionPoint.PRE_MODEL_CALL: _before_model,
    InterceptionPoint.POST_MODEL_CALL: _after_model,
}


@contextmanager
def installed(binding: Binding) -> Iterator[Binding]:
    """Run the block as one segment of ``binding``'s intent, with the hooks above added to
    whatever hooks are scoped to the block already."""
    scope = {point: get_scoped_hooks(point) for point in InterceptionPoint}
    with bound(binding), scoped_hooks(scope):
        for point, fn in _HOOKS.items():
            register_scoped(point, _guarded(fn, binding))
        yield binding
