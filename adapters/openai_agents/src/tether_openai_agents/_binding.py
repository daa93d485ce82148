"""Which intent the running agent belongs to, for the model and tool wrappers deep in the SDK.

The adapter runs the SDK's ``Runner.run`` inside :func:`bound`; the wrappers find the intent,
its lease and the journal through a context variable (asyncio tasks and ``asyncio.to_thread``
copy it, so parallel tool calls and sync tool bodies see it too). Outside a durable run the
wrappers see ``None`` and behave exactly like the tools and models they wrap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tether
from tether import TurnUsage

from ._journal import RESULTS, Journal

T = TypeVar("T")
Price = Callable[[str, int, int], float]


class Abort(BaseException):
    """Carries an error out of the SDK's run loop unchanged.

    The SDK turns an ``Exception`` raised by a tool into a ``UserError`` (or a message for the
    model); a ``BaseException`` passes through, so a lost lease or a missing approval stops the
    run as itself. The runner unwraps it.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


@dataclass
class Binding:
    """One segment of a durable run: from a stored state (or the start) to the next stop."""

    client: tether.Client
    intent_id: str
    lease: tether.Lease
    journal: Journal
    approved: frozenset[str] = frozenset()
    """Keys of the approval waits a person answered "approved", read from tether's waits."""
    tool_waits: dict[str, tether.Wait] = field(default_factory=dict)
    """Closed tool waits of long external calls, by the SDK's call id."""
    price: Price | None = None
    """The cost in USD of a model turn, from the model's name and its tokens in and out."""
    guard: tether.AgentGuard | None = None
    """The agent's status and policy as this process sees them (kept current within the
    mesh's propagation bound): the boundaries ask the store only when it says no."""
    held: dict[str, Any] = field(default_factory=dict)
    """Tool results not written yet: they ride with the next write (see :mod:`._journal`)."""

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a blocking client call off the event loop; a tether error aborts the run."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except tether.TetherError as exc:
            raise Abort(exc) from exc

    async def record(
        self, key: str, value: Any, usage: TurnUsage | None = None, *, leased: bool = True
    ) -> Any:
        """Journal a finished step (first record wins) and return what is on record;
        ``usage`` is the model turn's spend, reported in the same write."""
        step = await self.call(
            self.client.record_step, self.intent_id, key, value,
            lease=self.lease if leased else None, usage=usage,
        )  # fmt: skip
        self.journal.written(key, step.result)
        return step.result

    def hold(self, key: str, value: Any) -> None:
        """A tool's result, kept for the next write (its call id is on record already)."""
        self.held[key] = value
        self.journal.entries[key] = value

    async def record_turn(self, key: str, response: Any, usage: TurnUsage | None) -> None:
        """Journal a model turn, with the tool results held since the last write."""
        held, self.held = self.held, {}
        value = {"tether_turn": 2, "response": response, "results": held} if held else response
        await self.record(key, value, usage)

    async def flush(self, *, stopped: bool = False) -> None:
        """Write the tool results still held: the segment ends here. After a stop (killed,
        paused, a spend cap) the lease is gone, so they are written without it; the first
        record of a key wins, so a worker that took the run over meanwhile loses nothing."""
        if not self.held:
            return
        held, self.held = self.held, {}
        await self.record(f"{RESULTS}{next(iter(held))}", held, leased=not stopped)


_current: ContextVar[Binding | None] = ContextVar("tether_openai_agents_binding", default=None)


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
