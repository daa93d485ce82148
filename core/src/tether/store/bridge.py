"""Run the synchronous engine from an event loop without a worker thread.

The engine is written as plain functions that call ``store.write`` and wait for the commit.
On the embedded store the wait is the only blocking part: reads are local and fast, and the
commit happens on the store's writer thread. :func:`run_bridged` runs such a function in a
greenlet on the event loop's own thread; when it reaches ``store.write``, the store hands its
commit future to :func:`await_only`, which suspends the greenlet, lets the loop await the
future, and switches back with its result. This is how SQLAlchemy runs its synchronous ORM
over asyncio drivers.

It saves what a worker thread costs per call: the hop to the threadpool and back, and the
contention of many threads for the interpreter lock while the writer commits (on a slow core
the hop alone costs about 0.2 ms per request, more than an engine transition).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

import greenlet

P = ParamSpec("P")
T = TypeVar("T")


class _Bridged(greenlet.greenlet):
    """A greenlet that runs one synchronous call for an event loop (its parent)."""

    def __init__(self, fn: Callable[..., Any], driver: greenlet.greenlet) -> None:
        super().__init__(fn, driver)
        self.gr_context = driver.gr_context  # the caller's context variables (trace spans)


def bridged() -> bool:
    """Whether the caller runs under :func:`run_bridged` (and may :func:`await_only`)."""
    return isinstance(greenlet.getcurrent(), _Bridged)


def await_only(awaitable: Awaitable[T]) -> T:
    """From inside :func:`run_bridged`: suspend until the event loop has awaited ``awaitable``;
    return its result or raise its exception."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged) or current.parent is None:
        raise RuntimeError("await_only() called outside run_bridged()")
    return cast(T, current.parent.switch(awaitable))


def wait_future(future: concurrent.futures.Future[T]) -> T:
    """Wait for ``future``: from a bridged call by awaiting it on the event loop, otherwise by
    blocking the calling thread."""
    if bridged() and not future.done():
        return await_only(asyncio.wrap_future(future))
    return future.result()


def pause(seconds: float) -> None:
    """Sleep: from a bridged call by awaiting ``asyncio.sleep`` (the loop serves the others
    meanwhile), otherwise by blocking the calling thread."""
    if bridged():
        await_only(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)


async def run_bridged(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call ``fn(*args, **kwargs)`` on this event loop's thread; each :func:`await_only`
    inside it is awaited here. ``fn`` must not block otherwise (no sleeps, no network): use
    it for work on the embedded store only."""
    child = _Bridged(fn, greenlet.getcurrent())
    pending = child.switch(*args, **kwargs)
    while not child.dead:
        try:
            value = await pending
        except BaseException as exc:  # cancellation included: it unwinds the call
            pending = child.throw(exc)
        else:
            pending = child.switch(value)
    if isinstance(pending, greenlet.GreenletExit):  # greenlet ends the child quietly on it;
        raise pending  # the caller must see it raised, not returned
    return cast(T, pending)
