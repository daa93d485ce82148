"""Task wrappers: a crew's tasks that need a person (or a long external call) before they run,
or a person's review after.

Each wrapper marks the task and returns it, so a crew is written as before::

    publish = requires_approval(
        Task(description="Publish the post", expected_output="the URL", agent=publisher),
        title="Publish this post?",
        assignees=["editor@example.com"],
    )
    draft = requires_review(Task(description="Draft the post", ...), groups=["editors"])

Run the crew through :class:`tether_crewai.DurableCrew`: when it reaches a gated task, the
run suspends (the process may exit) until the wait is answered; the gated task then gets the
decision and the person's comment in its context, and :func:`decision_of` gives it to code.
A rejection and a timeout are distinct outcomes, each with its own policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import tether
from crewai import Task

from ._decision import Decision

GateKind = Literal["approval", "review", "tool"]
ApprovalPolicy = Literal["stop", "skip", "run"]
"""After a rejection (or a timeout) of an approval: ``stop`` ends the crew before the task
(the intent completes with the decision as its result), ``skip`` does not run the task (its
output is a note of the decision, which later tasks see) and goes on, ``run`` runs it anyway
with the decision in its context."""
TimeoutPolicy = Literal["stop", "skip", "run", "fail"]
"""As :data:`ApprovalPolicy`, and ``fail``: tether fails the intent when the deadline passes."""
ReviewPolicy = Literal["revise", "stop", "accept"]
"""After a reviewer rejects an output: ``revise`` runs the task again with the reviewer's
comment and its previous output in its context (up to ``max_rounds`` reviews), ``stop`` ends
the crew, ``accept`` keeps the output anyway."""
ReviewTimeoutPolicy = Literal["accept", "stop", "fail"]

ToolStarter = Callable[[str, Task], None]
"""Starts a long external call: gets the wait's callback token (post the result with it) and
the task. It may run again if the process dies right after the wait opened: keep it
idempotent by token."""

Text = str | Callable[[Task], str]

_ATTRIBUTE = "_tether_gate"
_DECISION = "_tether_decision"


@dataclass(frozen=True)
class Gate:
    """What a gated task waits for, and what each outcome does."""

    kind: GateKind
    title: Text | None = None
    description: Text | None = None
    assignees: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    allowed_outcomes: tuple[str, ...] = ("approved", "rejected")
    timeout: float | None = None
    on_reject: str = "stop"
    on_timeout: str = "stop"
    max_rounds: int = 3
    tool_name: str | None = None
    start: ToolStarter | None = None
    heartbeat_timeout: float | None = None

    def human_task(self, task: Task, output: str | None = None) -> tether.HumanTask:
        """The person's task: the gate's title and description, else the task's own."""
        name = task.name or task.description
        if self.kind == "review":
            title = f"Review the output of: {name}"
            default = f"Task: {task.description}\n\nOutput:\n{output or ''}"
            task_type = tether.TaskType.REVIEW
        else:
            title = f"Approve the task: {name}"
            default = f"Task: {task.description}\n\nExpected output: {task.expected_output}"
            task_type = tether.TaskType.APPROVAL
        return tether.HumanTask(
            title=_text(self.title, task, title)[:255],
            description=_text(self.description, task, default)[:2000],
            task_type=task_type,
            allowed_outcomes=list(self.allowed_outcomes),
            assignees=list(self.assignees),
            groups=list(self.groups),
        )

    def timeout_spec(self) -> tether.OnTimeout:
        return tether.OnTimeout(action="fail" if self.on_timeout == "fail" else "resume")

    def policy(self, decision: Decision) -> str:
        """What this decision does: ``run``/``accept`` when approved (or a tool completed),
        else the rejection or timeout policy."""
        if decision.timed_out:
            return self.on_timeout
        if decision.outcome in ("approved", "completed"):
            return "accept" if self.kind == "review" else "run"
        return self.on_reject


def _text(value: Text | None, task: Task, default: str) -> str:
    if value is None:
        return default
    return value(task) if callable(value) else value


def _mark(task: Task, gate: Gate) -> Task:
    if not isinstance(task, Task):
        raise TypeError(f"expected a crewai Task, got {type(task).__name__}")
    if task.async_execution:
        raise ValueError("a gated task cannot run with async_execution=True")
    setattr(task, _ATTRIBUTE, gate)
    return task


def requires_approval(
    task: Task,
    *,
    title: Text | None = None,
    description: Text | None = None,
    assignees: list[str] | None = None,
    groups: list[str] | None = None,
    timeout: float | None = None,
    on_reject: ApprovalPolicy = "stop",
    on_timeout: TimeoutPolicy = "stop",
) -> Task:
    """Ask a person before ``task`` runs. Approved, the task runs with the decision (and the
    comment) in its context; rejected or timed out, ``on_reject``/``on_timeout`` decide."""
    return _mark(
        task,
        Gate(
            "approval", title, description, tuple(assignees or ()), tuple(groups or ()),
            timeout=timeout, on_reject=on_reject, on_timeout=on_timeout,
        ),
    )  # fmt: skip


def requires_review(
    task: Task,
    *,
    title: Text | None = None,
    description: Text | None = None,
    assignees: list[str] | None = None,
    groups: list[str] | None = None,
    timeout: float | None = None,
    on_reject: ReviewPolicy = "revise",
    on_timeout: ReviewTimeoutPolicy = "stop",
    max_rounds: int = 3,
) -> Task:
    """Ask a person to review ``task``'s output before the crew goes on. Approved, the
    output stands; rejected, ``on_reject`` decides (by default the task runs again with the
    comment, and is reviewed again, ``max_rounds`` times at most)."""
    if max_rounds < 1:
        raise ValueError("max_rounds must be at least 1")
    return _mark(
        task,
        Gate(
            "review", title, description, tuple(assignees or ()), tuple(groups or ()),
            timeout=timeout, on_reject=on_reject, on_timeout=on_timeout, max_rounds=max_rounds,
        ),
    )  # fmt: skip


def awaits_tool(
    task: Task,
    tool_name: str,
    start: ToolStarter,
    *,
    timeout: float | None = None,
    heartbeat_timeout: float | None = None,
    on_failure: ApprovalPolicy = "run",
    on_timeout: TimeoutPolicy = "stop",
) -> Task:
    """Start a long external call before ``task`` runs and suspend until it posts its result
    (``client.complete_tool(token, result)``); the task then gets the result in its context.
    A failed call goes by ``on_failure``, a timeout by ``on_timeout``."""
    return _mark(
        task,
        Gate(
            "tool", timeout=timeout, on_reject=on_failure, on_timeout=on_timeout,
            tool_name=tool_name, start=start, heartbeat_timeout=heartbeat_timeout,
        ),
    )  # fmt: skip


def gate_of(task: Task) -> Gate | None:
    """The gate a wrapper put on ``task``, if any."""
    gate = getattr(task, _ATTRIBUTE, None)
    return gate if isinstance(gate, Gate) else None


def decision_of(task: Task) -> Decision | None:
    """The decision the gated ``task`` runs with (in its callbacks, guardrails, tools)."""
    decision = getattr(task, _DECISION, None)
    return decision if isinstance(decision, Decision) else None


def set_decision(task: Task, decision: Decision) -> None:
    setattr(task, _DECISION, decision)
