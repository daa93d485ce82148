"""The audit chain: tampering with the stored trail is detected."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import tether

from .conftest import new_intent, outsider


def _intent_with_trail(db_url: str) -> str:
    with tether.connect(db_url) as client:
        intent = new_intent(client)
        lease = client.start(intent.intent_id)
        client.record_step(intent.intent_id, "a", {"x": 1}, lease=lease)
        client.complete(intent.intent_id, {"ok": True}, lease=lease)
        new_intent(client)  # an untouched neighbour
        assert client.verify_audit().ok
        return intent.intent_id


def _edit(tmp_path: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(tmp_path / "tether.db")
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def _verify(db_url: str) -> tether.ChainReport:
    with tether.connect(db_url) as client:
        return client.verify_audit()


def test_edited_details_are_detected(db_url: str, tmp_path: Path) -> None:
    intent_id = _intent_with_trail(db_url)
    _edit(
        tmp_path,
        'UPDATE events SET details = \'{"key":"b"}\' WHERE intent_id = ? AND seq = 4',
        intent_id,
    )
    report = _verify(db_url)
    assert not report.ok and report.intents_checked == 2
    assert any("event 4 does not match" in p for p in report.problems)


def test_edited_actor_or_status_is_detected(db_url: str, tmp_path: Path) -> None:
    intent_id = _intent_with_trail(db_url)
    _edit(
        tmp_path,
        "UPDATE events SET actor = 'human:mallory' WHERE intent_id = ? AND seq = 5",
        intent_id,
    )
    assert not _verify(db_url).ok


def test_removed_last_event_is_detected(db_url: str, tmp_path: Path) -> None:
    intent_id = _intent_with_trail(db_url)
    _edit(tmp_path, "DELETE FROM events WHERE intent_id = ? AND seq = 5", intent_id)
    report = _verify(db_url)
    assert not report.ok and any("ends at seq 4" in p for p in report.problems)


def test_removed_middle_event_is_detected(db_url: str, tmp_path: Path) -> None:
    intent_id = _intent_with_trail(db_url)
    _edit(tmp_path, "DELETE FROM events WHERE intent_id = ? AND seq = 2", intent_id)
    assert any("expected seq 2" in p for p in _verify(db_url).problems)


def test_hash_is_sha256_of_previous_hash_and_canonical_event(client: tether.Client) -> None:
    import hashlib
    import json

    intent = new_intent(client)
    client.start(intent.intent_id)
    prev = ""
    for e in client.list_events(intent.intent_id):
        body = {
            "intent_id": e.intent_id,
            "seq": e.seq,
            "event_type": e.event_type,
            "status": e.status.value,
            "waiting_reason": e.waiting_reason.value if e.waiting_reason else None,
            "actor": e.actor,
            "at": e.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "details": e.details,
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert e.hash == hashlib.sha256((prev + text).encode()).hexdigest()
        prev = e.hash


def test_a_hand_edited_status_is_detected(db_url: str, tmp_path: Path) -> None:
    intent_id = _intent_with_trail(db_url)
    _edit(tmp_path, "UPDATE intents SET status = 'CANCELED' WHERE intent_id = ?", intent_id)
    report = _verify(db_url)
    assert not report.ok
    assert report.problems == [
        f"{intent_id}: the intent says CANCELED but its trail ends in COMPLETED"
    ]


def test_values_with_keys_json_turns_into_text_keep_the_chain_verifiable(
    client: tether.Client,
) -> None:
    """A result whose object keys are not text (2 sorts before 10 as a number, after it as
    text) is hashed as it reads back, so the trail still verifies; the first run of a step
    sees the value a replay will read."""
    intent = new_intent(client)
    lease = client.start(intent.intent_id)
    step = client.record_step(intent.intent_id, "k", {2: "a", 10: "b", "x": (1, 2)}, lease=lease)
    assert step.result == {"2": "a", "10": "b", "x": [1, 2]}
    assert client.list_steps(intent.intent_id)[0].result == step.result
    client.wait_for_tool(intent.intent_id, "refund", lease=lease)
    client.resume(intent.intent_id, "done", result={2: "a", 10: "b", 1: {3: True, "y": 0}})
    resumed = client.list_events(intent.intent_id)[-1]
    assert resumed.details["result"] == {"1": {"3": True, "y": 0}, "2": "a", "10": "b"}
    report = client.verify_audit(intent.intent_id)
    assert report.ok, report.problems


def test_text_a_store_cannot_hold_is_refused_and_nothing_is_stored(client: tether.Client) -> None:
    """A lone surrogate is valid in JSON's escapes and in Python, not in UTF-8: 422."""
    with pytest.raises(tether.InvalidRequest) as refused:
        new_intent(client, metadata={"note": "\ud800"})
    assert refused.value.code == "invalid_text"
    intent = new_intent(client)
    lease = client.start(intent.intent_id)
    with pytest.raises(tether.InvalidRequest):
        client.record_step(intent.intent_id, "bad \udfff key", {"ok": True}, lease=lease)
    assert [i.intent_id for i in client.list_intents().items] == [intent.intent_id]
    assert client.list_steps(intent.intent_id) == []
    assert client.verify_audit(intent.intent_id).ok


def test_an_event_appended_beyond_the_intents_head_is_detected(db_url: str, tmp_path: Path) -> None:
    intent_id = _intent_with_trail(db_url)
    _edit(
        tmp_path,
        "INSERT INTO events (intent_id, seq, event_type, status, waiting_reason, actor, at, "
        "details, hash, schema_version) SELECT intent_id, seq + 1, event_type, status, "
        "waiting_reason, actor, at, details, hash, 1 FROM events WHERE intent_id = ? "
        "ORDER BY seq DESC LIMIT 1",
        intent_id,
    )
    report = _verify(db_url)
    assert not report.ok and "the trail goes on to seq" in report.problems[0]


def test_verifying_while_intents_are_written_finds_nothing_wrong() -> None:
    """PostgreSQL reads each statement as of its own start: an event committed between the
    read of an intent's head and of its trail must not look like a broken chain."""
    import threading

    from ..pg import fresh_schema

    with fresh_schema() as url, tether.connect(url) as client:
        intent = new_intent(client)
        lease = client.start(intent.intent_id)
        stop = threading.Event()

        def write() -> None:
            i = 0
            while not stop.is_set():
                client.record_step(intent.intent_id, f"s{i}", {"i": i}, lease=lease)
                i += 1

        writer = threading.Thread(target=write)
        writer.start()
        try:
            reports = [client.verify_audit(intent.intent_id) for _ in range(300)]
        finally:
            stop.set()
            writer.join()
        assert [r.problems for r in reports if not r.ok] == []
        assert client.verify_audit().ok


def test_verifying_an_intent_this_client_cannot_see_is_not_found(client: tether.Client) -> None:
    intent = new_intent(client)
    assert client.verify_audit(intent.intent_id).ok
    with pytest.raises(tether.NotFound):
        client.verify_audit("no-such-intent")
    with outsider(client) as other, pytest.raises(tether.NotFound):
        other.verify_audit(intent.intent_id)  # another workspace's
