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
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
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
        return await_only(_on_loop(future))
    return future.result()


_settling = threading.local()


@contextlib.contextmanager
def settling_together() -> Iterator[None]:
    """Around the completion of a batch's futures (on the thread that completes them): an
    event loop awaiting several of them is woken once, after the last, instead of once per
    future (each wake-up is a cross-thread call, about 25 us of CPU on a slow core)."""
    pending: dict[asyncio.AbstractEventLoop, list[_Settled]] = {}
    _settling.pending = pending
    try:
        yield
    finally:
        _settling.pending = None
        for loop, settled in pending.items():
            _wake(loop, settled)


_Settled = tuple["asyncio.Future[Any]", "concurrent.futures.Future[Any]"]


def _on_loop(future: concurrent.futures.Future[T]) -> asyncio.Future[T]:
    """``future`` as an asyncio future of the running loop (as ``asyncio.wrap_future``, with
    its wake-up deferred to the end of a :func:`settling_together` block)."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[T] = loop.create_future()

    def done(f: concurrent.futures.Future[Any]) -> None:
        pending = getattr(_settling, "pending", None)
        if pending is not None:
            pending.setdefault(loop, []).append((waiter, f))
        else:
            _wake(loop, [(waiter, f)])

    def abandoned(w: asyncio.Future[T]) -> None:
        if w.cancelled():  # the awaiting task was cancelled: a job not begun is dropped
            future.cancel()

    waiter.add_done_callback(abandoned)
    future.add_done_callback(done)
    return waiter


def _wake(loop: asyncio.AbstractEventLoop, settled: list[_Settled]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nothing awaits them now
        loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[_Settled]) -> None:
    for waiter, future in settled:
        if waiter.done():  # cancelled meanwhile
            continue
        if future.cancelled():
            waiter.cancel()
        elif (exc := future.exception()) is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(future.result())


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
