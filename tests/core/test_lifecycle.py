"""The state machine: legal transitions, terminal immutability, seq and chain."""

from __future__ import annotations

import pytest
import tether
from tether import Status
from tether.engine import TRANSITIONS, check_transition

from .conftest import new_intent, waiting_for_human

TERMINALS = [Status.COMPLETED, Status.FAILED, Status.CANCELED, Status.TIMED_OUT]


def test_table_matches_the_design() -> None:
    for terminal in TERMINALS:
        assert TRANSITIONS[terminal] == frozenset()
    assert Status.COMPLETED not in TRANSITIONS[Status.WAITING]
    for status in Status:
        if status not in TERMINALS:
            assert {Status.FAILED, Status.CANCELED, Status.TIMED_OUT} <= TRANSITIONS[status]
            if status is not Status.WAITING:
                assert Status.COMPLETED in TRANSITIONS[status]
    assert TRANSITIONS[Status.WAITING] >= {Status.IN_PROGRESS}


@pytest.mark.parametrize("current", list(Status))
@pytest.mark.parametrize("target", list(Status))
def test_check_transition_agrees_with_table(current: Status, target: Status) -> None:
    if current in TERMINALS:
        with pytest.raises(tether.IntentTerminal):
            check_transition(current, target)
    elif target in TRANSITIONS[current]:
        check_transition(current, target)
    else:
        with pytest.raises(tether.IllegalTransition) as info:
            check_transition(current, target)
        assert info.value.status == 409


def test_create_records_created_then_submitted(client: tether.Client) -> None:
    intent = new_intent(client)
    assert intent.status is Status.SUBMITTED
    events = client.list_events(intent.intent_id)
    assert [(e.seq, e.event_type, e.status) for e in events] == [
        (1, "intent.created", Status.CREATED),
        (2, "intent.submitted", Status.SUBMITTED),
    ]


@pytest.mark.parametrize("end", ["complete", "fail", "cancel"])
def test_terminal_intent_never_changes_again(client: tether.Client, end: str) -> None:
    intent = new_intent(client)
    lease = client.start(intent.intent_id)
    if end == "complete":
        client.complete(intent.intent_id, {"ok": 1}, lease=lease)
    elif end == "fail":
        client.fail(intent.intent_id, "boom", lease=lease)
    else:
        client.cancel(intent.intent_id, "no longer needed")
    before = client.list_events(intent.intent_id)
    for attempt in (
        lambda: client.complete(intent.intent_id),
        lambda: client.fail(intent.intent_id, "again"),
        lambda: client.cancel(intent.intent_id, "again"),
        lambda: client.start(intent.intent_id),
        lambda: client.record_step(intent.intent_id, "late", 1),
    ):
        with pytest.raises(tether.Conflict) as info:
            attempt()
        assert info.value.status == 409
    assert client.list_events(intent.intent_id) == before


def test_waiting_intent_cannot_complete_before_it_resumes(client: tether.Client) -> None:
    intent = waiting_for_human(client)
    with pytest.raises(tether.IllegalTransition):
        client.complete(intent.intent_id, {"done": True})
    assert client.get_intent(intent.intent_id).status is Status.WAITING


def test_a_waiting_intent_cannot_open_a_second_wait(client: tether.Client) -> None:
    intent = waiting_for_human(client)
    with pytest.raises(tether.IllegalTransition):
        client.wait_for_time(intent.intent_id, seconds=60)


def test_cancel_while_waiting_closes_the_wait(client: tether.Client) -> None:
    intent = waiting_for_human(client)
    assert intent.wait is not None
    done = client.cancel(intent.intent_id, "customer withdrew")
    assert done.status is Status.CANCELED and done.wait is None
    wait = client.get_wait(intent.wait.wait_id)
    assert wait.status is tether.WaitStatus.CANCELED
    with pytest.raises(tether.Conflict):
        client.approve(intent.intent_id)


def test_seq_is_gap_free_and_chain_verifies(client: tether.Client) -> None:
    intent = new_intent(client)
    lease = client.start(intent.intent_id)
    for n in range(5):
        client.record_step(intent.intent_id, f"s{n}", n, lease=lease)
    client.complete(intent.intent_id, lease=lease)
    seqs = [e.seq for e in client.list_events(intent.intent_id)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert client.get_intent(intent.intent_id).seq == seqs[-1]
    report = client.verify_audit(intent.intent_id)
    assert report.ok and report.events_checked == len(seqs)


def test_events_since_pages_after_a_seq(client: tether.Client) -> None:
    intent = new_intent(client)
    client.start(intent.intent_id)
    assert [e.seq for e in client.list_events(intent.intent_id, since=1)] == [2, 3]
    assert client.list_events(intent.intent_id, since=3) == []
    with pytest.raises(tether.InvalidRequest):
        client.list_events(intent.intent_id, since=-1)


def test_person_may_cancel_but_not_complete(client: tether.Client) -> None:
    from .conftest import person

    intent = new_intent(client)
    with pytest.raises(tether.Forbidden):
        person(client, "mallory").complete(intent.intent_id, {"fake": True})
    assert person(client, "alice").cancel(intent.intent_id, "dup").status is Status.CANCELED


def test_an_event_on_a_row_that_changed_under_its_write_fails_the_write(store_url: str) -> None:
    """The event's statement checks the intent's seq itself (on PostgreSQL it is sent with
    the commit, and nothing reads its row count): a stale row fails the write, and nothing of
    it is kept. (Never, while a write holds the intent's lock: a guard against a bug.)"""
    from datetime import UTC, datetime

    from tether.engine.context import Ctx
    from tether.engine.records import load_intent
    from tether.engine.transitions import append_event
    from tether.store import Tx

    with tether.connect(store_url) as client:
        intent = new_intent(client)
        system = tether.Principal.system()

        def stale(tx: Tx) -> None:
            row = load_intent(tx, intent.intent_id, system)
            tx.execute("UPDATE intents SET seq = seq + 1 WHERE intent_id = ?", (row.intent_id,))
            append_event(tx, Ctx(datetime.now(UTC), system, ""), row, "intent.noted")

        with pytest.raises((RuntimeError, tether.StoreError)):
            client.store.write(stale)
        events = client.list_events(intent.intent_id)
        assert [e.seq for e in events] == list(range(1, intent.seq + 1))
        assert client.get_intent(intent.intent_id).seq == intent.seq
        assert client.verify_audit().ok
