"""The bridge that runs the engine on an event loop: writes are awaited, not blocked on."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator

import pytest
import tether
from tether.store.bridge import await_only, bridged, run_bridged

AGENT = "agent://test/refunds"
TRACE: contextvars.ContextVar[str] = contextvars.ContextVar("trace", default="none")


def test_a_bridged_call_returns_raises_and_sees_the_callers_context() -> None:
    def inner(x: int) -> tuple[int, str, bool]:
        value = await_only(asyncio.sleep(0, result=x + 1))
        return value, TRACE.get(), bridged()

    def fails() -> None:
        await_only(asyncio.sleep(0))
        raise KeyError("inside")

    async def main() -> None:
        TRACE.set("t-1")
        assert await run_bridged(inner, 41) == (42, "t-1", True)
        with pytest.raises(KeyError, match="inside"):
            await run_bridged(fails)
        assert not bridged()

    asyncio.run(main())
    never = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="outside run_bridged"):
        await_only(never)
    never.close()


@contextlib.contextmanager
def _writer_held(db_url: str) -> Iterator[tuple[tether.Client, str, threading.Event]]:
    """A client, an intent, and the store's writer thread held inside a write until the
    yielded event is set (it is set on the way out, whatever happens)."""
    holding, release = threading.Event(), threading.Event()

    def hold(tx: object) -> None:
        holding.set()
        release.wait(10)

    with tether.connect(db_url) as client:
        intent = client.create_intent("refund.request.v1", AGENT)
        client.engine.store.submit(hold)
        assert holding.wait(5)
        try:
            yield client, intent.intent_id, release
        finally:
            release.set()


def test_a_bridged_write_leaves_the_event_loop_free(db_url: str) -> None:
    """While a write waits for the writer, the loop runs other work; then the write lands."""
    with _writer_held(db_url) as (client, intent_id, release):

        async def main() -> None:
            write = asyncio.ensure_future(run_bridged(client.engine.record_step, intent_id, "a", 1))
            ticks = 0
            for _ in range(5):  # the loop keeps turning while the write is queued
                await asyncio.sleep(0.01)
                ticks += 1
            assert not write.done() and ticks == 5
            release.set()
            step = await asyncio.wait_for(write, 5)
            assert step.key == "a" and step.result == 1

        asyncio.run(main())
        assert client.get_step(intent_id, "a") is not None
        assert client.verify_audit(intent_id).ok


def test_a_canceled_bridged_write_that_had_not_run_is_never_applied(db_url: str) -> None:
    with _writer_held(db_url) as (client, intent_id, release):

        async def main() -> None:
            write = asyncio.ensure_future(run_bridged(client.engine.record_step, intent_id, "b", 2))
            await asyncio.sleep(0.02)
            write.cancel()
            with pytest.raises(asyncio.CancelledError):
                await write

        asyncio.run(main())
        release.set()
        client.record_step(intent_id, "c", 3)  # the writer went on past the dropped job
        assert client.get_step(intent_id, "b") is None
        assert [s.key for s in client.list_steps(intent_id)] == ["c"]


def test_the_writes_of_one_batch_wake_their_event_loop_once(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bridged writes committed together are settled by one wake-up of their loop, each with
    its own outcome: a refused write raises, the others return their steps."""
    with _writer_held(db_url) as (client, intent_id, release):

        async def main() -> list[object]:
            loop = asyncio.get_running_loop()
            wakes: list[object] = []
            real = loop.call_soon_threadsafe

            def counted(callback: Callable[..., object], *args: object) -> asyncio.Handle:
                wakes.append(callback)
                return real(callback, *args)

            monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
            writes = [
                asyncio.ensure_future(run_bridged(client.engine.record_step, intent_id, key, n))
                for n, key in enumerate(["a", "b", "", "c"])  # "": not a step key
            ]
            await asyncio.sleep(0.05)  # all four queue behind the held write
            release.set()
            outcomes = await asyncio.gather(*writes, return_exceptions=True)
            assert len(wakes) == 1
            return outcomes

        a, b, refused, c = asyncio.run(main())
        assert isinstance(refused, tether.InvalidRequest)
        assert [(s.key, s.result) for s in (a, b, c)] == [("a", 0), ("b", 1), ("c", 3)]  # type: ignore[union-attr]
        assert [s.key for s in client.list_steps(intent_id)] == ["a", "b", "c"]


def test_waiting_for_a_change_is_refused_on_the_event_loop(db_url: str) -> None:
    """Only the commit may be awaited: anything else that blocks would stop the loop."""
    with tether.connect(db_url) as client:

        async def main() -> None:
            with pytest.raises(RuntimeError, match="block the event loop"):
                await run_bridged(client.engine.store.wait_for_change, 0, 1.0)

        asyncio.run(main())
