"""The async client: same names, awaitable, and wait_for wakes when the intent ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import tether
from tether import HumanTask, Principal, Status


def test_async_lifecycle(store_url: str) -> None:
    async def main() -> None:
        async with tether.connect_async(store_url) as client:
            intent = await client.create_intent("refund.request.v1", "agent://test/a", {"n": 1})
            lease = await client.start(intent.intent_id)
            await client.wait_for_human(intent.intent_id, HumanTask(title="ok?"), lease=lease)
            waiter = asyncio.create_task(client.wait_for(intent.intent_id, timeout=30))

            async def charge() -> dict[str, int]:
                return {"charged": 1}

            alice = tether.AsyncClient(client.sync.as_actor(Principal.human("alice")))
            await asyncio.sleep(0.05)
            assert not waiter.done()
            await alice.approve(intent.intent_id)
            claim = await client.claim("agent://test/a")
            assert claim is not None and claim.resumed
            assert await client.step(intent.intent_id, "c", charge, lease=claim.lease) == {
                "charged": 1
            }
            await client.complete(intent.intent_id, {"ok": True}, lease=claim.lease)
            done = await waiter
            assert done.status is Status.COMPLETED and done.result == {"ok": True}

    asyncio.run(main())


def test_wait_for_times_out(db_url: str) -> None:
    with tether.connect(db_url) as client:
        intent = client.create_intent("refund.request.v1", "agent://test/a")
        try:
            client.wait_for(intent.intent_id, timeout=0.2)
        except tether.WaitTimeout as exc:
            assert exc.details["status"] == "SUBMITTED"
        else:
            raise AssertionError("wait_for should time out")


def test_wait_for_sees_another_process_finish(db_url: str) -> None:
    import subprocess
    import sys

    with tether.connect(db_url) as client:
        intent = client.create_intent("refund.request.v1", "agent://test/a")
        script = (
            "import tether,time,sys; time.sleep(0.3); c=tether.connect(sys.argv[1]);"
            "l=c.start(sys.argv[2]); c.complete(sys.argv[2], {'by': 'other'}, lease=l)"
        )
        proc = subprocess.Popen([sys.executable, "-c", script, db_url, intent.intent_id])
        done = client.wait_for(intent.intent_id, timeout=30)
        proc.wait(30)
        assert done.result == {"by": "other"}


def test_on_the_embedded_store_calls_run_on_the_loop_and_share_commits(db_url: str) -> None:
    """No worker thread per call: the loop awaits each commit, and calls made meanwhile by
    other tasks are grouped into the same commits by the store's writer."""

    async def main() -> None:
        async with tether.connect_async(db_url) as client:
            intents = [
                await client.create_intent("refund.request.v1", "agent://test/a") for _ in range(16)
            ]
            store = client.sync.store
            before = store.change_counter
            steps = await asyncio.gather(
                *(client.record_step(i.intent_id, "s", {"n": n}) for n, i in enumerate(intents))
            )
            assert [s.result for s in steps] == [{"n": n} for n in range(16)]
            assert store.change_counter - before < 16  # fewer commits than writes
            assert client._pool._threads == set()  # no call needed a worker thread

    asyncio.run(main())


def test_a_step_retried_through_an_outage_does_not_hold_the_loop(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """record_step retries while the store is away; on the loop its back-off is awaited, so
    other tasks keep running."""

    async def main() -> None:
        async with tether.connect_async(db_url) as client:
            intent = await client.create_intent("refund.request.v1", "agent://test/a")
            engine = client.sync.engine
            record = engine.record_step
            failures = [tether.StoreError("away"), tether.StoreError("still away")]

            def flaky(*args: Any, **kwargs: Any) -> Any:
                if failures:
                    raise failures.pop(0)
                return record(*args, **kwargs)

            monkeypatch.setattr(engine, "record_step", flaky)
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.005)

            beat = asyncio.create_task(ticker())
            step = await client.record_step(intent.intent_id, "s", {"ok": True})
            beat.cancel()
            assert step.result == {"ok": True} and not failures
            assert ticks >= 5  # the back-off (at least 0.05 + 0.1 s) let the ticker run

    asyncio.run(main())
