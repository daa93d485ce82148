"""Rows to models and back: the one place that knows how intents and waits are stored."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..clock import from_text, to_text
from ..errors import CorruptStore, InvalidRequest, NotFound
from ..model import (
    ErrorInfo,
    Event,
    Intent,
    LeaseInfo,
    Principal,
    PrincipalKind,
    Status,
    Wait,
    WaitingReason,
)
from ..store import Tx
from .audit import canonical_json

INTENT_COLUMNS = (
    "intent_id, workspace, intent_type, correlation_id, from_agent, to_agent, reply_to, "
    "parent_intent_id, payload, metadata, status, waiting_reason, wait_id, seq, head_hash, "
    "result, error, deadline_at, lease_owner, lease_token, lease_expires_at, created_at, "
    "updated_at, schema_version"
)
WAIT_COLUMNS = (
    "wait_id, intent_id, wait_key, kind, status, spec, child_intent_id, opened_at, deadline_at, "
    "resolved_at, outcome, result, comment, resolved_by, schema_version"
)
EVENT_COLUMNS = (
    "intent_id, seq, event_type, status, waiting_reason, actor, at, details, hash, schema_version"
)


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    """JSON for storage; a value JSON cannot hold is the caller's error, not a crash."""
    try:
        return _COMPACT.encode(value)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"value is not JSON-serializable: {exc}") from exc


def as_stored(value: Any) -> Any:
    """``value`` as it reads back from the store: JSON's (object keys are strings, tuples
    lists). What is hashed into an audit event must be this, or a re-read cannot verify."""
    return json.loads(dumps(value))


def loads(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CorruptStore(f"stored {what} is not valid JSON") from exc


def ts(value: str | None) -> datetime | None:
    return from_text(value) if value is not None else None


def tstext(value: datetime | None) -> str | None:
    return to_text(value) if value is not None else None


@dataclass
class IntentRow:
    """An intent as read inside a transaction, with everything the engine needs to change it."""

    intent_id: str
    workspace: str
    intent_type: str
    correlation_id: str
    from_agent: str | None
    to_agent: str
    reply_to: str | None
    parent_intent_id: str | None
    payload: str
    metadata: str
    status: Status
    waiting_reason: WaitingReason | None
    wait_id: str | None
    seq: int
    head_hash: str
    result: str | None
    error: str | None
    deadline_at: str | None
    lease_owner: str | None
    lease_token: str | None
    lease_expires_at: str | None
    created_at: str
    updated_at: str
    schema_version: int
    waited_on_by: list[str] | None = None
    """The open waits of other intents on this one, when read with it (by
    :func:`load_intent_and` and :data:`WAITING_ON`); None if not read."""

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> IntentRow:
        r = cls(*row)
        r.status = Status(r.status)
        r.waiting_reason = WaitingReason(r.waiting_reason) if r.waiting_reason else None
        return r

    def lease_live(self, now: str) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at > now

    def to_model(self, wait: Wait | None) -> Intent:
        error = loads(self.error, "error")
        return Intent(
            schema_version=self.schema_version,
            intent_id=self.intent_id,
            workspace=self.workspace,
            intent_type=self.intent_type,
            correlation_id=self.correlation_id,
            from_agent=self.from_agent,
            to_agent=self.to_agent,
            reply_to=self.reply_to,
            parent_intent_id=self.parent_intent_id,
            payload=loads(self.payload, "payload"),
            metadata=loads(self.metadata, "metadata"),
            status=self.status,
            waiting_reason=self.waiting_reason,
            seq=self.seq,
            created_at=from_text(self.created_at),
            updated_at=from_text(self.updated_at),
            deadline_at=ts(self.deadline_at),
            result=loads(self.result, "result"),
            error=ErrorInfo.model_validate(error) if error is not None else None,
            wait=wait,
            lease=(
                LeaseInfo(owner=self.lease_owner, expires_at=from_text(self.lease_expires_at))
                if self.lease_owner and self.lease_expires_at
                else None
            ),
        )


def visible(row: IntentRow, actor: Principal) -> bool:
    return actor.kind is PrincipalKind.SYSTEM or row.workspace == actor.workspace


def for_update(tx: Tx, *, skip_locked: bool = False) -> str:
    """Row locking for a write on a dialect with concurrent writers (SQLite has one writer)."""
    if tx.dialect != "postgresql" or not getattr(tx, "writing", False):
        return ""
    return " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"


def load_intent(tx: Tx, intent_id: str, actor: Principal) -> IntentRow:
    """The intent, or :class:`NotFound` (also for another workspace's intents). In a write on
    PostgreSQL the row stays locked until the transaction ends."""
    return load_intent_with(tx, intent_id, actor)[0]


WAITING_ON = "SELECT wait_id FROM waits WHERE child_intent_id = ? AND status = 'open'"
"""The open waits on an intent (its id the one parameter): its parents' waits for it."""


def load_intent_and(
    tx: Tx, intent_id: str, actor: Principal, sql: str, params: Sequence[Any]
) -> tuple[IntentRow, list[Any]]:
    """:func:`load_intent`, and the rows of the query ``sql``: a statement of its own, run
    once the intent's statement has ended (a dialect sends both in one round trip). Unlike
    :func:`load_intent_with`'s, it sees all that the lock's previous holder committed."""
    found, rows = tx.all_of(
        [(f"SELECT {INTENT_COLUMNS} FROM intents WHERE intent_id = ?{for_update(tx)}",
          (intent_id,)), (sql, params)]
    )  # fmt: skip
    intent = IntentRow.from_row(found[0]) if found else None
    if intent is None or not visible(intent, actor):
        raise NotFound(f"no intent {intent_id}", details={"intent_id": intent_id})
    return intent, rows


def load_intent_with(
    tx: Tx, intent_id: str, actor: Principal, also: str = "", params: Sequence[Any] = ()
) -> tuple[IntentRow, Any]:
    """:func:`load_intent`, and the value of the scalar expression ``also`` (with
    ``params``) read in the same statement, which saves a round trip: it may name the
    intent's columns (``intents.intent_id``).

    On PostgreSQL ``also`` reads as of the statement's start: if the statement waited for
    the intent's lock, what the lock's holder committed meanwhile is not in it. Only for a
    check whose miss a unique key catches before anything else could act on the miss (the
    write's insert then fails, and the write is run again, when it sees the row)."""
    extra = f", ({also})" if also else ""
    row = tx.one(
        f"SELECT {INTENT_COLUMNS}{extra} FROM intents WHERE intent_id = ?{for_update(tx)}",
        (*params, intent_id),
    )
    if row is None:
        raise NotFound(f"no intent {intent_id}", details={"intent_id": intent_id})
    intent = IntentRow.from_row(row[:-1] if also else row)
    if not visible(intent, actor):
        raise NotFound(f"no intent {intent_id}", details={"intent_id": intent_id})
    return intent, row[-1] if also else None


def wait_from_row(row: tuple[Any, ...], token: str | None = None) -> Wait:
    spec = loads(row[5], "wait spec")
    return Wait(
        wait_id=row[0],
        intent_id=row[1],
        key=row[2],
        kind=row[3],
        status=row[4],
        child_intent_id=row[6],
        opened_at=from_text(row[7]),
        deadline_at=ts(row[8]),
        resolved_at=ts(row[9]),
        outcome=row[10],
        result=loads(row[11], "wait result"),
        comment=row[12],
        resolved_by=row[13],
        schema_version=row[14],
        on_timeout=spec.get("on_timeout", {}),
        human_task=spec.get("human_task"),
        tool_name=spec.get("tool_name"),
        heartbeat_timeout_seconds=spec.get("heartbeat_timeout_seconds"),
        fire_at=spec.get("fire_at"),
        callback_token=token,
    )


WAIT_BY_ID = f"SELECT {WAIT_COLUMNS} FROM waits WHERE wait_id = ?"
"""A wait's row (its id the one parameter)."""


def load_wait_row(tx: Tx, wait_id: str) -> tuple[Any, ...]:
    row = tx.one(WAIT_BY_ID, (wait_id,))
    if row is None:
        raise NotFound(f"no wait {wait_id}", details={"wait_id": wait_id})
    return row


def event_of(fields: dict[str, Any]) -> Event:
    """The event ``transitions.append_event`` recorded, from the fields it returned (as
    :func:`event_from_row` would read it back)."""
    return Event(**{**fields, "at": from_text(fields["at"]), "schema_version": 1})


def event_from_row(row: tuple[Any, ...]) -> Event:
    return Event(
        intent_id=row[0],
        seq=row[1],
        event_type=row[2],
        status=row[3],
        waiting_reason=row[4],
        actor=row[5],
        at=from_text(row[6]),
        details=loads(row[7], "event details"),
        hash=row[8],
        schema_version=row[9],
    )


def request_hash(value: Any) -> str:
    import hashlib

    return hashlib.sha256(canonical_json(value).encode()).hexdigest()
