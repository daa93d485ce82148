"""The one place an intent changes: append an event to its chain and update its row."""

from __future__ import annotations

from typing import Any

from ..model import TERMINAL, Status, WaitingReason
from ..store import Tx, work_for
from . import webhooks
from .audit import canonical_json, event_hash
from .context import Ctx
from .lifecycle import check_transition
from .records import EVENT_COLUMNS, IntentRow, dumps

_UNSET: Any = object()

RUNNABLE = frozenset({Status.SUBMITTED, Status.DELIVERED, Status.ACKNOWLEDGED, Status.IN_PROGRESS})
"""The statuses a worker may claim an intent in (when its lease is free)."""


class _Counter:
    """Events committed by this process (read by the server's metrics)."""

    value = 0

    def add_one(self) -> None:
        self.value += 1  # runs on the store's commit path, one thread at a time


EVENTS_COMMITTED = _Counter()


def append_event(
    tx: Tx,
    ctx: Ctx,
    row: IntentRow,
    event_type: str,
    status: Status | None = None,
    *,
    waiting_reason: WaitingReason | None = None,
    details: dict[str, Any] | None = None,
    wait_id: str | Any | None = _UNSET,
    result: Any = _UNSET,
    error: Any = _UNSET,
    release_lease: bool = False,
    lease: tuple[str, str, str] | None = None,
) -> dict[str, Any]:
    """Record ``event_type`` on ``row`` (moving it to ``status`` if given) and persist it;
    return the event's fields (``records.event_of`` makes them an ``Event``).

    The transition is checked against the lifecycle table; WAITING carries exactly one
    waiting reason and no other status carries one. Reaching a terminal status cancels the
    intent's timers, releases its lease and tells a parent that waits on it. ``lease``
    (owner, token, expiry) is taken in the same update.
    """
    target = status if status is not None else row.status
    if target is not row.status or row.status in TERMINAL:
        check_transition(row.status, target, row.intent_id)
    if waiting_reason is not None:
        reason: WaitingReason | None = waiting_reason
    elif target is row.status:
        reason = row.waiting_reason
    else:
        reason = None
    if (reason is not None) != (target is Status.WAITING):
        raise AssertionError("WAITING carries exactly one waiting reason; no other status does")
    seq = row.seq + 1
    details_json = canonical_json(details or {})
    reason_text = reason.value if reason else None
    actor = ctx.actor.actor
    digest = event_hash(
        row.head_hash,
        intent_id=row.intent_id,
        seq=seq,
        event_type=event_type,
        status=target.value,
        waiting_reason=reason_text,
        actor=actor,
        at=ctx.now_text,
        details_json=details_json,
    )
    insert_event = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"
    event_params = (row.intent_id, seq, event_type, target.value, reason_text, actor,
                    ctx.now_text, details_json, digest)  # fmt: skip
    together = tx.dialect == "postgresql"  # one round trip for the event and the row
    if not together:
        tx.execute(insert_event, event_params)
    # Only the columns that change are written: an unchanged indexed column (status, agent)
    # would otherwise rewrite its index pages on every event.
    sets: dict[str, Any] = {"seq": seq, "head_hash": digest, "updated_at": ctx.now_text}
    bump = target is not row.status or reason is not row.waiting_reason
    if bump:
        sets["status"], sets["waiting_reason"] = target.value, reason_text
        # the agent's work feed: a per-agent sequence, in commit order (the agent row is
        # locked until the transaction ends), that streams and polls page on. On PostgreSQL
        # the bump is sent with the commit, so the lock is held for the commit alone.
        if together:
            tx.execute_at_commit(
                _BUMP_FEED, (row.workspace, row.to_agent, row.intent_id), order=row.to_agent
            )
        else:
            bumped = tx.one(
                "UPDATE agents SET feed_seq = feed_seq + 1 WHERE workspace = ? AND address = ? "
                "RETURNING feed_seq",
                (row.workspace, row.to_agent),
            )
            if bumped is not None:
                sets["feed_seq"] = bumped[0]
    if lease is not None:
        sets["lease_owner"], sets["lease_token"], sets["lease_expires_at"] = lease
        row.lease_owner, row.lease_token, row.lease_expires_at = lease
    if wait_id is not _UNSET:  # always written: callers may have cleared row.wait_id already
        sets["wait_id"] = row.wait_id = wait_id
    if result is not _UNSET:
        sets["result"] = row.result = dumps(result)
    if error is not _UNSET:
        sets["error"] = row.error = dumps(error)
    if (release_lease or target in TERMINAL) and row.lease_token is not None:
        sets["lease_owner"] = sets["lease_token"] = sets["lease_expires_at"] = None
        row.lease_owner = row.lease_token = row.lease_expires_at = None
    if target in RUNNABLE and row.lease_token is None:
        tx.touch(work_for(row.to_agent))  # claimable now: wake the agent's idle workers
    tx.after_commit(EVENTS_COMMITTED.add_one)
    pushed = {
        "intent_id": row.intent_id, "seq": seq, "event_type": event_type,
        "status": target.value, "waiting_reason": reason_text, "actor": actor,
        "at": ctx.now_text, "details": details or {}, "hash": digest,
    }  # fmt: skip
    if not together:
        webhooks.enqueue(tx, ctx, row.workspace, pushed)
    row.status, row.waiting_reason, row.seq, row.head_hash = target, reason, seq, digest
    row.updated_at = ctx.now_text
    assigned = ", ".join(f"{c} = ?" for c in sets)
    where = "WHERE intent_id = ? AND seq = ?"
    params = (*sets.values(), row.intent_id, seq - 1)
    if together:
        # One statement, sent with the write's next statement or its commit (the write
        # does not wait for it): the intent's update (u) and the webhook deliveries (d) are
        # common table expressions of the event's insert, which takes the intent's id from
        # the update. Should the row have changed under us (never, while the write holds
        # its lock), the update matches nothing and the event's id is NULL, which its
        # table refuses: the statement fails and the write rolls back, seq never lost.
        ctes = [("u", f"UPDATE intents SET {assigned} {where} RETURNING intent_id", params),
                ("d", *webhooks.enqueue_sql(ctx, row.workspace, pushed))]  # fmt: skip
        if target in TERMINAL:
            ctes.append(("t", _CANCEL_TIMERS, (row.intent_id,)))
        tx.execute_later(
            f"WITH {', '.join(f'{name} AS ({sql})' for name, sql, _ in ctes)} "
            f"INSERT INTO events ({EVENT_COLUMNS}) SELECT u.intent_id, "
            f"{', '.join('?' * (len(event_params) - 1))}, 1 FROM (VALUES (1)) AS one (x) "
            "LEFT JOIN u ON TRUE",
            tuple(p for _, _, ps in ctes for p in ps) + event_params[1:],
        )
    else:
        changed = tx.execute(f"UPDATE intents SET {assigned} {where}", params)
        if changed != 1:  # only if the row changed under us: never lose a seq silently
            raise RuntimeError(f"intent {row.intent_id} changed concurrently at seq {seq - 1}")
    if target in TERMINAL:
        _on_terminal(tx, ctx, row)
    return pushed


_BUMP_FEED = (
    "WITH f AS (UPDATE agents SET feed_seq = feed_seq + 1 WHERE workspace = ? AND address = ? "
    "RETURNING feed_seq) "
    "UPDATE intents SET feed_seq = f.feed_seq FROM f WHERE intent_id = ?"
)
"""The agent's feed counter and the intent's place in it (PostgreSQL; no agent row, no bump)."""

_CANCEL_TIMERS = "UPDATE timers SET status = 'canceled' WHERE intent_id = ? AND status = 'pending'"


def _on_terminal(tx: Tx, ctx: Ctx, row: IntentRow) -> None:
    if tx.dialect != "postgresql":  # (on PostgreSQL the event's statement canceled them)
        tx.execute(_CANCEL_TIMERS, (row.intent_id,))
    from .waits import child_ended  # waits depend on transitions, not the other way round

    child_ended(tx, ctx, row)
