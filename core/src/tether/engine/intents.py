"""Creating, reading, listing and ending intents."""

from __future__ import annotations

from typing import Any

from ..errors import Forbidden, IdempotencyConflict, InvalidRequest
from ..ids import new_id
from ..model import (
    TERMINAL,
    ErrorInfo,
    Event,
    Intent,
    NewIntent,
    Page,
    PrincipalKind,
    Status,
    WaitKind,
    WaitSpec,
)
from ..store import Tx
from . import mesh
from .audit import GENESIS
from .context import Ctx
from .records import (
    EVENT_COLUMNS,
    INTENT_COLUMNS,
    WAIT_COLUMNS,
    WAITING_ON,
    IntentRow,
    dumps,
    event_from_row,
    event_of,
    load_intent,
    load_intent_and,
    request_hash,
    tstext,
    visible,
)
from .transitions import append_event

_RESOLVE_EVENTS = {
    Status.COMPLETED: "intent.completed",
    Status.FAILED: "intent.failed",
    Status.CANCELED: "intent.canceled",
}


def create(tx: Tx, ctx: Ctx, req: NewIntent, idempotency_key: str | None) -> tuple[Intent, bool]:
    """Create an intent (CREATED -> SUBMITTED, and WAITING if it carries a human task).

    Returns the intent and whether it was created now (False: an idempotent replay).
    """
    from .waits import open_wait

    workspace = ctx.actor.workspace
    sender = req.from_agent
    if ctx.actor.kind is PrincipalKind.AGENT:
        sender = ctx.actor.name  # the sender is who the credential says, never what the body says
    if idempotency_key is not None:
        scope = f"{workspace}:{sender or ctx.actor.actor}:create_intent"
        digest = request_hash(req.model_dump(mode="json"))
        seen = tx.one(
            "SELECT request_hash, response FROM idempotency WHERE scope = ? AND idem_key = ?",
            (scope, idempotency_key),
        )
        if seen is not None:
            if seen[0] != digest:
                raise IdempotencyConflict(
                    "idempotency key reused with a different request body",
                    details={"idempotency_key": idempotency_key},
                )
            existing = load_intent(tx, seen[1], ctx.actor)
            return read(tx, ctx, existing.intent_id), False
        intent_id = new_id()
        tx.execute_later(
            "INSERT INTO idempotency (scope, idem_key, request_hash, response, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (scope, idempotency_key, digest, intent_id, ctx.now_text),
        )
    else:
        intent_id = new_id()
    if req.parent_intent_id is not None:
        load_intent(tx, req.parent_intent_id, ctx.actor)
    if not mesh.admit(tx, ctx, req.to_agent, sender):
        mesh.register(tx, ctx, req.to_agent)
    if sender:
        mesh.register(tx, ctx, sender)
    row = IntentRow(
        intent_id=intent_id,
        workspace=workspace,
        intent_type=req.intent_type,
        correlation_id=req.correlation_id or new_id(),
        from_agent=sender,
        to_agent=req.to_agent,
        reply_to=req.reply_to,
        parent_intent_id=req.parent_intent_id,
        payload=dumps(req.payload),
        metadata=dumps(req.metadata),
        status=Status.CREATED,
        waiting_reason=None,
        wait_id=None,
        seq=0,
        head_hash=GENESIS,
        result=None,
        error=None,
        deadline_at=tstext(req.deadline_at),
        lease_owner=None,
        lease_token=None,
        lease_expires_at=None,
        created_at=ctx.now_text,
        updated_at=ctx.now_text,
        schema_version=1,
    )
    tx.execute_later(
        f"INSERT INTO intents ({INTENT_COLUMNS}) VALUES ({', '.join('?' * 24)})",
        (
            row.intent_id, row.workspace, row.intent_type, row.correlation_id, row.from_agent,
            row.to_agent, row.reply_to, row.parent_intent_id, row.payload, row.metadata,
            "CREATED", None, None, 0, GENESIS, None, None, row.deadline_at, None, None, None,
            row.created_at, row.updated_at, 1,
        ),
    )  # fmt: skip
    details: dict[str, Any] = {
        "intent_type": req.intent_type,
        "to_agent": req.to_agent,
        "from_agent": sender,
        "correlation_id": row.correlation_id,
    }
    if req.parent_intent_id:
        details["parent_intent_id"] = req.parent_intent_id
    append_event(tx, ctx, row, "intent.created", Status.CREATED, details=details)
    append_event(tx, ctx, row, "intent.submitted", Status.SUBMITTED)
    if req.deadline_at is not None:
        if req.deadline_at <= ctx.now:
            raise InvalidRequest(
                "deadline_at is in the past", details={"deadline_at": row.deadline_at}
            )
        tx.execute_later(
            "INSERT INTO timers (kind, intent_id, wait_id, due_at, status) "
            "VALUES ('intent_deadline', ?, NULL, ?, 'pending')",
            (intent_id, row.deadline_at),
        )
    if req.human_task is not None:
        open_wait(
            tx,
            ctx,
            row,
            WaitSpec(kind=WaitKind.HUMAN, key="human_task", human_task=req.human_task),
            None,
        )
    return model_of(tx, ctx, row), True


def read(tx: Tx, ctx: Ctx, intent_id: str) -> Intent:
    return model_of(tx, ctx, load_intent(tx, intent_id, ctx.actor))


def model_of(tx: Tx, ctx: Ctx, row: IntentRow) -> Intent:
    """The intent as ``row`` holds it (current within this transaction: every change made
    through :func:`append_event` is applied to the row too), with its open wait."""
    from .waits import open_wait_model

    return row.to_model(open_wait_model(tx, ctx, row))


def read_many(tx: Tx, ctx: Ctx, ids: list[str]) -> list[Intent]:
    """Several intents (in the order given) in two queries: their rows, their open waits."""
    from .waits import _model

    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    rows = {
        r.intent_id: r
        for r in map(
            IntentRow.from_row,
            tx.all(f"SELECT {INTENT_COLUMNS} FROM intents WHERE intent_id IN ({marks})", ids),
        )
        if visible(r, ctx.actor)
    }
    wait_ids = [r.wait_id for r in rows.values() if r.wait_id is not None]
    waits = {}
    if wait_ids:
        found = tx.all(
            f"SELECT {WAIT_COLUMNS} FROM waits WHERE wait_id IN ({', '.join('?' * len(wait_ids))})",
            wait_ids,
        )
        waits = {w[0]: _model(ctx, w) for w in found}
    return [rows[i].to_model(waits.get(rows[i].wait_id or "")) for i in ids if i in rows]


def list_page(
    tx: Tx,
    ctx: Ctx,
    *,
    status: list[Status] | None,
    to_agent: str | None,
    from_agent: str | None,
    intent_type: str | None,
    correlation_id: str | None,
    parent_intent_id: str | None,
    cursor: str | None,
    limit: int,
) -> Page[Intent]:
    """Intents newest first; ``cursor`` is the last id of the previous page."""
    if not 1 <= limit <= 500:
        raise InvalidRequest("limit must be between 1 and 500")
    where = ["workspace = ?"]
    params: list[Any] = [ctx.actor.workspace]
    for column, value in (
        ("to_agent", to_agent),
        ("from_agent", from_agent),
        ("intent_type", intent_type),
        ("correlation_id", correlation_id),
        ("parent_intent_id", parent_intent_id),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if cursor:
        where.append("intent_id < ?")
        params.append(cursor)
    # Several statuses: one branch per status, each in index order with its own limit, in
    # one statement (one snapshot). With `status IN (...)` both planners preferred the index
    # that yields the order and walked every intent of the other statuses.
    choices: list[Status | None] = list(dict.fromkeys(status)) if status else [None]
    branches, values = [], []
    for one in choices:
        by_status = [*where, "status = ?"] if one is not None else where
        branches.append(
            f"SELECT intent_id FROM (SELECT intent_id FROM intents WHERE {' AND '.join(by_status)} "
            "ORDER BY intent_id DESC LIMIT ?) AS b"
        )
        values.extend([*params, *([one.value] if one is not None else []), limit + 1])
    rows = tx.all(
        f"{' UNION ALL '.join(branches)} ORDER BY intent_id DESC LIMIT ?",
        (*values, limit + 1),
        replan=True,  # the best index depends on the values: an idle agent, a rare type
    )
    ids = [r[0] for r in rows]
    items = read_many(tx, ctx, ids[:limit])
    return Page[Intent](items=items, next_cursor=ids[limit - 1] if len(ids) > limit else None)


def events(tx: Tx, ctx: Ctx, intent_id: str, since: int, limit: int) -> list[Event]:
    if not 0 <= since <= 2**62:
        raise InvalidRequest("since must be between 0 and 2**62")
    if not 1 <= limit <= 10_000:
        raise InvalidRequest("limit must be between 1 and 10000")
    load_intent(tx, intent_id, ctx.actor)
    rows = tx.all(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE intent_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        (intent_id, since, limit),
    )
    return [event_from_row(r) for r in rows]


def events_of_many(tx: Tx, ctx: Ctx, intent_ids: list[str]) -> dict[str, list[Event]]:
    """The events of several intents in two queries (a listing shows each one's timeline);
    intents the actor may not see, or that do not exist, are left out."""
    if len(intent_ids) > 1000:
        raise InvalidRequest("at most 1000 intents at a time")
    if not intent_ids:
        return {}
    marks = ", ".join("?" * len(intent_ids))
    rows = tx.all(f"SELECT {INTENT_COLUMNS} FROM intents WHERE intent_id IN ({marks})",
                  intent_ids)  # fmt: skip
    seen = [r.intent_id for r in map(IntentRow.from_row, rows) if visible(r, ctx.actor)]
    out: dict[str, list[Event]] = {i: [] for i in seen}
    if seen:
        marks = ", ".join("?" * len(seen))
        for r in tx.all(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE intent_id IN ({marks}) "
            "ORDER BY intent_id, seq",
            seen,
        ):
            event = event_from_row(r)
            out[event.intent_id].append(event)
    return out


def check_lease(row: IntentRow, ctx: Ctx, lease_token: str | None) -> None:
    """A write made under a lease is refused once that lease is gone (fencing)."""
    from ..errors import LeaseLost

    if lease_token is None:
        return
    if row.lease_token != lease_token or not row.lease_live(ctx.now_text):
        raise LeaseLost(
            f"the lease on intent {row.intent_id} was lost; another worker may continue it",
            details={"intent_id": row.intent_id},
        )


def acknowledge(tx: Tx, ctx: Ctx, intent_id: str, lease_token: str | None) -> Intent:
    row = load_intent(tx, intent_id, ctx.actor)
    check_lease(row, ctx, lease_token)
    append_event(tx, ctx, row, "intent.acknowledged", Status.ACKNOWLEDGED)
    return model_of(tx, ctx, row)


def end(
    tx: Tx,
    ctx: Ctx,
    row: IntentRow,
    status: Status,
    event_type: str,
    *,
    details: dict[str, Any] | None = None,
    result: Any = None,
    error: ErrorInfo | None = None,
) -> dict[str, Any]:
    """Move an intent to a terminal status, closing its open wait first; return the event's
    fields."""
    from .waits import close_open_wait

    if row.wait_id is not None and not row.status.terminal:
        close_open_wait(tx, ctx, row, reason=status.value.lower())
    return append_event(
        tx,
        ctx,
        row,
        event_type,
        status,
        details=details,
        wait_id=None,
        result=result,
        error=error.model_dump(mode="json") if error is not None else None,
    )


def resolve(
    tx: Tx,
    ctx: Ctx,
    intent_id: str,
    status: Status,
    *,
    result: Any = None,
    error: ErrorInfo | None = None,
    reason: str | None = None,
    lease_token: str | None = None,
) -> tuple[Intent, Event]:
    """End an intent: COMPLETED (result), FAILED (error) or CANCELED (reason). Returns it
    and the event that ended it."""
    if status not in _RESOLVE_EVENTS:
        raise InvalidRequest("resolve takes COMPLETED, FAILED or CANCELED")
    # the waits on it (a parent's, resolved with its end) read once it is locked, with it
    row, parents = load_intent_and(tx, intent_id, ctx.actor, WAITING_ON, (intent_id,))
    row.waited_on_by = [wait_id for (wait_id,) in parents]
    if ctx.actor.kind is PrincipalKind.HUMAN and status is not Status.CANCELED:
        raise Forbidden("a person may cancel an intent, not complete or fail it for its agent")
    check_lease(row, ctx, lease_token)
    details: dict[str, Any] = {}
    if reason:
        details["reason"] = reason
    if status is Status.FAILED and error is None:
        error = ErrorInfo(code="failed", message=reason or "")
    ended = end(tx, ctx, row, status, _RESOLVE_EVENTS[status], details=details, result=result,
                error=error)  # fmt: skip
    return model_of(tx, ctx, row), event_of(ended)


_ENDED = ", ".join(f"'{s.value}'" for s in sorted(TERMINAL))
_HUMAN_OPEN = (
    "EXISTS (SELECT 1 FROM waits w WHERE w.wait_id = intents.wait_id AND w.kind = 'human')"
)
THREAD_STATUS = {
    "done": f"status IN ({_ENDED})",
    "pending": f"status NOT IN ({_ENDED}) AND {_HUMAN_OPEN}",
    "active": f"status NOT IN ({_ENDED}) AND NOT {_HUMAN_OPEN}",
}
"""An inbox thread's status (AXP) as a condition on its intent: ended, waiting for a person
(its open wait is a human task), or neither."""


def changed_since(
    tx: Tx,
    ctx: Ctx,
    *,
    reply_to: str | None,
    after: tuple[str, str],
    limit: int,
    latest: bool = False,
    thread_status: str | None = None,
) -> list[tuple[str, str]]:
    """(updated_at, intent_id) of intents changed after ``after``, oldest first: those
    replying to an agent, or (without one) those that have had a human task. ``latest``: the
    most recently changed instead, newest first (``after`` is not used); ``thread_status``:
    only threads of that status (a key of :data:`THREAD_STATUS`)."""
    if reply_to is not None:
        where, params = "reply_to = ?", [reply_to]
    else:
        where = (
            "workspace = ? AND EXISTS (SELECT 1 FROM waits w "
            "WHERE w.intent_id = intents.intent_id AND w.kind = 'human')"
        )
        params = [ctx.actor.workspace]
    if thread_status is not None:
        where = f"{where} AND {THREAD_STATUS[thread_status]}"
    if latest:
        rows = tx.all(
            f"SELECT updated_at, intent_id FROM intents WHERE {where} AND workspace = ? "
            "ORDER BY updated_at DESC, intent_id DESC LIMIT ?",
            (*params, ctx.actor.workspace, limit),
        )
        return [(r[0], r[1]) for r in rows]
    rows = tx.all(
        f"SELECT updated_at, intent_id FROM intents WHERE {where} AND workspace = ? "
        # (the first condition bounds the index range; with the OR alone, a poll walked all
        # history before its cursor)
        "AND updated_at >= ? AND (updated_at > ? OR intent_id > ?) "
        "ORDER BY updated_at, intent_id LIMIT ?",
        (*params, ctx.actor.workspace, after[0], after[0], after[1], limit),
    )
    return [(r[0], r[1]) for r in rows]
