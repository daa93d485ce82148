"""The steps journal, versioned state, and worker leases."""

from __future__ import annotations

import threading
import time

import pytest
import tenacity
import tether
import tether.client._sync as client_module
from tether import HumanTask, Status

from .conftest import AGENT, new_intent, outsider, person


def test_a_finished_step_is_never_run_again(client: tether.Client) -> None:
    intent = new_intent(client)
    lease = client.start(intent.intent_id)
    calls: list[int] = []

    def charge() -> dict[str, int]:
        calls.append(1)
        return {"charged": 120}

    assert client.step(intent.intent_id, "charge", charge, lease=lease) == {"charged": 120}
    assert client.step(intent.intent_id, "charge", charge, lease=lease) == {"charged": 120}
    assert len(calls) == 1
    # the first record wins; a late duplicate record returns it
    again = client.record_step(intent.intent_id, "charge", {"charged": 999}, lease=lease)
    assert again.result == {"charged": 120}
    assert [s.key for s in client.list_steps(intent.intent_id)] == ["charge"]
    assert [
        e.details
        for e in client.list_events(intent.intent_id)
        if e.event_type == "intent.step_recorded"
    ] == [{"key": "charge"}]


def test_a_step_recorded_while_a_second_record_waits_for_the_lock_wins() -> None:
    """On PostgreSQL a step's record reads whether the step exists in the statement that
    locks the intent, as of that statement's start. A record committed while it waited for
    the lock is missed there: the steps' key refuses the second insert and the write runs
    again, to return the first record (the first record wins, and runs once)."""
    from tether.engine.journal import record_step

    from ..pg import fresh_schema, second_writer_at_the_lock

    with fresh_schema() as url, tether.connect(url) as client:
        intent = new_intent(client)
        lease = client.start(intent.intent_id)
        _, second = second_writer_at_the_lock(
            client,
            intent.intent_id,
            lambda tx, ctx, row: record_step(
                tx, ctx, intent.intent_id, "charge", {"charged": 1}, lease.token
            ),
            lambda: client.record_step(intent.intent_id, "charge", {"charged": 2}, lease=lease),
        )
        assert [s.result for s in second] == [{"charged": 1}]
        assert [s.result for s in client.list_steps(intent.intent_id)] == [{"charged": 1}]
        recorded = [
            e
            for e in client.list_events(intent.intent_id)
            if e.event_type == "intent.step_recorded"
        ]
        assert len(recorded) == 1 and client.verify_audit().ok


def test_a_step_that_raises_is_not_recorded(client: tether.Client) -> None:
    intent = new_intent(client)
    lease = client.start(intent.intent_id)

    def boom() -> None:
        raise RuntimeError("psp down")

    with pytest.raises(RuntimeError):
        client.step(intent.intent_id, "charge", boom, lease=lease)
    assert client.get_step(intent.intent_id, "charge") is None
    assert client.step(intent.intent_id, "charge", lambda: 1, lease=lease) == 1


def test_state_compare_and_set(client: tether.Client) -> None:
    intent = new_intent(client)
    assert client.get_state(intent.intent_id) is None
    v1 = client.put_state(intent.intent_id, {"checkpoint": 1}, expected_version=0)
    assert v1.version == 1
    with pytest.raises(tether.VersionConflict) as info:
        client.put_state(intent.intent_id, {"checkpoint": "stale"}, expected_version=0)
    assert info.value.details["current_version"] == 1
    v2 = client.put_state(intent.intent_id, {"checkpoint": 2}, expected_version=1)
    assert v2.version == 2
    stored = client.get_state(intent.intent_id)
    assert stored is not None and (stored.version, stored.data) == (2, {"checkpoint": 2})
    other = client.put_state(intent.intent_id, [1, 2], expected_version=0, key="session")
    assert other.version == 1 and client.get_state(intent.intent_id, "session").data == [1, 2]  # type: ignore[union-attr]


def _keys(client: tether.Client, intent_id: str, **kw: object) -> list[str]:
    return [e.key for e in client.list_state(intent_id, **kw)]  # type: ignore[arg-type]


def test_state_keys_are_listed_by_exact_prefix_in_code_point_order(client: tether.Client) -> None:
    intent = new_intent(client)
    keys = ["a", "a%b", "a_b", "ab", "a/1", "a/2", "aXb", "A", "b", "é", "x\U0010ffff",
            "x\U0010ffffy", "y"]  # fmt: skip
    for key in keys:
        client.put_state(intent.intent_id, {"k": key}, expected_version=0, key=key)
    client.put_state(intent.intent_id, {"again": True}, expected_version=1, key="ab")
    listed = client.list_state(intent.intent_id)
    assert [e.key for e in listed] == sorted(keys)  # Python sorts str by code point
    ab = next(e for e in listed if e.key == "ab")
    stored = client.get_state(intent.intent_id, "ab")
    assert stored is not None and (ab.version, ab.updated_at) == (2, stored.updated_at)
    assert not hasattr(ab, "data")
    # LIKE's wildcards are plain characters in a prefix
    assert _keys(client, intent.intent_id, prefix="a%") == ["a%b"]
    assert _keys(client, intent.intent_id, prefix="a_") == ["a_b"]
    in_a = ["a", "a%b", "a/1", "a/2", "aXb", "a_b", "ab"]
    assert _keys(client, intent.intent_id, prefix="a") == in_a
    assert _keys(client, intent.intent_id, prefix="a", after="a/1") == in_a[3:]
    assert _keys(client, intent.intent_id, prefix="x\U0010ffff") == keys[10:12]
    assert _keys(client, intent.intent_id, prefix="nothing") == []
    # page by page, with the last key as ``after``
    pages: list[list[str]] = []
    while page := _keys(client, intent.intent_id, after=pages[-1][-1] if pages else "", limit=4):
        pages.append(page)
    assert [len(p) for p in pages] == [4, 4, 4, 1]
    assert [key for p in pages for key in p] == sorted(keys)


def test_state_is_deleted_by_key_with_compare_and_set(client: tether.Client) -> None:
    intent = new_intent(client)
    client.put_state(intent.intent_id, 1, expected_version=0, key="k")
    client.put_state(intent.intent_id, 2, expected_version=1, key="k")
    with pytest.raises(tether.VersionConflict) as info:
        client.delete_state(intent.intent_id, "k", expected_version=1)
    assert info.value.details == {"current_version": 2, "expected_version": 1}
    assert client.get_state(intent.intent_id, "k").data == 2  # type: ignore[union-attr]
    assert client.delete_state(intent.intent_id, "k", expected_version=2) is True
    assert client.get_state(intent.intent_id, "k") is None
    assert client.delete_state(intent.intent_id, "k") is False
    assert client.delete_state(intent.intent_id, "k", expected_version=0) is False
    with pytest.raises(tether.VersionConflict):
        client.delete_state(intent.intent_id, "k", expected_version=2)
    # written again, it starts over at version 1
    assert client.put_state(intent.intent_id, 3, expected_version=0, key="k").version == 1
    client.put_state(intent.intent_id, "other", expected_version=0, key="k2")
    assert client.delete_state(intent.intent_id, "k") is True
    assert _keys(client, intent.intent_id) == ["k2"]


def test_state_is_deleted_by_exact_prefix(client: tether.Client) -> None:
    intent, other = new_intent(client), new_intent(client)
    for key in ["t/1", "t/2", "t%/x", "t_", "tx", "u"]:
        client.put_state(intent.intent_id, key, expected_version=0, key=key)
    client.put_state(other.intent_id, "mine", expected_version=0, key="t/1")
    assert client.delete_state_prefix(intent.intent_id, "t/") == 2
    assert client.delete_state_prefix(intent.intent_id, "t%") == 1
    assert client.delete_state_prefix(intent.intent_id, "t_") == 1
    assert client.delete_state_prefix(intent.intent_id, "nothing") == 0
    assert _keys(client, intent.intent_id) == ["tx", "u"]
    assert _keys(client, other.intent_id) == ["t/1"]  # another intent's state is its own


def test_state_listing_and_deleting_refuse_bad_input(client: tether.Client) -> None:
    intent = new_intent(client)
    client.put_state(intent.intent_id, 1, expected_version=0, key="k")
    for limit in (0, 1001):
        with pytest.raises(tether.InvalidRequest):
            client.list_state(intent.intent_id, limit=limit)
    assert len(client.list_state(intent.intent_id, limit=1000)) == 1
    with pytest.raises(tether.InvalidRequest):
        client.delete_state_prefix(intent.intent_id, "")  # never "everything"
    with pytest.raises(tether.InvalidRequest):
        client.delete_state(intent.intent_id, "")
    with pytest.raises(tether.InvalidRequest):
        client.delete_state(intent.intent_id, "k", expected_version=-1)
    unknown = "01a21a65-0000-7000-8000-000000000000"
    with pytest.raises(tether.NotFound):
        client.list_state(unknown)
    with pytest.raises(tether.NotFound):
        client.delete_state(unknown, "k")
    with pytest.raises(tether.NotFound):
        client.delete_state_prefix(unknown, "k")
    with outsider(client) as other:
        with pytest.raises(tether.NotFound):
            other.list_state(intent.intent_id)
        with pytest.raises(tether.NotFound):
            other.delete_state_prefix(intent.intent_id, "k")
    assert _keys(client, intent.intent_id) == ["k"]


def test_state_deletes_are_fenced_by_the_lease(
    client: tether.Client, clock: tether.FrozenClock
) -> None:
    intent = new_intent(client)
    dead = client.claim(AGENT, owner="w1", lease_seconds=30)
    assert dead is not None
    client.start(intent.intent_id, lease=dead.lease)
    for key in ("a/1", "a/2", "b"):
        client.put_state(intent.intent_id, key, expected_version=0, key=key, lease=dead.lease)
    clock.advance(31)
    taken = client.claim(AGENT, owner="w2")
    assert taken is not None
    with pytest.raises(tether.LeaseLost):
        client.delete_state(intent.intent_id, "b", lease=dead.lease)
    with pytest.raises(tether.LeaseLost):
        client.delete_state_prefix(intent.intent_id, "a/", lease=dead.lease)
    assert _keys(client, intent.intent_id) == ["a/1", "a/2", "b"]
    assert client.delete_state(intent.intent_id, "b", expected_version=1, lease=taken.lease)
    assert client.delete_state_prefix(intent.intent_id, "a/", lease=taken.lease) == 2
    assert _keys(client, intent.intent_id) == []


def test_claim_delivers_new_work_once(client: tether.Client) -> None:
    intent = new_intent(client)
    first = client.claim(AGENT, owner="w1")
    assert first is not None and first.intent.intent_id == intent.intent_id
    assert first.intent.status is Status.DELIVERED and not first.resumed
    assert client.claim(AGENT, owner="w2") is None  # the lease is live


def test_expired_lease_is_claimed_again(client: tether.Client, clock: tether.FrozenClock) -> None:
    intent = new_intent(client)
    dead = client.claim(AGENT, owner="w1", lease_seconds=30)
    assert dead is not None
    client.start(intent.intent_id, lease=dead.lease)
    clock.advance(31)
    taken = client.claim(AGENT, owner="w2")
    assert taken is not None and taken.lease.owner == "w2"
    # the dead worker is fenced off: its writes are refused
    with pytest.raises(tether.LeaseLost):
        client.record_step(intent.intent_id, "late", 1, lease=dead.lease)
    with pytest.raises(tether.LeaseLost):
        client.complete(intent.intent_id, lease=dead.lease)
    with pytest.raises(tether.LeaseLost):
        client.heartbeat(dead.lease)
    client.complete(intent.intent_id, {"by": "w2"}, lease=taken.lease)


def test_heartbeat_keeps_the_lease(client: tether.Client, clock: tether.FrozenClock) -> None:
    new_intent(client)
    claim = client.claim(AGENT, owner="w1", lease_seconds=30)
    assert claim is not None
    for _ in range(4):
        clock.advance(20)
        client.heartbeat(claim.lease, lease_seconds=30)
        assert client.claim(AGENT, owner="w2") is None
    client.release(claim.lease)
    assert client.claim(AGENT, owner="w2") is not None


def test_start_refuses_while_another_worker_holds_it(client: tether.Client) -> None:
    intent = new_intent(client)
    client.start(intent.intent_id, owner="w1")
    with pytest.raises(tether.Conflict) as info:
        client.start(intent.intent_id, owner="w2")
    assert info.value.code == "leased"


def test_resumed_intent_goes_back_to_a_worker(client: tether.Client) -> None:
    intent = new_intent(client)
    lease = client.start(intent.intent_id, owner="w1")
    client.wait_for_human(intent.intent_id, HumanTask(title="ok?"), lease=lease)
    assert client.claim(AGENT) is None  # waiting: nothing to run
    person(client, "alice").approve(intent.intent_id)
    claim = client.claim(AGENT, owner="w2", intent_types=["refund.request.v1"])
    assert claim is not None and claim.resumed and claim.last_wait is not None
    assert claim.last_wait.outcome == "approved"
    assert client.claim(AGENT, owner="w3", intent_types=["other.v1"]) is None


def test_a_claim_can_bring_the_journal_and_waits(client: tether.Client) -> None:
    fresh = new_intent(client)
    first = client.claim(AGENT, owner="w1", start=True, journal=True)
    assert first is not None and first.intent.intent_id == fresh.intent_id
    assert first.steps == [] and first.waits == [] and not first.resumed
    client.record_step(fresh.intent_id, "reserve", {"ok": 1}, lease=first.lease)
    client.record_step(fresh.intent_id, "charge", [1, 2], lease=first.lease)
    client.wait_for_human(fresh.intent_id, HumanTask(title="ok?"), key="go", lease=first.lease)
    person(client, "alice").reject(fresh.intent_id, comment="no")
    again = client.claim(AGENT, owner="w2", journal=True)
    assert again is not None and again.resumed
    assert again.steps is not None and again.waits is not None
    assert {s.key: s.result for s in again.steps} == {"reserve": {"ok": 1}, "charge": [1, 2]}
    assert [(w.key, w.outcome, w.comment) for w in again.waits] == [("go", "rejected", "no")]
    assert again.last_wait == again.waits[0]
    plain = new_intent(client)
    without = client.claim(AGENT, owner="w3")
    assert without is not None and without.intent.intent_id == plain.intent_id
    assert without.steps is None and without.waits is None  # not asked for


def test_a_waiting_claim_is_woken_by_new_and_resumed_work(client: tether.Client) -> None:
    """An idle claim waits for work; a new intent, and a resumed one, end that wait at once
    (well before its 30 s window), here or through a server."""
    got: list[tether.Claim | None] = []

    def claim_in_background() -> threading.Thread:
        thread = threading.Thread(target=lambda: got.append(client.claim(AGENT, wait=30)))
        thread.start()
        return thread

    began = time.monotonic()
    waiting = claim_in_background()
    time.sleep(0.2)  # let it park
    created = new_intent(client)
    waiting.join(60)
    assert got and got[-1] is not None and got[-1].intent.intent_id == created.intent_id
    lease = got[-1].lease
    client.wait_for_human(created.intent_id, HumanTask(title="ok?"), lease=lease)
    waiting = claim_in_background()
    time.sleep(0.2)
    person(client, "alice").approve(created.intent_id)
    waiting.join(60)
    assert got[-1] is not None and got[-1].resumed
    assert time.monotonic() - began < 20  # neither claim sat out its window
    assert client.claim(AGENT, wait=0.2) is None  # nothing came: no claim after the wait
    with pytest.raises(tether.InvalidRequest):
        client.claim(AGENT, wait=-1)


def test_lease_duration_is_checked(client: tether.Client) -> None:
    new_intent(client)
    with pytest.raises(tether.InvalidRequest):
        client.claim(AGENT, lease_seconds=0)


def test_recording_a_step_outlasts_a_store_outage_but_not_a_corrupt_store(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step's effect has happened: its record is retried while the store is away, and a
    corrupt store or an exhausted ``retry_for`` is raised."""
    with tether.connect(db_url) as client:
        intent = client.create_intent("refund.request.v1", AGENT)
        real = client.engine.record_step
        failures: list[Exception] = []

        def flaky(*args: object, **kwargs: object) -> object:
            if failures:
                raise failures.pop(0)
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(client.engine, "record_step", flaky)
        policies: list[object] = []  # the retry policy is built only once a record failed

        def counted(*args: object, **kwargs: object) -> object:
            policies.append(args)
            return tenacity.Retrying(*args, **kwargs)

        monkeypatch.setattr(client_module, "Retrying", counted)
        assert client.record_step(intent.intent_id, "z", 0).result == 0 and policies == []
        failures[:] = [tether.StoreError("away"), tether.StoreError("still away")]
        assert client.record_step(intent.intent_id, "a", 1).result == 1
        assert not failures and len(policies) == 1
        failures[:] = [tether.CorruptStore("bad page")]
        with pytest.raises(tether.CorruptStore):
            client.record_step(intent.intent_id, "b", 2)
        failures[:] = [tether.StoreError("away")] * 50
        with pytest.raises(tether.StoreError, match="away"):
            client.record_step(intent.intent_id, "c", 3, retry_for=0.2)
        assert [s.key for s in client.list_steps(intent.intent_id)] == ["z", "a"]
        failures.clear()
        client.store.close()  # closed by this process: no use waiting (a worker shutting down)
        started = time.monotonic()
        with pytest.raises(tether.StoreClosed):
            client.record_step(intent.intent_id, "d", 4)
        assert time.monotonic() - started < 5  # not retried for retry_for (30 s)


def test_a_value_postgresql_cannot_hold_is_the_requests_error_not_an_outage() -> None:
    """PostgreSQL refuses a NUL in text. That is the request's fault: record_step answers
    InvalidRequest at once, where a StoreError would be retried as an outage for the whole
    lease (and a Worker would run the step's side effect again on every claim)."""
    import time

    from ..pg import fresh_schema

    with fresh_schema() as url, tether.connect(url) as client:
        intent = new_intent(client)
        lease = client.start(intent.intent_id)
        started = time.monotonic()
        with pytest.raises(tether.InvalidRequest) as refused:
            client.record_step(intent.intent_id, "a\x00b", {"ok": True}, lease=lease, retry_for=30)
        assert refused.value.code == "invalid_value"
        assert time.monotonic() - started < 10  # not retried for the 30 s it was allowed
        assert client.list_steps(intent.intent_id) == []
        client.record_step(intent.intent_id, "ab", {"ok": True}, lease=lease)  # and it goes on
