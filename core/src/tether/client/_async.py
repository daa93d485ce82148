"""The asynchronous twin of :class:`tether.Client`, with the same method names.

In-process, each call runs the synchronous client in a worker thread (the store commits on
its own writer thread either way), so an event loop never blocks on a disk sync.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, TypeVar

from ..model import Lease
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

    @property
    def sync(self) -> Client:
        """The synchronous client underneath (same store, same actor)."""
        return self._sync

    async def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._sync.close()

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

    create_intent = _threaded(Client.create_intent)
    get_intent = _threaded(Client.get_intent)
    list_intents = _threaded(Client.list_intents)
    list_events = _threaded(Client.list_events)
    start = _threaded(Client.start)
    acknowledge = _threaded(Client.acknowledge)
    complete = _threaded(Client.complete)
    fail = _threaded(Client.fail)
    cancel = _threaded(Client.cancel)
    open_wait = _threaded(Client.open_wait)
    wait_for_human = _threaded(Client.wait_for_human)
    wait_for_tool = _threaded(Client.wait_for_tool)
    wait_for_agent = _threaded(Client.wait_for_agent)
    wait_for_time = _threaded(Client.wait_for_time)
    get_wait = _threaded(Client.get_wait)
    list_waits = _threaded(Client.list_waits)
    respond = _threaded(Client.respond)
    approve = _threaded(Client.approve)
    reject = _threaded(Client.reject)
    resume = _threaded(Client.resume)
    reply = _threaded(Client.reply)
    delegate = _threaded(Client.delegate)
    complete_tool = _threaded(Client.complete_tool)
    heartbeat_tool = _threaded(Client.heartbeat_tool)
    list_tasks = _threaded(Client.list_tasks)
    fire_due_timers = _threaded(Client.fire_due_timers)
    get_step = _threaded(Client.get_step)
    record_step = _threaded(Client.record_step)
    list_steps = _threaded(Client.list_steps)
    get_state = _threaded(Client.get_state)
    put_state = _threaded(Client.put_state)
    list_state = _threaded(Client.list_state)
    delete_state = _threaded(Client.delete_state)
    delete_state_prefix = _threaded(Client.delete_state_prefix)
    claim = _threaded(Client.claim)
    agent_feed = _threaded(Client.agent_feed)
    claim_intent = _threaded(Client.claim_intent)
    heartbeat = _threaded(Client.heartbeat)
    release = _threaded(Client.release)
    wait_for = _threaded(Client.wait_for)
    verify_audit = _threaded(Client.verify_audit)
    register_agent = _threaded(Client.register_agent)
    get_agent = _threaded(Client.get_agent)
    list_agents = _threaded(Client.list_agents)
    kill_agent = _threaded(Client.kill_agent)
    pause_agent = _threaded(Client.pause_agent)
    resume_agent = _threaded(Client.resume_agent)
    set_policy = _threaded(Client.set_policy)
    agent_heartbeat = _threaded(Client.agent_heartbeat)
    mesh_events = _threaded(Client.mesh_events)
    check = _threaded(Client.check)
    authorize_tool = _threaded(Client.authorize_tool)
    report_usage = _threaded(Client.report_usage)
    intent_usage = _threaded(Client.intent_usage)
    watch_agent = _threaded(Client.watch_agent)
