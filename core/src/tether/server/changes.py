"""Waking long-polls and SSE streams when the store changes.

The store calls back after every commit made in this process; commits made by other
processes on the same store are noticed by a short poll. Waiters pass the version they saw,
so a change between reading and waiting is never missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..store import Store

POLL_SECONDS = 0.25


class ChangeFeed:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: set[asyncio.Future[None]] = set()
        self.version = 0
        self._unsubscribe: Callable[[], None] | None = None
        self.draining = False
        """The server is shutting down: waits end at once and long polls and streams answer
        with what they have (their clients reconnect, to another replica or this one
        restarted), so a rolling deploy is not held up for their whole window."""

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self._store.subscribe(self._from_store_thread)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _from_store_thread(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake)

    def drain(self) -> None:
        """Begin the shutdown (see :attr:`draining`); safe to call from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self.draining = True
        self._wake()

    def remaining(self, deadline: float) -> float:
        """Seconds left until ``deadline`` (on the loop's clock); none once draining."""
        if self.draining:
            return 0.0
        return deadline - asyncio.get_running_loop().time()

    def _wake(self) -> None:
        self.version += 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait(self, seen: int, timeout: float) -> int:
        """Return once the version moves past ``seen`` (or after ``timeout``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.version == seen and not self.draining:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:
                await asyncio.wait_for(waiter, min(remaining, POLL_SECONDS))
            except TimeoutError:
                self._waiters.discard(waiter)
                external = getattr(self._store, "external_change", None)
                if external is not None and external():
                    self._wake()
        return self.version

    async def wait_topic(self, topic: str, seen: int, timeout: float) -> None:
        """Return once the store's counter of ``topic`` moves past ``seen`` (or after
        ``timeout``): every commit wakes the feed, and only a change of that topic (or of
        unknown topics) ends the wait."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        version = self.version
        while self._store.topic_counter(topic) == seen and not self.draining:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            version = await self.wait(version, remaining)
