"""Flow-method decorators that make a flow wait for a person or a long external call.

The method's body runs once; then the flow pauses through crewai's own
``HumanFeedbackPending`` (saved by the ``@persist`` backend, :class:`TetherFlowPersistence`).
:class:`tether_crewai.DurableFlow` opens the tether wait the decorator describes; when it is
answered, a worker resumes the flow with ``Flow.from_pending(...).resume(decision_json)``, and
the method's listeners get crewai's ``HumanFeedbackResult``: ``.output`` is the method's
return value (as JSON) and ``.feedback`` the decision as JSON (:meth:`Decision.from_feedback`).

Put the decorator below ``@start`` or ``@listen`` (not ``@router``: crewai resumes a paused
method by its own name's listeners, so a router's route would be lost)::

    @listen(draft)
    @wait_for_human("Publish this post?", assignees=["editor@example.com"])
    def review(self, draft: str) -> dict:
        return {"post": draft}

    @router(review)
    def route(self, result: HumanFeedbackResult) -> str:
        return Decision.from_feedback(result).outcome    # "approved", "rejected", "timeout"
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import tether
from crewai.flow import HumanFeedbackPending
from crewai.flow.async_feedback.types import PendingFeedbackContext

from ._values import to_json

F = TypeVar("F", bound=Callable[..., Any])

FlowText = str | Callable[[Any, Any], str]
"""A text, or ``(flow, method output) -> text``."""

FlowToolStarter = Callable[[str, Any], None]
"""Starts a long external call: gets the wait's callback token and the method's output (as
JSON). Keep it idempotent by token (it may run again if the process dies right after)."""

PAUSE_ATTRIBUTE = "_tether_pause"


@dataclass(frozen=True)
class Pause:
    """What a decorated flow method waits for."""

    kind: Literal["human", "tool"]
    title: FlowText | None = None
    description: FlowText | None = None
    assignees: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    allowed_outcomes: tuple[str, ...] = ("approved", "rejected")
    timeout: float | None = None
    on_timeout: Literal["resume", "fail"] = "resume"
    tool_name: str | None = None
    start: FlowToolStarter | None = None
    heartbeat_timeout: float | None = None

    def spec(self, flow: Any, method: str, output: Any) -> dict[str, Any]:
        """The wait to open, as JSON (it is stored with the pause)."""
        spec: dict[str, Any] = {
            "kind": self.kind,
            "timeout": self.timeout,
            "on_timeout": self.on_timeout,
        }
        if self.kind == "tool":
            spec.update(tool_name=self.tool_name, heartbeat_timeout=self.heartbeat_timeout)
            return spec
        shown = json.dumps(output, indent=2, default=str) if output is not None else ""
        task = tether.HumanTask(
            title=_text(self.title, flow, output, f"Review the result of {method}")[:255],
            description=_text(self.description, flow, output, shown)[:2000] or None,
            allowed_outcomes=list(self.allowed_outcomes),
            assignees=list(self.assignees),
            groups=list(self.groups),
        )
        spec["task"] = task.model_dump(mode="json")
        return spec


def _text(value: FlowText | None, flow: Any, output: Any, default: str) -> str:
    if value is None:
        return default
    return value(flow, output) if callable(value) else value


def _pause_after(pause: Pause) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        if not inspect.isfunction(fn):
            raise TypeError("put the tether decorator below @start or @listen")

        def suspend(flow: Any, output: Any) -> None:
            value = to_json(output)
            context = PendingFeedbackContext(
                flow_id=flow.flow_id,
                flow_class=f"{type(flow).__module__}.{type(flow).__qualname__}",
                method_name=fn.__name__,
                method_output=value,
                message=_text(pause.title, flow, value, fn.__name__),
                metadata={"tether": pause.spec(flow, fn.__name__, value)},
            )
            raise HumanFeedbackPending(context=context, callback_info={"tether": True})

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                suspend(self, await fn(self, *args, **kwargs))

            wrapper: Any = run_async
        else:

            @functools.wraps(fn)
            def run(self: Any, *args: Any, **kwargs: Any) -> Any:
                suspend(self, fn(self, *args, **kwargs))

            wrapper = run
        setattr(wrapper, PAUSE_ATTRIBUTE, pause)
        return wrapper  # type: ignore[no-any-return]

    return decorate


def wait_for_human(
    title: FlowText | None = None,
    *,
    description: FlowText | None = None,
    assignees: list[str] | None = None,
    groups: list[str] | None = None,
    allowed_outcomes: list[str] | None = None,
    timeout: float | None = None,
    on_timeout: Literal["resume", "fail"] = "resume",
) -> Callable[[F], F]:
    """After the method returns, ask a person (a tether human task) and pause the flow.

    The description defaults to the method's output. On a timeout the flow resumes with the
    outcome ``"timeout"`` (``on_timeout="fail"``: tether fails the run instead)."""
    return _pause_after(
        Pause(
            "human", title, description, tuple(assignees or ()), tuple(groups or ()),
            tuple(allowed_outcomes or ("approved", "rejected")), timeout, on_timeout,
        )
    )  # fmt: skip


def wait_for_tool(
    tool_name: str,
    start: FlowToolStarter,
    *,
    timeout: float | None = None,
    heartbeat_timeout: float | None = None,
    on_timeout: Literal["resume", "fail"] = "resume",
) -> Callable[[F], F]:
    """After the method returns, start a long external call and pause the flow until it
    posts its result (``client.complete_tool(token, result)``); the decision's ``result``
    holds it (outcome ``"completed"``, ``"failed"`` or ``"timeout"``)."""
    return _pause_after(
        Pause(
            "tool", timeout=timeout, on_timeout=on_timeout, tool_name=tool_name, start=start,
            heartbeat_timeout=heartbeat_timeout,
        )
    )  # fmt: skip


def pause_of(flow_class: type, method_name: str) -> Pause | None:
    """The pause a decorator put on ``flow_class.method_name``, if any."""
    found: Any = getattr(flow_class, method_name, None)
    for _ in range(10):
        if found is None:
            return None
        pause = getattr(found, PAUSE_ATTRIBUTE, None)
        if isinstance(pause, Pause):
            return pause
        found = getattr(found, "__wrapped__", None)
    return None
