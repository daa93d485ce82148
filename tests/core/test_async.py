"""The async client: same names, awaitable, and wait_for wakes when the intent ends."""

from __future__ import annotations

import asyncio

import tether
from tether import HumanTask, Principal, Status


def test_async_lifecycle(db_url: str) -> None:
    async def main() -> None:
        async with tether.connect_async(db_url) as client:
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
