"""The four waits, their deadlines, and timeouts as their own outcome."""

from __future__ import annotations

import pytest
import tether
from tether import TIMEOUT, HumanTask, OnTimeout, Status, WaitKind, WaitStatus

from .conftest import AGENT, new_intent, person, waiting_for_human

FORM = {
    "type": "object",
    "properties": {"amount": {"type": "number", "maximum": 500}, "ticket": {"type": "string"}},
    "required": ["amount"],
}


# -- human ----------------------------------------------------------------------------------------


def test_only_assignees_or_their_group_may_answer(client: tether.Client) -> None:
    task = HumanTask(title="Refund?", assignees=["alice"], groups=["finance"])
    intent = waiting_for_human(client, task)
    with pytest.raises(tether.Forbidden):
        person(client, "bob").approve(intent.intent_id)
    done = person(client, "carol", "finance").approve(intent.intent_id, "fine")
    assert done.status is Status.IN_PROGRESS
    wait = client.list_waits(intent.intent_id)[0]
    assert (wait.status, wait.outcome, wait.comment, wait.resolved_by) == (
        WaitStatus.RESOLVED, "approved", "fine", "human:carol",
    )  # fmt: skip


def test_an_agent_can_never_answer_a_human_task(
    client: tether.Client, agent: tether.Client
) -> None:
    intent = waiting_for_human(client)
    with pytest.raises(tether.Forbidden) as info:
        agent.approve(intent.intent_id)
    assert info.value.code == "agent_cannot_approve"
    with pytest.raises(tether.Forbidden):
        agent.resume(intent.intent_id, "approved")
    assert client.get_intent(intent.intent_id).status is Status.WAITING


def test_outcome_comment_and_evidence_rules(client: tether.Client) -> None:
    task = HumanTask(title="Ship?", allowed_outcomes=["ship", "hold"], required_comment=True,
                     evidence_required=True)  # fmt: skip
    intent = waiting_for_human(client, task)
    alice = person(client, "alice")
    with pytest.raises(tether.InvalidRequest) as info:
        alice.respond(intent.intent_id, "approved", comment="x", data={"evidence": ["p"]})
    assert info.value.code == "outcome_not_allowed"
    with pytest.raises(tether.InvalidRequest) as info:
        alice.respond(intent.intent_id, "ship", data={"evidence": ["p"]})
    assert info.value.code == "comment_required"
    with pytest.raises(tether.InvalidRequest) as info:
        alice.respond(intent.intent_id, "ship", comment="ok")
    assert info.value.code == "evidence_required"
    assert client.get_intent(intent.intent_id).status is Status.WAITING
    done = alice.respond(intent.intent_id, "ship", comment="ok", data={"evidence": ["photo.jpg"]})
    assert done.status is Status.IN_PROGRESS


def test_form_schema_is_validated_on_respond(client: tether.Client) -> None:
    intent = waiting_for_human(client, HumanTask(title="Amount?", form_schema=FORM))
    alice = person(client, "alice")
    with pytest.raises(tether.InvalidRequest) as info:
        alice.respond(intent.intent_id, "approved", data={"amount": 9000, "ticket": 5})
    assert info.value.code == "form_invalid"
    fields = {e["field"] for e in info.value.details["errors"]}
    assert fields == {"amount", "ticket"}
    done = alice.respond(intent.intent_id, "approved", data={"amount": 120})
    assert client.list_waits(done.intent_id)[0].result == {"amount": 120}


def test_an_invalid_form_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="form_schema"):
        HumanTask(title="x", form_schema={"type": "nonsense"})
    with pytest.raises(ValueError, match="reserved"):
        HumanTask(title="x", allowed_outcomes=["ok", "timeout"])


def test_rejection_is_an_outcome_the_agent_sees(client: tether.Client) -> None:
    intent = waiting_for_human(client)
    person(client, "alice").reject(intent.intent_id, "too much")
    claim = client.claim(AGENT)
    assert claim is not None and claim.resumed
    assert claim.last_wait is not None
    assert (claim.last_wait.outcome, claim.last_wait.status) == ("rejected", WaitStatus.RESOLVED)


def test_opening_a_wait_is_idempotent_by_key(client: tether.Client) -> None:
    intent = new_intent(client)
    lease = client.start(intent.intent_id)
    task = HumanTask(title="Refund?")
    first = client.wait_for_human(intent.intent_id, task, key="approval", lease=lease)
    again = client.wait_for_human(intent.intent_id, task, key="approval", lease=lease)
    assert again.wait_id == first.wait_id
    assert len(client.list_waits(intent.intent_id)) == 1
    with pytest.raises(tether.IdempotencyConflict):
        client.wait_for_human(intent.intent_id, HumanTask(title="Other?"), key="approval")
    # after it resolved, the re-run node gets the resolved wait back, not a new one
    person(client, "alice").approve(intent.intent_id)
    later = client.wait_for_human(intent.intent_id, task, key="approval")
    assert later.wait_id == first.wait_id and later.outcome == "approved"


def test_two_answers_one_wins(client: tether.Client) -> None:
    intent = waiting_for_human(client)
    person(client, "alice").approve(intent.intent_id)
    with pytest.raises(tether.Conflict):
        person(client, "bob").reject(intent.intent_id)
    assert client.list_waits(intent.intent_id)[0].outcome == "approved"


# -- deadlines and timeouts -----------------------------------------------------------------------


def test_human_timeout_is_its_own_outcome(client: tether.Client, clock: tether.FrozenClock) -> None:
    intent = waiting_for_human(client, timeout=3600)
    clock.advance(3599)
    assert client.fire_due_timers() == 0
    clock.advance(2)
    assert client.fire_due_timers() == 1
    current = client.get_intent(intent.intent_id)
    assert current.status is Status.IN_PROGRESS
    wait = client.list_waits(intent.intent_id)[0]
    assert (wait.status, wait.outcome) == (WaitStatus.TIMED_OUT, TIMEOUT)
    assert wait.timed_out and wait.outcome != "rejected"
    assert client.list_events(intent.intent_id)[-1].event_type == "intent.timeout"
    with pytest.raises(tether.WaitResolved):  # a late answer is refused, never applied
        person(client, "alice").approve(intent.intent_id)


def test_timeout_policy_fail(client: tether.Client, clock: tether.FrozenClock) -> None:
    intent = waiting_for_human(client, timeout=10, on_timeout=OnTimeout(action="fail"))
    clock.advance(11)
    client.fire_due_timers()
    failed = client.get_intent(intent.intent_id)
    assert failed.status is Status.FAILED
    assert failed.error is not None and failed.error.code == "wait_timeout"


def test_timeout_policy_default_outcome(client: tether.Client, clock: tether.FrozenClock) -> None:
    intent = waiting_for_human(
        client, timeout=10, on_timeout=OnTimeout(action="default", default_outcome="rejected")
    )
    clock.advance(11)
    client.fire_due_timers()
    wait = client.list_waits(intent.intent_id)[0]
    assert (wait.status, wait.outcome) == (WaitStatus.TIMED_OUT, "rejected")


def test_intent_deadline_times_it_out(client: tether.Client, clock: tether.FrozenClock) -> None:
    intent = new_intent(client, deadline_at=clock.now() + __import__("datetime").timedelta(hours=1))
    lease = client.start(intent.intent_id)
    client.wait_for_human(intent.intent_id, HumanTask(title="Approve?"), lease=lease)
    clock.advance(3601)
    client.fire_due_timers()
    done = client.get_intent(intent.intent_id)
    assert done.status is Status.TIMED_OUT
    assert done.error is not None and done.error.code == "intent_timeout"
    assert client.list_events(intent.intent_id)[-1].event_type == "intent.timed_out"
    assert client.list_waits(intent.intent_id)[0].status is WaitStatus.CANCELED


def test_timers_fire_in_the_next_process_that_opens_the_store(db_url: str) -> None:
    clock = tether.FrozenClock()
    with tether.connect(db_url, clock=clock) as first:
        intent = new_intent(first)
        lease = first.start(intent.intent_id)
        first.wait_for_time(intent.intent_id, seconds=60, lease=lease)
    clock.advance(61)
    with tether.connect(db_url, clock=clock) as second:  # opening fires what is due
        assert second.get_intent(intent.intent_id).status is Status.IN_PROGRESS
        assert second.list_waits(intent.intent_id)[0].outcome == "elapsed"


# -- tool -----------------------------------------------------------------------------------------


def test_tool_wait_with_callback_token(client: tether.Client, clock: tether.FrozenClock) -> None:
    intent = new_intent(client)
    lease = client.start(intent.intent_id)
    wait = client.wait_for_tool(intent.intent_id, "kyc.check", heartbeat_timeout=60, lease=lease)
    assert wait.kind is WaitKind.TOOL and wait.callback_token
    with pytest.raises(tether.NotFound):
        client.complete_tool(wait.callback_token[:-2] + "xx", {"ok": True})
    for _ in range(3):  # heartbeats keep extending it past the first timeout
        clock.advance(50)
        client.heartbeat_tool(wait.callback_token)
        assert client.fire_due_timers() == 0
    assert client.get_intent(intent.intent_id).status is Status.WAITING
    outsider = client.as_actor(tether.Principal.agent("agent://kyc/service"))
    done = outsider.complete_tool(wait.callback_token, {"verified": True})
    assert done.status is Status.IN_PROGRESS
    closed = client.get_wait(wait.wait_id)
    assert (closed.outcome, closed.result) == ("completed", {"verified": True})
    with pytest.raises(tether.WaitResolved):  # single use
        client.complete_tool(wait.callback_token, {"verified": False})


def test_tool_without_heartbeat_times_out(client: tether.Client, clock: tether.FrozenClock) -> None:
    intent = new_intent(client)
    lease = client.start(intent.intent_id)
    wait = client.wait_for_tool(intent.intent_id, "slow.job", heartbeat_timeout=30, lease=lease)
    clock.advance(31)
    client.fire_due_timers()
    assert client.get_wait(wait.wait_id).status is WaitStatus.TIMED_OUT


def test_tool_error_is_reported_as_failed_outcome(client: tether.Client) -> None:
    intent = new_intent(client)
    wait = client.wait_for_tool(intent.intent_id, "pay", lease=client.start(intent.intent_id))
    assert wait.callback_token is not None
    client.complete_tool(wait.callback_token, error="card declined")
    closed = client.get_wait(wait.wait_id)
    assert (closed.outcome, closed.result) == ("failed", {"error": "card declined"})


# -- agent (child intents) ------------------------------------------------------------------------


def test_child_ending_resumes_parent(client: tether.Client) -> None:
    parent = new_intent(client)
    lease = client.start(parent.intent_id)
    child, wait = client.wait_for_agent(
        parent.intent_id,
        "check.fraud.v1",
        "agent://test/fraud",
        {"order": 1},
        key="fraud",
        lease=lease,
    )
    assert (
        client.get_intent(parent.intent_id).waiting_reason is tether.WaitingReason.WAITING_FOR_AGENT
    )
    child_lease = client.start(child.intent_id)
    client.complete(child.intent_id, {"score": 0.1}, lease=child_lease)
    resumed = client.get_intent(parent.intent_id)
    assert resumed.status is Status.IN_PROGRESS
    closed = client.get_wait(wait.wait_id)
    assert closed.outcome == "completed"
    assert closed.result["result"] == {"score": 0.1}


def test_child_failure_is_reported_to_parent(client: tether.Client) -> None:
    parent = new_intent(client)
    child, wait = client.wait_for_agent(parent.intent_id, "check.fraud.v1", "agent://test/fraud",
                                        lease=client.start(parent.intent_id))  # fmt: skip
    client.cancel(child.intent_id, "service down")
    assert client.get_wait(wait.wait_id).outcome == "canceled"


def test_waiting_on_an_existing_intent_that_already_ended(client: tether.Client) -> None:
    other = new_intent(client)
    client.cancel(other.intent_id, "x")
    parent = new_intent(client)
    lease = client.start(parent.intent_id)
    wait = client.open_wait(
        parent.intent_id,
        tether.WaitSpec(kind=WaitKind.AGENT, child_intent_id=other.intent_id),
        lease=lease,
    )
    assert wait.status is WaitStatus.RESOLVED and wait.outcome == "canceled"
    assert client.get_intent(parent.intent_id).status is Status.IN_PROGRESS


# -- time -----------------------------------------------------------------------------------------


def test_time_wait_fires_durably(client: tether.Client, clock: tether.FrozenClock) -> None:
    intent = new_intent(client)
    lease = client.start(intent.intent_id)
    client.wait_for_time(intent.intent_id, seconds=300, lease=lease)
    assert (
        client.get_intent(intent.intent_id).waiting_reason is tether.WaitingReason.WAITING_FOR_TIME
    )
    clock.advance(299)
    assert client.fire_due_timers() == 0
    clock.advance(1)
    assert client.fire_due_timers() == 1
    assert client.get_intent(intent.intent_id).status is Status.IN_PROGRESS
    assert client.fire_due_timers() == 0  # fired exactly once


# -- bad input and misuse -------------------------------------------------------------------------


def test_start_cannot_skip_an_open_wait(client: tether.Client) -> None:
    intent = new_intent(client)
    lease = client.start(intent.intent_id)
    client.wait_for_time(intent.intent_id, seconds=3600, lease=lease)
    with pytest.raises(tether.IllegalTransition):
        client.start(intent.intent_id)
    with pytest.raises(tether.IllegalTransition):
        client.wait_for_time(intent.intent_id, seconds=10)
    assert [w.status for w in client.list_waits(intent.intent_id)] == [WaitStatus.OPEN]


@pytest.mark.parametrize("seconds", [1e20, float("nan"), float("inf"), -5, 0])
def test_absurd_durations_are_invalid_requests(client: tether.Client, seconds: float) -> None:
    intent = new_intent(client)
    lease = client.start(intent.intent_id)
    wait = client.wait_for_tool(intent.intent_id, "t", lease=lease)
    assert wait.callback_token is not None
    with pytest.raises(tether.InvalidRequest):
        client.heartbeat_tool(wait.callback_token, extend_seconds=seconds)
    other = new_intent(client)
    other_lease = client.start(other.intent_id)
    with pytest.raises((tether.InvalidRequest, ValueError)):
        client.wait_for_tool(other.intent_id, "t", heartbeat_timeout=seconds, lease=other_lease)
    with pytest.raises(tether.InvalidRequest):
        client.wait_for_human(
            other.intent_id, HumanTask(title="x"), timeout=seconds, lease=other_lease
        )
    assert client.get_intent(other.intent_id).status is Status.IN_PROGRESS


def test_a_wait_id_must_belong_to_the_intent(client: tether.Client) -> None:
    a = waiting_for_human(client)
    b = waiting_for_human(client)
    assert b.wait is not None
    with pytest.raises(tether.NotFound):
        person(client, "alice").respond(a.intent_id, "approved", wait_id=b.wait.wait_id)
    assert client.get_intent(b.intent_id).status is Status.WAITING


def test_event_page_size_is_bounded(client: tether.Client) -> None:
    intent = new_intent(client)
    for limit in (0, -1, 10_001):
        with pytest.raises(tether.InvalidRequest):
            client.list_events(intent.intent_id, limit=limit)


def test_reply_and_delegate(client: tether.Client) -> None:
    intent = waiting_for_human(client, HumanTask(title="Refund?", assignees=["alice"]))
    alice, bob = person(client, "alice"), person(client, "bob")
    alice.reply(intent.intent_id, "Checking with the warehouse")
    handed = alice.delegate(intent.intent_id, "bob", note="you own stock questions")
    assert handed.human_task is not None and handed.human_task.assignees == ["bob"]
    kinds = [(e.event_type, e.actor) for e in client.list_events(intent.intent_id)][-2:]
    assert kinds == [("intent.reply", "human:alice"), ("intent.delegated", "human:alice")]
    with pytest.raises(tether.Forbidden):  # alice gave it away
        alice.approve(intent.intent_id)
    with pytest.raises(tether.Forbidden):  # only a holder may pass it on
        person(client, "mallory").delegate(intent.intent_id, "mallory")
    assert bob.approve(intent.intent_id).status is Status.IN_PROGRESS
    with pytest.raises(tether.Conflict):  # nothing left to delegate
        bob.delegate(intent.intent_id, "carol")


def test_reminders_then_escalation(client: tether.Client, clock: tether.FrozenClock) -> None:
    task = HumanTask(title="Refund?", assignees=["alice"], remind_after_seconds=60,
                     remind_interval_seconds=120, max_reminders=2, escalate_to="group:leads")  # fmt: skip
    intent = waiting_for_human(client, task, timeout=24 * 3600)

    def kinds() -> list[str]:
        return [e.event_type for e in client.list_events(intent.intent_id)
                if e.event_type in ("intent.reminder", "intent.escalated")]  # fmt: skip

    clock.advance(59)
    client.fire_due_timers()
    assert kinds() == []
    clock.advance(1)
    client.fire_due_timers()
    assert kinds() == ["intent.reminder"]
    clock.advance(120)
    client.fire_due_timers()
    assert kinds() == ["intent.reminder", "intent.reminder"]
    clock.advance(120)
    client.fire_due_timers()
    assert kinds() == ["intent.reminder", "intent.reminder", "intent.escalated"]
    current = client.get_intent(intent.intent_id)
    assert current.human_task is not None and current.human_task.groups == ["leads"]
    assert current.status is Status.WAITING  # escalation is not a timeout, nor a rejection
    with pytest.raises(tether.Forbidden):
        person(client, "alice").approve(intent.intent_id)
    assert person(client, "lee", "leads").approve(intent.intent_id).status is Status.IN_PROGRESS
    clock.advance(3600)
    assert client.fire_due_timers() == 0  # no reminder outlives its task


def test_reminders_stop_after_the_last_one_without_escalation(
    client: tether.Client, clock: tether.FrozenClock
) -> None:
    task = HumanTask(title="Refund?", remind_after_seconds=10, max_reminders=1)
    intent = waiting_for_human(client, task)
    for _ in range(5):
        clock.advance(10)
        client.fire_due_timers()
    events = [e.event_type for e in client.list_events(intent.intent_id)]
    assert events.count("intent.reminder") == 1 and "intent.escalated" not in events


def test_a_persons_tasks_are_found_however_many_others_wait(client: tether.Client) -> None:
    for n in range(30):  # older tasks for other people come first
        waiting_for_human(client, HumanTask(title=f"other {n}", assignees=["bob"]))
    mine = waiting_for_human(client, HumanTask(title="for alice", groups=["ops"]))
    anyone = waiting_for_human(client, HumanTask(title="for anyone"))
    alice = person(client, "alice", "ops")
    assert [i.intent_id for i in alice.list_tasks(mine=True, limit=1)] == [mine.intent_id]
    assert [i.intent_id for i in alice.list_tasks(mine=True)] == [mine.intent_id, anyone.intent_id]
    alice.approve(mine.intent_id)
    assert [i.intent_id for i in alice.list_tasks(mine=True)] == [anyone.intent_id]
    client.delegate(anyone.intent_id, "carol")  # delegated away: no longer alice's
    assert alice.list_tasks(mine=True) == []
    assert [i.intent_id for i in person(client, "carol").list_tasks(mine=True)] == [
        anyone.intent_id
    ]


def test_a_keyed_wait_opened_while_a_retry_waits_for_the_lock_is_returned_to_it() -> None:
    """PostgreSQL: a wait opened with a key, retried while the first opening holds the
    intent's lock, gets the first wait back (idempotent), not "already waiting". The key is
    looked up after the lock is taken, by a statement that sees what the first committed."""
    from tether.engine.waits import open_wait
    from tether.model import WaitSpec

    from ..pg import fresh_schema, second_writer_at_the_lock

    with fresh_schema() as url, tether.connect(url) as client:
        intent = new_intent(client)
        lease = client.start(intent.intent_id)
        task = HumanTask(title="Refund?")
        spec = WaitSpec(kind=WaitKind.HUMAN, human_task=task, key="go")
        opened, retried = second_writer_at_the_lock(
            client,
            intent.intent_id,
            lambda tx, ctx, row: open_wait(tx, ctx, row, spec, lease.token),
            lambda: client.wait_for_human(intent.intent_id, task, key="go", lease=lease),
        )
        assert [w.wait_id for w in retried] == [opened.wait_id]
        assert len(client.list_waits(intent.intent_id)) == 1


def test_a_child_ended_while_its_parent_opens_a_wait_on_it_resolves_that_wait() -> None:
    """PostgreSQL: a parent opens a wait on a child while the child's end waits for the
    child's lock. The end reads the waits on the child once it holds the lock, so it sees the
    new wait and resolves it: the parent is never left waiting on an ended child."""
    from tether.engine.records import load_intent
    from tether.engine.waits import open_wait
    from tether.model import WaitSpec

    from ..pg import fresh_schema, second_writer_at_the_lock

    with fresh_schema() as url, tether.connect(url) as client:
        parent, child = new_intent(client), new_intent(client)
        parent_lease = client.start(parent.intent_id)
        child_lease = client.start(child.intent_id)
        spec = WaitSpec(kind=WaitKind.AGENT, child_intent_id=child.intent_id, key="child")

        def open_on_the_child(tx, ctx, _child_row):  # type: ignore[no-untyped-def]
            row = load_intent(tx, parent.intent_id, ctx.actor)
            return open_wait(tx, ctx, row, spec, parent_lease.token)

        opened, ended = second_writer_at_the_lock(
            client,
            child.intent_id,
            open_on_the_child,
            lambda: client.complete(child.intent_id, {"done": True}, lease=child_lease),
        )
        assert [i.status for i in ended] == [Status.COMPLETED]
        wait = client.get_wait(opened.wait_id)
        assert wait.status is WaitStatus.RESOLVED and wait.outcome == "completed"
        assert client.get_intent(parent.intent_id).status is Status.IN_PROGRESS


def test_a_child_ends_while_its_parent_is_canceled_and_keeps_its_result() -> None:
    """PostgreSQL: a child completes while its parent's cancel holds the parent's lock (and
    closes the parent's wait on the child). The child's end reads that wait again once it
    holds the parent's lock, finds it closed, and completes with its result."""
    from tether.engine.intents import resolve

    from ..pg import fresh_schema, second_writer_at_the_lock

    with fresh_schema() as url, tether.connect(url) as client:
        parent = new_intent(client)
        parent_lease = client.start(parent.intent_id)
        child, wait = client.wait_for_agent(
            parent.intent_id, "check.fraud.v1", "agent://test/fraud", {}, lease=parent_lease
        )
        child_lease = client.start(child.intent_id)
        _, ended = second_writer_at_the_lock(
            client,
            parent.intent_id,
            lambda tx, ctx, row: resolve(tx, ctx, parent.intent_id, Status.CANCELED, reason="x"),
            lambda: client.complete(child.intent_id, {"refunded": 5}, lease=child_lease),
        )
        assert [i.status for i in ended] == [Status.COMPLETED]
        done = client.get_intent(child.intent_id)
        assert done.status is Status.COMPLETED and done.result == {"refunded": 5}
        assert client.get_intent(parent.intent_id).status is Status.CANCELED
        assert client.get_wait(wait.wait_id).status is WaitStatus.CANCELED


@pytest.mark.parametrize("by_wait_id", [True, False])
def test_an_answer_that_waited_for_a_delegation_is_checked_against_the_new_assignee(
    by_wait_id: bool,
) -> None:
    """PostgreSQL: alice answers while a delegation of her task to bob holds the intent's
    lock. Her answer reads the task once it holds the lock, sees bob's name, and is refused."""
    from tether.engine.waits import delegate

    from ..pg import fresh_schema, second_writer_at_the_lock

    with fresh_schema() as url, tether.connect(url) as client:
        intent = waiting_for_human(client, HumanTask(title="Refund?", assignees=["alice"]))
        wait_id = intent.wait.wait_id if by_wait_id and intent.wait else None
        assert not by_wait_id or wait_id is not None
        alice = person(client, "alice")

        def answer() -> object:
            try:
                return alice.respond(intent.intent_id, "approved", wait_id=wait_id)
            except tether.Forbidden as refused:
                return refused

        _, answered = second_writer_at_the_lock(
            client,
            intent.intent_id,
            lambda tx, ctx, row: delegate(tx, ctx, intent.intent_id, "bob", None),
            answer,
        )
        assert len(answered) == 1 and isinstance(answered[0], tether.Forbidden)
        task = client.get_intent(intent.intent_id)
        assert task.status is Status.WAITING and task.human_task is not None
        assert task.human_task.assignees == ["bob"]
