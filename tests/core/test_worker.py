"""Workers: handlers by intent type, suspend and resume, failures, and real processes dying."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import tether
from tether import HumanTask, Principal, Status

from .conftest import AGENT
from .server.conftest import new_key, start_server

ROOT = Path(__file__).resolve().parents[2]


def test_a_handler_suspends_and_resumes_where_it_stopped(client: tether.Client) -> None:
    worker = tether.Worker(client, agent=AGENT, poll_seconds=0.01)
    ran: list[str] = []

    @worker.handler("refund.request.v1")
    def refund(ctx: tether.WorkContext) -> dict[str, object]:
        ctx.step("reserve", lambda: ran.append("reserve") or "ok")
        decision = ctx.wait_for_human(HumanTask(title="ok?"), key="approval")
        ctx.step("pay", lambda: ran.append("pay") or "paid")
        return {"outcome": decision.outcome, "resumed": ctx.resumed}

    intent = client.create_intent("refund.request.v1", AGENT, {"amount": 5})
    assert worker.run_once()
    assert client.get_intent(intent.intent_id).status is Status.WAITING
    assert not worker.run_once()  # nothing to do while it waits
    client.as_actor(Principal.human("alice")).approve(intent.intent_id)
    assert worker.run_once()
    done = client.get_intent(intent.intent_id)
    assert done.status is Status.COMPLETED and done.result == {
        "outcome": "approved",
        "resumed": True,
    }
    assert ran == ["reserve", "pay"]  # the resumed run did not reserve again


def test_a_failing_handler_fails_the_intent(client: tether.Client) -> None:
    worker = tether.Worker(client, agent=AGENT)

    @worker.handler("refund.request.v1")
    def broken(ctx: tether.WorkContext) -> None:
        raise ValueError("no such order")

    intent = client.create_intent("refund.request.v1", AGENT)
    other = client.create_intent("other.task.v1", AGENT)
    assert worker.run_once()
    failed = client.get_intent(intent.intent_id)
    assert failed.status is Status.FAILED and failed.error is not None
    assert failed.error.code == "handler_error" and "no such order" in failed.error.message
    assert client.get_intent(other.intent_id).status is Status.SUBMITTED  # not its type


@pytest.mark.slow
def test_a_step_that_ran_is_recorded_through_a_server_restart(db_url: str) -> None:
    """The server is SIGKILLed after a step's effect and before its record: the worker keeps
    its claim and records the step once the server is back, so the effect is not repeated."""
    key = new_key(db_url, "--role", "agent", "--agent", AGENT)
    server = start_server(db_url)
    port = int(server.url.rsplit(":", 1)[1])
    servers = [server]

    def restart() -> None:
        time.sleep(1.5)
        servers.append(start_server(db_url, port=port))

    restarter = threading.Thread(target=restart)

    ran: list[str] = []
    worker = tether.Worker(agent=AGENT, lease_seconds=10.0, poll_seconds=0.05)

    @worker.handler("shop.order.v1")
    def order(ctx: tether.WorkContext) -> str:
        def reserve() -> str:
            ran.append("reserve")
            if len(ran) == 1:  # the effect happened; now the server dies before the record
                servers[0].process.send_signal(signal.SIGKILL)
                servers[0].process.wait(10)
                restarter.start()
            return "reserved"

        return ctx.step("reserve", reserve)

    try:
        with tether.connect(server.url, api_key=key) as client:
            intent = client.create_intent("shop.order.v1", AGENT)
            assert worker.run(client, max_intents=1) == 1
            done = client.get_intent(intent.intent_id)
            assert done.status is Status.COMPLETED and done.result == "reserved"
            assert [s.key for s in client.list_steps(intent.intent_id)] == ["reserve"]
        assert ran == ["reserve"]  # recorded by the run that did it, not run again
    finally:
        if restarter.is_alive():
            restarter.join()
        for s in servers:
            s.process.kill()


def _worker(db_url: str, effects: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tether", "worker", "tests.core._worker_app:worker", "--db", db_url],
        cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "TETHER_TEST_EFFECTS": str(effects), **env},
    )  # fmt: skip


def _until(predicate: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.mark.slow
def test_work_survives_the_process_that_started_it(db_url: str, tmp_path: Path) -> None:
    effects = tmp_path / "effects.log"
    effects.touch()
    with tether.connect(db_url) as client:
        intent = client.create_intent("refund.request.v1", AGENT, {"amount": 500})
        first = _worker(db_url, effects)
        _until(lambda: client.get_intent(intent.intent_id).status is Status.WAITING)
        first.send_signal(signal.SIGTERM)  # the original process goes away while it waits
        first.wait(30)
        client.as_actor(Principal.human("alice")).approve(intent.intent_id)
        second = _worker(db_url, effects)
        try:
            _until(lambda: client.get_intent(intent.intent_id).status is Status.COMPLETED)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    assert effects.read_text().split() == [f"reserve:{intent.intent_id}", f"pay:{intent.intent_id}"]


@pytest.mark.slow
def test_a_killed_worker_is_taken_over_from_its_last_step(db_url: str, tmp_path: Path) -> None:
    effects = tmp_path / "effects.log"
    effects.touch()
    with tether.connect(db_url) as client:
        intent = client.create_intent("refund.request.v1", AGENT, {"amount": 50})
        doomed = _worker(db_url, effects, TETHER_TEST_LEASE="1", TETHER_TEST_SLOW="30")
        _until(lambda: client.get_step(intent.intent_id, "reserve") is not None)
        time.sleep(0.3)  # inside the long "pay" call
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(30)
        assert client.get_intent(intent.intent_id).status is Status.IN_PROGRESS
        rescuer = _worker(db_url, effects, TETHER_TEST_LEASE="1")
        try:
            _until(lambda: client.get_intent(intent.intent_id).status is Status.COMPLETED)
        finally:
            rescuer.send_signal(signal.SIGTERM)
            rescuer.wait(30)
        events = [e.event_type for e in client.list_events(intent.intent_id)]
        assert events.count("intent.claimed") >= 1  # taken over after the lease expired
    # reserve ran once (journal), pay ran once (the killed attempt never finished it)
    assert effects.read_text().split() == [f"reserve:{intent.intent_id}", f"pay:{intent.intent_id}"]


def test_worker_command_reports_a_bad_target(db_url: str) -> None:
    out = subprocess.run([sys.executable, "-m", "tether", "worker", "no.such.module:worker", "--db", db_url],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert out.returncode == 1 and "error" in out.stderr


def test_the_agent_feed_lists_work_in_order(client: tether.Client) -> None:
    first = client.create_intent("refund.request.v1", AGENT)
    second = client.create_intent("refund.request.v1", AGENT)
    client.create_intent("refund.request.v1", "agent://test/other")
    feed = client.agent_feed(AGENT)
    assert [i.intent_id for i in feed] == [first.intent_id, second.intent_id]
    assert [i.status for i in feed] == ["SUBMITTED", "SUBMITTED"] and feed[0].seq < feed[1].seq
    lease = client.start(first.intent_id)
    later = client.agent_feed(AGENT, since=feed[-1].seq)
    assert [(i.intent_id, i.status) for i in later] == [(first.intent_id, "IN_PROGRESS")]
    client.complete(first.intent_id, lease=lease)
    assert client.agent_feed(AGENT, since=later[-1].seq) == []  # ended work is left out
    ended = client.agent_feed(AGENT, since=later[-1].seq, statuses=[Status.COMPLETED])
    assert [(i.intent_id, i.event_type) for i in ended] == [(first.intent_id, "intent.completed")]


def test_lease_heartbeats_keep_leases_alive_on_shared_threads(db_url: str) -> None:
    """Every heartbeat of the process renews on one scheduler and a small pool (a claim
    starts no thread); each lease outlives its length while its block runs, and is renewed no
    more once the block has ended."""
    with tether.connect(db_url) as client:  # the real clock: leases expire in real time
        ids = [client.create_intent("refund.request.v1", AGENT).intent_id for _ in range(12)]
        claims = [client.claim_intent(i, lease_seconds=0.6) for i in ids]
        before = threading.active_count()
        beats = [tether.LeaseHeartbeat(client, c.lease, 0.6) for c in claims]
        for beat in beats:
            beat.__enter__()
        time.sleep(1.5)  # 2.5 lease lengths
        assert threading.active_count() <= before + 5  # the scheduler and a pool of 4
        for i, beat in zip(ids, beats, strict=True):
            assert beat.lease.expires_at > claims[0].lease.expires_at
            with pytest.raises(tether.Conflict):  # still leased to its holder
                client.claim_intent(i, lease_seconds=1)
        for beat in beats:
            beat.__exit__(None, None, None)
        ended = [client.get_intent(i).lease for i in ids]
        time.sleep(0.5)  # more than one renewal period
        assert [client.get_intent(i).lease for i in ids] == ended  # nothing renewed after
        assert not any(beat.lost.is_set() for beat in beats)


def test_a_heartbeat_sees_its_lease_taken_over(db_url: str) -> None:
    with tether.connect(db_url) as client:
        intent_id = client.create_intent("refund.request.v1", AGENT).intent_id
        claim = client.claim_intent(intent_id, lease_seconds=0.6)
        with tether.LeaseHeartbeat(client, claim.lease, 0.6) as beat:
            client.release(claim.lease)
            client.claim_intent(intent_id, owner="another", lease_seconds=30)
            assert beat.lost.wait(5)


def test_an_idle_worker_polls_with_reads_and_claims_when_work_comes(store_url: str) -> None:
    """A claimer that found nothing last time looks (a read) before it claims (a write): an
    idle fleet polling makes no writes, and work that arrives is still claimed at once."""
    with tether.connect(store_url) as client:
        store = client.engine.store
        writes: list[int] = []
        write = store.write

        def counted(fn: object) -> object:
            writes.append(1)
            return write(fn)  # type: ignore[arg-type]

        store.write = counted  # type: ignore[method-assign]
        worker = tether.Worker(client, agent=AGENT, poll_seconds=0.05)
        ran: list[str] = []

        @worker.handler("refund.request.v1")
        def refund(ctx: tether.WorkContext) -> dict[str, bool]:
            ran.append(ctx.intent.intent_id)
            return {"ok": True}

        assert not worker.run_once()  # the first claim writes, and finds nothing
        before = len(writes)
        for _ in range(5):
            assert not worker.run_once()
        assert len(writes) == before  # idle: reads only
        intent = client.create_intent("refund.request.v1", AGENT)
        assert worker.run_once() and ran == [intent.intent_id]


def test_idle_claimers_woken_by_one_intent_make_one_claim_between_them(store_url: str) -> None:
    """Claimers of one agent in one process, idle and waiting, all woken by one new intent:
    they take turns to look, so one of them claims it and the others only read."""
    with tether.connect(store_url) as client:
        store = client.engine.store
        claims: list[object] = []
        write = store.write

        def counted(fn: object) -> object:
            result = write(fn)  # type: ignore[arg-type]
            if result is None or isinstance(result, tether.Claim):
                claims.append(result)  # a claim's write: what it claimed, or nothing
            return result

        owners = [f"worker-{i}" for i in range(4)]
        for owner in owners:  # each finds nothing once: idle from now on
            assert client.claim(AGENT, owner=owner) is None
        claims.clear()
        store.write = counted  # type: ignore[method-assign]
        got: list[tether.Claim | None] = []

        def claimer(owner: str) -> None:
            got.append(client.claim(AGENT, owner=owner, wait=1.5))

        threads = [threading.Thread(target=claimer, args=(owner,)) for owner in owners]
        for thread in threads:
            thread.start()
        time.sleep(0.3)  # all four are waiting
        intent = client.create_intent("refund.request.v1", AGENT)
        for thread in threads:
            thread.join(10)
        assert [c.intent.intent_id for c in got if c is not None] == [intent.intent_id]
        assert len(claims) == 1 and claims[0] is not None  # one write, and it found the work


def test_a_worker_stops_when_its_store_is_closed(db_url: str) -> None:
    """A store closed by its own process will not come back: the worker's loop ends instead
    of retrying as it does through an outage."""
    client = tether.connect(db_url)
    worker = tether.Worker(client, agent=AGENT, poll_seconds=0.05)

    @worker.handler("refund.request.v1")
    def refund(ctx: tether.WorkContext) -> dict[str, bool]:
        return {"ok": True}

    loop = threading.Thread(target=worker.run)
    loop.start()
    time.sleep(0.2)  # polling
    client.close()
    loop.join(10)
    alive = loop.is_alive()
    worker.stop()
    loop.join(10)
    assert not alive


def test_per_claimer_state_stays_bounded_as_agents_come_and_go(db_url: str) -> None:
    with tether.connect(db_url) as client:
        engine = client.engine
        for n in range(5000):  # one idle claim each, of agents seen once
            engine.claim(f"agent://churn/a{n}", owner="w", wait=0)
            with engine._turns(f"agent://churn/a{n}"):  # the lock its idle claims take turns on
                pass
        assert len(engine._idle) <= 4096 and len(engine._claim_turns) <= 4096
        assert ("agent://churn/a4999", "w") in engine._idle  # the newest are kept
        assert "agent://churn/a0" not in engine._claim_turns  # the oldest forgotten


def test_a_rate_limited_worker_slows_down_and_runs_each_step_once(db_url: str) -> None:
    """Over HTTP, the server's per-key limit answers 429 to claims and to steps' records: a
    worker waits as asked and goes on (never failing the intent, never running a step
    again), where it used to fail the intent or stop."""
    from tether.settings import Settings

    from ..server_harness import running_server

    ran: list[int] = []
    worker = tether.Worker(agent=AGENT, lease_seconds=30.0, poll_seconds=0.05)

    @worker.handler("shop.order.v1")
    def order(ctx: tether.WorkContext) -> int:
        return sum(ctx.step(f"s{i}", lambda i=i: ran.append(i) or i) for i in range(6))

    with tether.connect(db_url) as local:
        key = local.engine.create_key(tether.KeyRole.AGENT, agent=AGENT).secret
        limited = Settings(rate_limit=4.0, rate_burst=2.0)
        with (
            running_server(local.engine, limited) as url,
            tether.connect(url, api_key=key) as client,
        ):
            ids = [client.create_intent("shop.order.v1", AGENT).intent_id for _ in range(2)]
            assert worker.run(client, max_intents=2) == 2
        done = [local.get_intent(i) for i in ids]
    assert [(i.status, i.result) for i in done] == [(Status.COMPLETED, 15)] * 2
    assert sorted(ran) == sorted(list(range(6)) * 2)  # each step's body once per intent


def test_a_worker_that_knows_its_lease_is_lost_runs_no_further_step(
    client: tether.Client,
) -> None:
    """When the lease's renewal finds it taken (the heartbeat sets the context's flag), the
    next step's body does not run: another worker may be running the intent now."""
    ran: list[str] = []
    worker = tether.Worker(client, agent=AGENT, poll_seconds=0.01)

    @worker.handler("refund.request.v1")
    def handle(ctx: tether.WorkContext) -> str:
        ctx.step("first", lambda: ran.append("first") or "ok")
        ctx._lost.set()  # as the lease heartbeat does on LeaseLost
        ctx.step("second", lambda: ran.append("second") or "ok")
        return "done"

    intent = client.create_intent("refund.request.v1", AGENT)
    assert worker.run_once()
    assert ran == ["first"]
    left = client.get_intent(intent.intent_id)
    assert left.status is Status.IN_PROGRESS  # not failed: left to whoever holds it now
    assert [s.key for s in client.list_steps(intent.intent_id)] == ["first"]
