"""The asynchronous twin of :class:`tether.Client`, with the same method names.

On the embedded store, a call that only reads and writes runs on the event loop's own thread
(:mod:`tether.store.bridge`, as the server runs its routes): reads are local, and a write's
commit, made on the store's writer thread, is awaited, so the loop never blocks on a disk
sync and no worker thread is woken per call. Calls that wait (``claim`` with ``wait``,
``wait_for``, ``watch_agent``), lists and scans, and every call over HTTP or on PostgreSQL run
the synchronous client in a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, TypeVar

from ..engine import Engine
from ..model import Lease
from ..store.bridge import run_bridged
from ._sync import Client

P = ParamSpec("P")
T = TypeVar("T")


def _threaded(
    method: Callable[Concatenate[Client, P], T],
) -> Callable[Concatenate[AsyncClient, P], Awaitable[T]]:
    """Wrap a sync client method; the async one has the same name, arguments and docstring."""

    @functools.wraps(method)
    async def call(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        bound = functools.partial(method, self._sync, *args, **kwargs)
        return await loop.run_in_executor(self._pool, bound)

    return call


def _on_loop(
    method: Callable[Concatenate[Client, P], T],
) -> Callable[Concatenate[AsyncClient, P], Awaitable[T]]:
    """Wrap a sync client method that reads or writes a bounded amount and never waits: on
    the embedded store it runs on the event loop (bridged), elsewhere as :func:`_threaded`."""
    threaded = _threaded(method)

    @functools.wraps(method)
    async def call(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._bridged:
            return await run_bridged(method, self._sync, *args, **kwargs)
        return await threaded(self, *args, **kwargs)

    return call


class AsyncClient:
    """``tether.connect_async()``: every method of :class:`Client`, awaitable.

    Example::

        async with tether.connect_async() as client:
            intent = await client.create_intent("refund.request.v1", "agent://demo/refunds")
            done = await client.wait_for(intent.intent_id, timeout=60)
    """

    def __init__(self, sync: Client, *, max_threads: int = 64) -> None:
        self._sync = sync
        self._pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="tether-async")
        engine = sync._engine
        self._bridged = isinstance(engine, Engine) and engine.store.embedded

    @property
    def sync(self) -> Client:
        """The synchronous client underneath (same store, same actor)."""
        return self._sync

    async def close(self) -> None:
        """Wait for the calls still running on the pool's threads, off the event loop (a
        long poll may take its whole timeout), then close the client underneath."""
        await asyncio.to_thread(self._pool.shutdown, wait=True)
        await asyncio.to_thread(self._sync.close)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def step(
        self,
        intent_id: str,
        key: str,
        fn: Callable[[], Awaitable[T]],
        *,
        lease: Lease | None = None,
    ) -> T:
        """Await ``fn()`` once for this intent and key; afterwards return its recorded result."""
        done = await self.get_step(intent_id, key)
        if done is not None:
            return done.result  # type: ignore[no-any-return]
        value = await fn()
        recorded = await self.record_step(intent_id, key, value, lease=lease)
        return recorded.result  # type: ignore[no-any-return]

    create_intent = _on_loop(Client.create_intent)
    get_intent = _on_loop(Client.get_intent)
    list_intents = _threaded(Client.list_intents)
    list_events = _threaded(Client.list_events)
    start = _on_loop(Client.start)
    acknowledge = _on_loop(Client.acknowledge)
    complete = _on_loop(Client.complete)
    fail = _on_loop(Client.fail)
    cancel = _on_loop(Client.cancel)
    open_wait = _on_loop(Client.open_wait)
    wait_for_human = _on_loop(Client.wait_for_human)
    wait_for_tool = _on_loop(Client.wait_for_tool)
    wait_for_agent = _on_loop(Client.wait_for_agent)
    wait_for_time = _on_loop(Client.wait_for_time)
    get_wait = _on_loop(Client.get_wait)
    list_waits = _threaded(Client.list_waits)
    respond = _on_loop(Client.respond)
    approve = _on_loop(Client.approve)
    reject = _on_loop(Client.reject)
    resume = _on_loop(Client.resume)
    reply = _on_loop(Client.reply)
    delegate = _on_loop(Client.delegate)
    complete_tool = _on_loop(Client.complete_tool)
    heartbeat_tool = _on_loop(Client.heartbeat_tool)
    list_tasks = _threaded(Client.list_tasks)
    fire_due_timers = _threaded(Client.fire_due_timers)
    get_step = _on_loop(Client.get_step)
    record_step = _on_loop(Client.record_step)
    list_steps = _threaded(Client.list_steps)
    get_state = _on_loop(Client.get_state)
    put_state = _on_loop(Client.put_state)
    list_state = _threaded(Client.list_state)
    delete_state = _on_loop(Client.delete_state)
    delete_state_prefix = _threaded(Client.delete_state_prefix)
    claim = _threaded(Client.claim)
    agent_feed = _threaded(Client.agent_feed)
    claim_intent = _on_loop(Client.claim_intent)
    heartbeat = _on_loop(Client.heartbeat)
    release = _on_loop(Client.release)
    wait_for = _threaded(Client.wait_for)
    verify_audit = _threaded(Client.verify_audit)
    register_agent = _on_loop(Client.register_agent)
    get_agent = _on_loop(Client.get_agent)
    list_agents = _threaded(Client.list_agents)
    kill_agent = _threaded(Client.kill_agent)
    pause_agent = _threaded(Client.pause_agent)
    resume_agent = _threaded(Client.resume_agent)
    set_policy = _threaded(Client.set_policy)
    agent_heartbeat = _on_loop(Client.agent_heartbeat)
    mesh_events = _threaded(Client.mesh_events)
    check = _on_loop(Client.check)
    authorize_tool = _on_loop(Client.authorize_tool)
    report_usage = _on_loop(Client.report_usage)
    intent_usage = _on_loop(Client.intent_usage)
    watch_agent = _threaded(Client.watch_agent)
