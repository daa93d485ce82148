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

from ._journal import Journal

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

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a blocking client call off the event loop; a tether error aborts the run."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except tether.TetherError as exc:
            raise Abort(exc) from exc

    async def record(self, key: str, value: Any, usage: TurnUsage | None = None) -> Any:
        """Journal a finished step (first record wins) and return what is on record;
        ``usage`` is the model turn's spend, reported in the same write."""
        step = await self.call(
            self.client.record_step, self.intent_id, key, value, lease=self.lease, usage=usage
        )
        self.journal.written(key, step.result)
        return step.result


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
