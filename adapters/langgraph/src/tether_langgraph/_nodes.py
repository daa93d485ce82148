"""Decorators that make an existing node wait before its body runs.

The decorated function keeps its signature (less the injected parameter), so LangGraph
still passes ``config``, ``runtime``, ``writer``, ``store`` and the rest; sync nodes stay
sync and async nodes async (LangGraph chooses how to call a node by that). Nothing here
catches LangGraph's interrupt: it travels up to the graph untouched.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from tether import HumanTask, OnTimeout

from ._binding import binding_of, current_config
from ._waits import (
    Decision,
    ToolResult,
    aawait_request,
    await_request,
    decision_of,
    human_request,
    tool_request,
    tool_result_of,
)

F = TypeVar("F", bound=Callable[..., Any])
TaskSpec = HumanTask | str | Callable[[Any], HumanTask | str]


def _state_of(fn_sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        return args[0]
    first = next(iter(fn_sig.parameters), None)
    return kwargs.get(first) if first is not None else None


def _inject(fn: Callable[..., Any], name: str, decorator: str) -> inspect.Signature:
    """The signature LangGraph should see: the node's own, without ``name``."""
    sig = inspect.signature(fn)
    if name not in sig.parameters:
        raise TypeError(
            f"@{decorator} passes the outcome to the node as a parameter named {name!r}: "
            f"add it to {fn.__qualname__}'s parameters"
        )
    return sig.replace(parameters=[p for p in sig.parameters.values() if p.name != name])


def _wrap(
    fn: F,
    name: str,
    decorator: str,
    sync_outcome: Callable[[Any], Any],
    async_outcome: Callable[[Any], Any],
) -> F:
    public = _inject(fn, name, decorator)
    full = inspect.signature(fn)
    wrapper: Callable[..., Any]
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            outcome = await async_outcome(_state_of(full, args, kwargs))
            return await fn(*args, **{name: outcome}, **kwargs)

    else:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outcome = sync_outcome(_state_of(full, args, kwargs))
            return fn(*args, **{name: outcome}, **kwargs)

    wrapper.__signature__ = public  # type: ignore[attr-defined]
    wrapper.__annotations__ = {k: v for k, v in fn.__annotations__.items() if k != name}
    return wrapper  # type: ignore[return-value]


def requires_approval(
    task: TaskSpec,
    *,
    when: Callable[[Any], bool] | None = None,
    key: str = "approval",
    timeout: float | None = None,
    on_timeout: OnTimeout | None = None,
) -> Callable[[F], F]:
    """Ask a person before the node's body runs; the body gets their answer as ``decision``.

    ``task`` is a :class:`tether.HumanTask`, a title, or a function of the node's input
    state returning either. With ``when`` (a function of the state), a person is asked only
    when it is true; otherwise the body runs at once with an automatic approval
    (:attr:`Decision.automatic`). Rejection and timeout are distinct outcomes.

    Example::

        @requires_approval(
            lambda s: HumanTask(title=f"Refund {s['amount']} EUR?", assignees=["lead@x.com"]),
            when=lambda s: s["amount"] > 100,
            timeout=3 * 24 * 3600,
        )
        def refund(state: State, decision: Decision) -> dict:
            if decision.approved:
                return {"status": "refunded"}
            return {"status": "timed out" if decision.timed_out else "rejected"}
    """

    def describe(state: Any) -> HumanTask | str:
        return task(state) if callable(task) else task

    def needed(state: Any) -> bool:
        return when is None or bool(when(state))

    def decide(state: Any) -> Decision:
        if not needed(state):
            return Decision("approved", "no approval required", automatic=True)
        config = current_config()
        request = human_request(config, describe(state), key, timeout, on_timeout)
        return decision_of(await_request(request, binding_of(config)))

    async def adecide(state: Any) -> Decision:
        if not needed(state):
            return Decision("approved", "no approval required", automatic=True)
        config = current_config()
        request = human_request(config, describe(state), key, timeout, on_timeout)
        return decision_of(await aawait_request(request, binding_of(config)))

    def decorate(fn: F) -> F:
        return _wrap(fn, "decision", "requires_approval", decide, adecide)

    return decorate


def awaits_tool(
    tool_name: str,
    start: Callable[[Any, str], None],
    *,
    key: str | None = None,
    timeout: float | None = None,
    heartbeat_timeout: float | None = None,
    on_timeout: OnTimeout | None = None,
) -> Callable[[F], F]:
    """Start a long tool call before the node's body runs and suspend until it posts its
    result; the body gets a :class:`ToolResult` as ``tool_result``.

    ``start(state, token)`` hands the wait's callback token to the tool (once, after tether
    opened the wait); the tool posts with ``client.complete_tool(token, result)``.

    Example::

        @awaits_tool("ocr", lambda s, token: ocr.submit(s["pdf"], callback_token=token),
                     timeout=3600)
        def read_invoice(state: State, tool_result: ToolResult) -> dict:
            return {"text": tool_result.result} if tool_result.ok else {"text": None}
    """

    def prepare(state: Any) -> Any:
        config = current_config()
        binding = binding_of(config)
        request = tool_request(config, tool_name, key, timeout, heartbeat_timeout, on_timeout)
        if binding is not None:
            binding.register_starter(request.key, lambda token: start(state, token))
        return request, binding

    def run(state: Any) -> ToolResult:
        request, binding = prepare(state)
        return tool_result_of(await_request(request, binding))

    async def arun(state: Any) -> ToolResult:
        request, binding = prepare(state)
        return tool_result_of(await aawait_request(request, binding))

    def decorate(fn: F) -> F:
        return _wrap(fn, "tool_result", "awaits_tool", run, arun)

    return decorate
