"""Marking tools: which calls wait for a person, which are long external calls.

Both work through the SDK's own suspend point, ``needs_approval``: the call interrupts the run,
the adapter stores the run state in tether and opens a wait keyed by the call's ``call_id``,
and the process may exit. What decides is tether's wait, answered by a person (or posted by
the external system with the wait's callback token), never anything in the stored state.

Example::

    @requires_approval(when=lambda args: args["amount"] > 1000, timeout=7 * 86400)
    @function_tool
    def pay(amount: int, payee: str) -> str:
        \"\"\"Pay an amount to a payee.\"\"\"
        return psp.pay(amount, payee)

    @wait_for_tool(timeout=3 * 86400)
    def kyc_check(customer_id: str) -> None:
        \"\"\"Check a customer's identity with the KYC provider (answers within days).\"\"\"
        kyc.submit(customer_id, callback=callback_token())
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, overload

from agents import FunctionTool, RunContextWrapper, function_tool
from tether import TIMEOUT, HumanTask, OnTimeout, Wait

from ._codec import canonical, render_result
from .errors import NotInToolStart

Predicate = Callable[[dict[str, Any]], bool | Awaitable[bool]]
"""Decides from a call's arguments whether it needs a person: a pure function of them."""


@dataclass(frozen=True)
class ApprovalRequest:
    """One tool call a person is asked to approve."""

    tool_name: str
    arguments: Any
    """The call's arguments, parsed from the model's JSON."""
    call_id: str
    agent_name: str
    intent_id: str


TaskFactory = Callable[[ApprovalRequest], HumanTask]


@dataclass(frozen=True)
class ApprovalPolicy:
    """How calls of one tool are put to a person (see :func:`requires_approval`)."""

    when: Predicate | None = None
    task: HumanTask | TaskFactory | None = None
    timeout: float | None = None
    on_timeout: OnTimeout | None = None
    rejection_message: Callable[[Wait], str] | None = None

    def human_task(self, request: ApprovalRequest) -> HumanTask:
        if isinstance(self.task, HumanTask):
            return self.task
        if self.task is not None:
            return self.task(request)
        return default_task(request)

    def message_for(self, wait: Wait, tool_name: str) -> str:
        """What the model reads when the call was not approved."""
        if self.rejection_message is not None:
            return self.rejection_message(wait)
        return default_rejection(wait, tool_name)


@dataclass(frozen=True)
class ExternalCall:
    """A long external call (see :func:`wait_for_tool`)."""

    timeout: float | None = None
    heartbeat_timeout: float | None = None
    on_timeout: OnTimeout | None = None


Policy = ApprovalPolicy | ExternalCall
_POLICY = "_tether_policy"


def policy_of(tool: FunctionTool) -> Policy | None:
    """The tether policy a tool was marked with, if any."""
    found = getattr(tool, _POLICY, None)
    return found if isinstance(found, (ApprovalPolicy, ExternalCall)) else None


def default_task(request: ApprovalRequest) -> HumanTask:
    args = canonical(request.arguments)
    return HumanTask(
        title=f"Approve {request.tool_name}?"[:255],
        description=(
            f"Agent {request.agent_name} asks to call {request.tool_name} with {args} "
            f"(call {request.call_id})."
        )[:2000],
    )


def default_rejection(wait: Wait, tool_name: str) -> str:
    if wait.outcome == TIMEOUT:
        return f"The approval request for {tool_name} timed out; the tool was not run."
    who = wait.resolved_by or "a person"
    said = f" with the comment: {wait.comment}" if wait.comment else ""
    return f"The call to {tool_name} was {wait.outcome} by {who}{said}. The tool was not run."


def external_output(wait: Wait, tool_name: str) -> str:
    """What the model reads as the result of a long external call."""
    if wait.outcome == "completed":
        return render_result(wait.result)
    if wait.outcome == "failed":
        error = wait.result.get("error") if isinstance(wait.result, dict) else wait.result
        return f"The external call {tool_name} failed: {error}"
    if wait.timed_out and wait.outcome == TIMEOUT:
        return f"The external call {tool_name} timed out: no result arrived before its deadline."
    tail = f": {render_result(wait.result)}" if wait.result is not None else ""
    return f"The external call {tool_name} ended with the outcome {wait.outcome}{tail}"


def _gate(when: Predicate | None) -> Callable[[RunContextWrapper[Any], dict[str, Any], str], Any]:
    async def needs_approval(ctx: RunContextWrapper[Any], params: dict[str, Any], _: str) -> bool:
        if when is None:
            return True
        decided = when(params)
        if inspect.isawaitable(decided):
            decided = await decided
        return bool(decided)

    return needs_approval


def _marked(tool: FunctionTool, policy: Policy, gate: Any) -> FunctionTool:
    """A copy of ``tool`` (the user's stays as it is) with tether's gate and policy."""
    marked = copy.copy(tool)
    marked.needs_approval = gate
    setattr(marked, _POLICY, policy)
    return marked


@overload
def requires_approval(
    tool: FunctionTool,
    /,
    *,
    when: Predicate | None = None,
    task: HumanTask | TaskFactory | None = None,
    timeout: float | None = None,
    on_timeout: OnTimeout | None = None,
    rejection_message: Callable[[Wait], str] | None = None,
) -> FunctionTool: ...


@overload
def requires_approval(
    tool: None = None,
    /,
    *,
    when: Predicate | None = None,
    task: HumanTask | TaskFactory | None = None,
    timeout: float | None = None,
    on_timeout: OnTimeout | None = None,
    rejection_message: Callable[[Wait], str] | None = None,
) -> Callable[[FunctionTool], FunctionTool]: ...


def requires_approval(
    tool: FunctionTool | None = None,
    /,
    *,
    when: Predicate | None = None,
    task: HumanTask | TaskFactory | None = None,
    timeout: float | None = None,
    on_timeout: OnTimeout | None = None,
    rejection_message: Callable[[Wait], str] | None = None,
) -> FunctionTool | Callable[[FunctionTool], FunctionTool]:
    """Make calls of ``tool`` wait for a person: always, or when ``when(arguments)`` is true.

    The person sees ``task`` (a :class:`tether.HumanTask`, or a function of the
    :class:`ApprovalRequest`; by default a task naming the tool and its arguments). An
    ``approved`` answer runs the tool; any other answer, or a timeout after ``timeout``
    seconds, is reported to the model instead of running it (a timeout as a timeout).

    Use it on a ``function_tool`` (as a decorator above ``@function_tool``, or called on one).
    """
    policy = ApprovalPolicy(
        when=when,
        task=task,
        timeout=timeout,
        on_timeout=on_timeout,
        rejection_message=rejection_message,
    )

    def mark(target: FunctionTool) -> FunctionTool:
        if not isinstance(target, FunctionTool):
            raise TypeError("requires_approval marks a FunctionTool; put @function_tool below it")
        return _marked(target, policy, _gate(when))

    return mark(tool) if tool is not None else mark


_callback_token: ContextVar[str | None] = ContextVar("tether_callback_token", default=None)


def callback_token() -> str:
    """The callback token of the tool wait whose call is starting; give it to the external
    system, which posts its result with ``client.complete_tool(token, result)``."""
    token = _callback_token.get()
    if token is None:
        raise NotInToolStart("callback_token() is only available in a wait_for_tool body")
    return token


@contextmanager
def starting_call(token: str) -> Iterator[None]:
    marker = _callback_token.set(token)
    try:
        yield
    finally:
        _callback_token.reset(marker)


@overload
def wait_for_tool(
    fn: Callable[..., Any],
    /,
    *,
    timeout: float | None = None,
    heartbeat_timeout: float | None = None,
    on_timeout: OnTimeout | None = None,
    name: str | None = None,
    description: str | None = None,
) -> FunctionTool: ...


@overload
def wait_for_tool(
    fn: None = None,
    /,
    *,
    timeout: float | None = None,
    heartbeat_timeout: float | None = None,
    on_timeout: OnTimeout | None = None,
    name: str | None = None,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def wait_for_tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    timeout: float | None = None,
    heartbeat_timeout: float | None = None,
    on_timeout: OnTimeout | None = None,
    name: str | None = None,
    description: str | None = None,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """A tool for a long external call: its body *starts* the call and hands the external
    system :func:`callback_token`; the run then waits (the process may exit) until the system
    posts the result with ``client.complete_tool(token, result)``, possibly days later. The
    model reads that result (text as it is, anything else as JSON), or the error posted with
    ``complete_tool(token, error=...)``, or that the call timed out after ``timeout`` seconds
    (``heartbeat_timeout``: the system must send ``client.heartbeat_tool(token)`` that often).

    The body's return value is not shown to the model; if the body raises, the call ends as
    failed with that error. Decorate the plain function (this makes the ``function_tool``).
    """
    policy = ExternalCall(timeout=timeout, heartbeat_timeout=heartbeat_timeout,
                          on_timeout=on_timeout)  # fmt: skip

    def make(target: Callable[..., Any]) -> FunctionTool:
        if isinstance(target, FunctionTool):
            raise TypeError("wait_for_tool makes the function_tool itself; decorate the function")
        # failure_error_function=None: an error in the body reaches the adapter, which ends the
        # call as failed, instead of becoming a message while the run waits for nothing.
        tool = function_tool(
            target, name_override=name, description_override=description,
            failure_error_function=None,
        )  # fmt: skip
        return _marked(tool, policy, True)

    return make(fn) if fn is not None else make
