"""AXME's official SDK (``axme`` from PyPI) as an outside client of ``tether serve``."""

from __future__ import annotations

import threading
import uuid

import pytest
from axme import AxmeClient, AxmeClientConfig
from axme_sdk.exceptions import AxmeAuthError, AxmeValidationError

from .conftest import Server

AGENT = "agent://acme/refunds"


def sdk(server: Server, key: str) -> AxmeClient:
    return AxmeClient(AxmeClientConfig(base_url=server.url, api_key=key, max_retries=0))


def test_the_axme_sdk_drives_a_human_approval_end_to_end(server: Server) -> None:
    agent = sdk(server, server.key("--role", "agent", "--agent", AGENT))
    person = sdk(server, server.key("--role", "approver", "--subject", "alice@acme.test"))
    correlation = str(uuid.uuid4())
    created = agent.create_intent(
        {
            "intent_type": "refund.request.v1",
            "to_agent": AGENT,
            "payload": {"order": "A-1", "amount": 120},
            "human_task": {"title": "Refund 120?", "assignees": ["alice@acme.test"],
                           "allowed_outcomes": ["approved", "rejected"]},
        },
        correlation_id=correlation,
        idempotency_key="refund-A-1",
    )  # fmt: skip
    assert created["ok"] is True and created["status"] == "WAITING"
    intent_id = created["intent_id"]
    again = agent.create_intent(
        {"intent_type": "refund.request.v1", "to_agent": AGENT, "payload": {"order": "A-1", "amount": 120},
         "human_task": {"title": "Refund 120?", "assignees": ["alice@acme.test"],
                        "allowed_outcomes": ["approved", "rejected"]}},
        correlation_id=correlation, idempotency_key="refund-A-1",
    )  # fmt: skip
    assert again["intent_id"] == intent_id

    read = agent.get_intent(intent_id)["intent"]
    assert (read["status"], read["waiting_reason"]) == ("WAITING", "WAITING_FOR_HUMAN")
    assert read["pending_with"]["type"] == "human" and read["human_task"]["title"] == "Refund 120?"
    events = agent.list_intent_events(intent_id)["events"]
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert events[-1]["event_type"] == "intent.human_task_assigned"

    observed: list[dict[str, object]] = []
    watcher = threading.Thread(
        target=lambda: observed.extend(
            agent.observe(intent_id, since=3, wait_seconds=5, timeout_seconds=60)
        )
    )
    watcher.start()
    terminal: dict[str, object] = {}
    waiter = threading.Thread(
        target=lambda: terminal.update(
            agent.wait_for(intent_id, wait_seconds=5, timeout_seconds=60)
        )
    )
    waiter.start()

    with pytest.raises(AxmeAuthError) as denied:  # an agent never answers a human task
        agent.resume_intent(intent_id, {"task_result": {"outcome": "approved"}})
    assert denied.value.status_code == 403
    resumed = person.resume_intent(
        intent_id,
        {"task_result": {"outcome": "approved", "comment": "photos ok", "ticket": "SUP-1"}},
    )
    assert resumed["intent"]["status"] == "IN_PROGRESS"
    done = agent.resolve_intent(intent_id, {"status": "COMPLETED", "result": {"refunded": 120}})
    assert done["intent"]["status"] == "COMPLETED"
    assert done["completion_delivery"]["delivered"] is False
    stored = agent.list_intent_events(intent_id)["events"]
    assert done["event"] == stored[-1]  # the event that ended it, as stored
    assert done["event"]["event_type"] == "intent.completed"
    with pytest.raises(AxmeValidationError) as again_err:
        agent.resolve_intent(intent_id, {"status": "CANCELED", "reason": "late"})
    assert again_err.value.status_code == 409

    watcher.join(60)
    waiter.join(60)
    assert terminal.get("status") == "COMPLETED"
    seqs = [e["seq"] for e in observed]
    assert seqs == sorted(seqs) and seqs[0] == 4 and observed[-1]["status"] == "COMPLETED"
    kinds = [e["event_type"] for e in observed]
    assert "intent.resumed" in kinds and kinds[-1] == "intent.completed"
    wait = agent._request_json("GET", f"/v1/intents/{intent_id}/waits", retryable=True)["waits"][0]
    assert wait["result"] == {"ticket": "SUP-1"} and wait["comment"] == "photos ok"


def test_the_axme_sdk_sees_tethers_errors(server: Server) -> None:
    agent = sdk(server, server.key("--role", "agent", "--agent", AGENT))
    with pytest.raises(AxmeValidationError) as bad:
        agent.create_intent({"intent_type": "Not A Type", "to_agent": AGENT, "payload": {}},
                            correlation_id=str(uuid.uuid4()))  # fmt: skip
    assert bad.value.status_code == 422
    nobody = sdk(server, "tk_0000000000000000_not-a-real-key-at-all")
    with pytest.raises(AxmeAuthError) as unauth:
        nobody.get_intent(str(uuid.uuid4()))
    assert unauth.value.status_code == 401


def test_the_axme_sdk_listens_to_an_agents_work(server: Server) -> None:
    sender = sdk(server, server.key("--role", "agent", "--agent", "agent://acme/front"))
    agent = sdk(server, server.key("--role", "agent", "--agent", AGENT))
    person = sdk(server, server.key("--role", "approver", "--subject", "alice@acme.test"))
    waiting = sender.create_intent(
        {"intent_type": "refund.request.v1", "to_agent": AGENT, "payload": {},
         "human_task": {"title": "ok?"}},
        correlation_id=str(uuid.uuid4()),
    )["intent_id"]  # fmt: skip
    fresh = sender.create_intent({"intent_type": "refund.request.v1", "to_agent": AGENT, "payload": {}},
                                 correlation_id=str(uuid.uuid4()))["intent_id"]  # fmt: skip
    stream = agent.listen(AGENT, since=0, wait_seconds=2)
    first = [next(stream), next(stream)]
    assert [(e["intent_id"], e["status"]) for e in first] == [
        (waiting, "WAITING"),
        (fresh, "SUBMITTED"),
    ]
    person.resume_intent(waiting, {"task_result": {"outcome": "approved"}})
    resumed = next(stream)  # the resumed intent comes back to its agent
    assert (resumed["intent_id"], resumed["status"]) == (waiting, "IN_PROGRESS")
    assert resumed["seq"] > first[-1]["seq"]
    with pytest.raises(AxmeAuthError):  # an agent reads only its own work
        next(sender.listen(AGENT, wait_seconds=1))


def test_the_axme_inbox_approve_reply_delegate_and_completion_delivery(server: Server) -> None:
    front = sdk(server, server.key("--role", "agent", "--agent", "agent://acme/front"))
    agent = sdk(server, server.key("--role", "agent", "--agent", AGENT))
    alice = sdk(server, server.key("--role", "approver", "--subject", "alice@acme.test"))
    bob = sdk(server, server.key("--role", "approver", "--subject", "bob@acme.test"))

    def make(title: str) -> str:
        return str(front.create_intent(
            {"intent_type": "refund.request.v1", "to_agent": AGENT, "reply_to": "agent://acme/front",
             "payload": {"n": 1}, "human_task": {"title": title, "assignees": ["alice@acme.test"]}},
            correlation_id=str(uuid.uuid4()),
        )["intent_id"])  # fmt: skip

    first, second = make("First?"), make("Second?")
    mine = alice.list_inbox()["threads"]
    assert [t["thread_id"] for t in mine] == [first, second] and {t["status"] for t in mine} == {
        "pending"
    }
    alice.reply_inbox_thread(first, message="Looking at it")
    approved = alice.approve_inbox_thread(first, {"comment": "fine"})["thread"]
    assert approved["status"] == "active"
    assert [e["event_type"] for e in approved["timeline"]][-2:] == [
        "intent.reply",
        "intent.resumed",
    ]
    with pytest.raises(AxmeValidationError) as twice:
        alice.approve_inbox_thread(first, {"comment": "again"})
    assert twice.value.status_code == 409

    handed = alice.delegate_inbox_thread(second, {"delegate_to": "bob@acme.test", "note": "yours"})[
        "thread"
    ]
    assert handed["human_task"]["assignees"] == ["bob@acme.test"]
    with pytest.raises(AxmeAuthError):  # alice no longer holds it
        alice.reject_inbox_thread(second, {"comment": "no"})
    assert bob.reject_inbox_thread(second, {"comment": "no stock"})["thread"]["status"] == "active"

    done = agent.resolve_intent(first, {"status": "COMPLETED", "result": {"refunded": True}})
    assert done["completion_delivery"] == {"delivered": True, "reason": None, "reply_to": "agent://acme/front",
                                           "thread_id": first}  # fmt: skip
    inbox = front.list_inbox(owner_agent="agent://acme/front")["threads"]
    statuses = {t["thread_id"]: t["status"] for t in inbox}
    assert statuses == {first: "done", second: "active"}
    page = front.list_inbox_changes(limit=1)
    assert len(page["changes"]) == 1 and page["has_more"] is True
    rest = front.list_inbox_changes(cursor=page["next_cursor"], limit=10)
    seen = [c["thread"]["thread_id"] for c in page["changes"] + rest["changes"]]
    assert sorted(seen) == sorted([first, second]) and rest["has_more"] is False
    with pytest.raises(AxmeAuthError):  # an agent reads only its own inbox
        agent.list_inbox(owner_agent="agent://acme/front")
