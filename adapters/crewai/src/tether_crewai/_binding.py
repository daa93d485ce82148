"""Which intent the running crew or flow belongs to, for the hooks deep inside crewai.

A durable run installs crewai's hooks for its own execution only (crewai's scoped hooks) and
binds them to the intent, its lease and its journal through a context variable; crewai copies
the context into the threads and event loops it runs tasks and flow methods in. Outside a
durable run nothing of this is installed, and crewai behaves as it always does.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import tether

T = TypeVar("T")

PriceFn = Callable[[str, int, int], float]
"""``(model, tokens_in, tokens_out) -> cost in USD`` of one model turn."""

ToolDeniedPolicy = Literal["tell_model", "fail"]


class Abort(BaseException):
    """Carries an error out of crewai unchanged.

    crewai catches ``Exception`` around hooks (fail-open), tools (retried, then fed to the
    model) and tasks; a ``BaseException`` passes through all of them, so a stopped agent or a
    lost lease ends the run as itself. The runner unwraps it.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


class StepBoundary(Protocol):
    """What a crew run does at its task boundaries (gates, the task journal)."""

    def label(self, task: Any) -> str | None:
        """The task's part of a tool call's journal key (None: not a task of this crew)."""

    def before_task(self, task: Any, context: str | None) -> str | None:
        """At the task's start: stop, or return the context the task should get instead."""

    def after_task(self, task: Any, output: Any) -> None:
        """After the task's output is final: journal it (and stop, for a review)."""


@dataclass
class Binding:
    """One segment of a durable run: from where tether says it stands to its next stop."""

    client: tether.Client
    intent_id: str
    lease: tether.Lease
    scope: str
    """Prefix of this segment's journal keys (tool calls of a resumed flow segment are
    keyed under the pause they resume from)."""
    steps: dict[str, Any]
    """The journal as read when the segment began, plus what it recorded since."""
    on_tool_denied: ToolDeniedPolicy = "tell_model"
    price: PriceFn | None = None
    boundary: StepBoundary | None = None
    guard: tether.AgentGuard | None = None
    """The agent's live view in this process: a boundary asks the store only when it says
    the agent is stopped or the tool out of scope (the store then decides and records it)."""
    occurrences: Counter[str] = field(default_factory=Counter)
    shown: dict[tuple[int, int], str] = field(default_factory=dict)
    """What the model sees instead of running a tool (a recorded result, a denial), by
    (thread, id of the call's input), from the before-hook to the after-hook."""
    pending_keys: dict[tuple[int, int], str] = field(default_factory=dict)
    """Journal keys of tool calls that run, from the before-hook to the after-hook."""
    marks: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    """Token totals of an LLM before a model turn, by (thread, id of the LLM)."""
    denials: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call the client; a tether error aborts the run (crewai would swallow it)."""
        try:
            return fn(*args, **kwargs)
        except tether.TetherError as exc:
            raise Abort(exc) from exc

    def check(self) -> None:
        """A boundary: stop here if the agent was killed or paused. The guard answers while
        the agent is active; an intent canceled meanwhile shows at the next write."""
        if self.guard is not None and self.guard.allows():
            return
        self.call(self.client.check, self.intent_id, lease=self.lease)

    def authorize_tool(self, tool: str) -> None:
        """Before a tool runs: ``tether.ToolDenied`` if the agent's scope leaves it out (on
        the intent's trail), a stop if the agent was killed or paused."""
        if self.guard is not None and self.guard.allows(tool):
            return
        self.client.authorize_tool(self.intent_id, tool, lease=self.lease)

    def record(self, key: str, value: Any) -> Any:
        """Journal a finished step (the first record wins) and return what is on record."""
        step = self.call(self.client.record_step, self.intent_id, key, value, lease=self.lease)
        with self.lock:
            self.steps[key] = step.result
        return step.result

    def recorded(self, key: str) -> tuple[bool, Any]:
        with self.lock:
            if key in self.steps:
                return True, self.steps[key]
        return False, None


_current: ContextVar[Binding | None] = ContextVar("tether_crewai_binding", default=None)


def current() -> Binding | None:
    """The durable run this code runs in, if any."""
    return _current.get()


@contextmanager
def bound(binding: Binding) -> Iterator[Binding]:
    token = _current.set(binding)
    try:
        yield binding
    finally:
        _current.reset(token)
