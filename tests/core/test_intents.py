"""Creating, reading and listing intents; idempotency; validation."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import tether
from pydantic import ValidationError
from tether import HumanTask, Principal, Status, WaitingReason

from .conftest import AGENT, new_intent, outsider


def test_create_and_read_back(client: tether.Client) -> None:
    intent = client.create_intent(
        "refund.request.v1", AGENT, {"order": "A-1", "amount": 12.5}, metadata={"team": "ops"}
    )
    again = client.get_intent(intent.intent_id)
    assert again == intent
    assert again.payload == {"order": "A-1", "amount": 12.5}
    assert again.metadata == {"team": "ops"}
    assert again.schema_version == tether.model.SCHEMA_VERSION
    assert tether.ids.is_uuid(again.intent_id) and tether.ids.is_uuid(again.correlation_id)


def test_unknown_intent_is_not_found(client: tether.Client) -> None:
    with pytest.raises(tether.NotFound) as info:
        client.get_intent("01a21a65-0000-7000-8000-000000000000")
    assert info.value.status == 404


def test_other_workspace_cannot_see_it(client: tether.Client) -> None:
    intent = new_intent(client)
    with outsider(client) as other:
        with pytest.raises(tether.NotFound):
            other.get_intent(intent.intent_id)
        assert other.list_intents().items == []


def test_idempotent_create(client: tether.Client) -> None:
    first = new_intent(client, idempotency_key="order-1")
    second = new_intent(client, idempotency_key="order-1")
    assert second.intent_id == first.intent_id
    assert len(client.list_intents().items) == 1
    with pytest.raises(tether.IdempotencyConflict) as info:
        client.create_intent("refund.request.v1", AGENT, {"amount": 999}, idempotency_key="order-1")
    assert info.value.status == 409
    assert len(client.list_intents().items) == 1


def test_idempotency_is_scoped_by_sender(client: tether.Client) -> None:
    a = client.as_actor(Principal.agent("agent://test/a"))
    b = client.as_actor(Principal.agent("agent://test/b"))
    ia = new_intent(a, idempotency_key="same")
    ib = new_intent(b, idempotency_key="same")
    assert ia.intent_id != ib.intent_id
    assert ia.from_agent == "agent://test/a"  # the sender is the credential, not the body


def test_create_with_human_task_waits_at_once(client: tether.Client) -> None:
    intent = new_intent(client, human_task=HumanTask(title="Approve?"))
    assert intent.status is Status.WAITING
    assert intent.waiting_reason is WaitingReason.WAITING_FOR_HUMAN
    assert intent.human_task is not None and intent.human_task.title == "Approve?"
    assert intent.pending_with is not None and intent.pending_with.type == "human"
    types = [e.event_type for e in client.list_events(intent.intent_id)]
    assert types == ["intent.created", "intent.submitted", "intent.human_task_assigned"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("intent_type", "Refund Request"),
        ("intent_type", "refund"),
        ("to_agent", "refunds"),
        ("to_agent", "http://x/y"),
    ],
)
def test_bad_input_is_refused_before_anything_is_stored(
    client: tether.Client, field: str, value: str
) -> None:
    args = {"intent_type": "refund.request.v1", "to_agent": AGENT}
    args[field] = value
    with pytest.raises(ValidationError):
        client.create_intent(args["intent_type"], args["to_agent"])
    assert client.list_intents().items == []


def test_naive_or_past_deadline_is_refused(client: tether.Client) -> None:
    with pytest.raises(ValidationError):
        new_intent(client, deadline_at=datetime(2031, 1, 1))
    with pytest.raises(tether.InvalidRequest):
        new_intent(client, deadline_at=client.clock.now() - timedelta(seconds=1))
    assert client.list_intents().items == []


def test_non_json_payload_is_an_invalid_request(client: tether.Client) -> None:
    with pytest.raises((tether.InvalidRequest, ValidationError)):
        client.create_intent("refund.request.v1", AGENT, {"when": object()})
    assert client.list_intents().items == []


def test_list_filters_and_pages(client: tether.Client) -> None:
    made = [new_intent(client).intent_id for _ in range(7)]
    other = client.create_intent("other.task.v1", "agent://test/other")
    lease = client.start(made[0])
    client.complete(made[0], lease=lease)
    seen: list[str] = []
    cursor = None
    while True:
        page = client.list_intents(to_agent=AGENT, limit=3, cursor=cursor)
        seen += [i.intent_id for i in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(made))  # newest first, every one exactly once
    assert [i.intent_id for i in client.list_intents(intent_type="other.task.v1").items] == [
        other.intent_id
    ]
    done = client.list_intents(status=Status.COMPLETED).items
    assert [i.intent_id for i in done] == [made[0]]
    with pytest.raises(tether.InvalidRequest):
        client.list_intents(limit=0)


def test_child_listing_by_parent(client: tether.Client) -> None:
    parent = new_intent(client)
    lease = client.start(parent.intent_id)
    child, _ = client.wait_for_agent(
        parent.intent_id,
        "check.fraud.v1",
        "agent://test/fraud",
        {"order": 1},
        key="fraud",
        lease=lease,
    )
    assert child.parent_intent_id == parent.intent_id
    kids = client.list_intents(parent_intent_id=parent.intent_id).items
    assert [k.intent_id for k in kids] == [child.intent_id]


@pytest.mark.parametrize("bad", ["", "../mesh/agents/test/refunds/kill#", "a/b", "x?y=1", ".."])
def test_an_id_is_only_ever_an_id(client: tether.Client, bad: str) -> None:
    """Over HTTP an id is one quoted path segment: none reaches another route (here, an
    agent's kill), and every transport answers NotFound."""
    intent = new_intent(client)
    client.register_agent(AGENT)
    for call in (client.get_intent, client.acknowledge, client.list_events):
        with pytest.raises(tether.NotFound):
            call(bad)
    assert client.get_agent(AGENT).status is tether.AgentStatus.ACTIVE
    assert client.get_intent(intent.intent_id).status is Status.SUBMITTED
