"""The tamper-evident audit trail: every event is chained to the one before it.

``hash = sha256(previous hash + canonical JSON of the event)`` with the empty string before
the first event. The intent row keeps the head (last seq and hash), so removing events from
the end is detected as well as editing any of them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..errors import InvalidRequest
from ..model import ChainReport
from ..store import Tx

GENESIS = ""


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_encode = _CANONICAL.encode


def _null_or(text: str | None) -> str:
    return "null" if text is None else _encode(text)


def canonical_json(value: Any) -> str:
    """One byte-exact JSON text per value: sorted keys, no spaces, UTF-8."""
    try:
        return _encode(value)
    except (TypeError, ValueError) as exc:  # (keys of mixed types cannot be sorted)
        raise InvalidRequest(f"value is not JSON-serializable: {exc}") from exc


def event_hash(
    prev_hash: str,
    *,
    intent_id: str,
    seq: int,
    event_type: str,
    status: str,
    waiting_reason: str | None,
    actor: str,
    at: str,
    details_json: str,
) -> str:
    """The chain hash of an event: ``sha256(prev_hash + canonical JSON of the event)``.

    ``details_json`` is the canonical JSON of the details; the text hashed is exactly
    ``canonical_json`` of the event as a dict (keys in sorted order), built without
    encoding the details twice on the write path.
    """
    body = (
        f'{{"actor":{_encode(actor)},"at":{_encode(at)},"details":{details_json},'
        f'"event_type":{_encode(event_type)},"intent_id":{_encode(intent_id)},"seq":{seq},'
        f'"status":{_encode(status)},"waiting_reason":{_null_or(waiting_reason)}}}'
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


_EVENT_COLUMNS = "intent_id, seq, event_type, status, waiting_reason, actor, at, details, hash"


def verify(tx: Tx, intent_ids: list[str]) -> tuple[int, list[str]]:
    """Check the chains of these intents; return (events checked, problems found)."""
    problems: list[str] = []
    checked = 0
    for intent_id in intent_ids:
        head = tx.one(
            "SELECT seq, head_hash, status, waiting_reason FROM intents WHERE intent_id = ?",
            (intent_id,),
        )
        if head is None:
            problems.append(f"{intent_id}: no such intent")
            continue
        prev = GENESIS
        expected_seq = 1
        last: tuple[str, str | None] = ("", None)
        # the trail up to the head just read: an event committed since (PostgreSQL reads each
        # statement as of its own start) is not yet in it, and is checked below
        rows = tx.all(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE intent_id = ? AND seq <= ? ORDER BY seq",
            (intent_id, head[0]),
        )
        for row in rows:
            checked += 1
            event = dict(zip(_EVENT_COLUMNS.split(", "), row, strict=True))
            if event["seq"] != expected_seq:
                problems.append(f"{intent_id}: expected seq {expected_seq}, found {event['seq']}")
                break
            try:
                event["details"] = json.loads(event["details"])
            except ValueError:
                problems.append(f"{intent_id}: event {event['seq']} has unreadable details")
                break
            digest = event_hash(
                prev,
                intent_id=event["intent_id"],
                seq=event["seq"],
                event_type=event["event_type"],
                status=event["status"],
                waiting_reason=event["waiting_reason"],
                actor=event["actor"],
                at=event["at"],
                details_json=canonical_json(event["details"]),
            )
            if digest != event["hash"]:
                problems.append(f"{intent_id}: event {event['seq']} does not match its hash")
                break
            prev = event["hash"]
            last = (event["status"], event["waiting_reason"])
            expected_seq += 1
        else:
            if (head[0], head[1]) != (expected_seq - 1, prev):
                problems.append(
                    f"{intent_id}: the trail ends at seq {expected_seq - 1} but the intent "
                    f"records seq {head[0]}"
                )
            elif rows and (head[2], head[3]) != last:
                problems.append(
                    f"{intent_id}: the intent says {head[2]} but its trail ends in {last[0]}"
                )
            else:  # events the intent does not record (in one statement: one snapshot)
                beyond = tx.one(_BEYOND_THE_HEAD, (intent_id, intent_id))
                if beyond is not None and beyond[0] is not None and beyond[0] > beyond[1]:
                    problems.append(
                        f"{intent_id}: the trail goes on to seq {beyond[0]} but the intent "
                        f"records seq {beyond[1]}"
                    )
    return checked, problems


_BEYOND_THE_HEAD = (
    "SELECT (SELECT MAX(seq) FROM events WHERE intent_id = ?), "
    "(SELECT seq FROM intents WHERE intent_id = ?)"
)


def verify_all(
    tx: Tx, after: str, batch: int, workspace: str | None = None
) -> tuple[list[str], int, list[str]]:
    """Verify the next ``batch`` intents after id ``after`` (of ``workspace`` if given);
    return (ids, events, problems)."""
    if workspace is None:
        sql = "SELECT intent_id FROM intents WHERE intent_id > ? ORDER BY intent_id LIMIT ?"
        params: tuple[Any, ...] = (after, batch)
    else:
        sql = (
            "SELECT intent_id FROM intents WHERE workspace = ? AND intent_id > ? "
            "ORDER BY intent_id LIMIT ?"
        )
        params = (workspace, after, batch)
    ids = [r[0] for r in tx.all(sql, params)]
    checked, problems = verify(tx, ids)
    return ids, checked, problems


def report(intents: int, events: int, problems: list[str]) -> ChainReport:
    return ChainReport(
        intents_checked=intents, events_checked=events, ok=not problems, problems=problems
    )
