"""Worker leases: one worker continues an intent at a time, and a dead worker's intent is
claimed again once its lease expires."""

from __future__ import annotations

from datetime import timedelta

from ..clock import from_text, to_text
from ..errors import Conflict, Forbidden, IllegalTransition, InvalidRequest, LeaseLost
from ..ids import new_token
from ..model import Claim, FeedItem, Lease, PrincipalKind, Status, WaitStatus
from ..store import Tx, work_for
from ..store.schema import CLAIMABLE
from . import mesh
from .context import Ctx
from .intents import model_of
from .journal import STEPS_OF, steps_from
from .records import INTENT_COLUMNS, WAIT_COLUMNS, IntentRow, for_update, load_intent
from .transitions import RUNNABLE, append_event
from .waits import WAITS_OF, _model, waits_from


def _check_ttl(seconds: float) -> None:
    if not 0 < seconds <= 86400:
        raise InvalidRequest("a lease lasts between 0 and 86400 seconds")


def _new_lease(ctx: Ctx, row: IntentRow, owner: str, seconds: float) -> Lease:
    expires = from_text(to_text(ctx.now + timedelta(seconds=seconds)))  # as stored
    return Lease(intent_id=row.intent_id, owner=owner, token=new_token("ls"), expires_at=expires)


def _columns(lease: Lease) -> tuple[str, str, str]:
    return lease.owner, lease.token, to_text(lease.expires_at)


def _take(tx: Tx, ctx: Ctx, row: IntentRow, owner: str, seconds: float) -> Lease:
    """Lease ``row`` to ``owner``, recorded with its event in one update."""
    resumed = row.status is Status.IN_PROGRESS
    lease = _new_lease(ctx, row, owner, seconds)
    details = {"worker": owner, "lease_expires_at": to_text(lease.expires_at)}
    if row.status is Status.SUBMITTED:
        append_event(tx, ctx, row, "intent.delivered", Status.DELIVERED, details=details,
                     lease=_columns(lease))  # fmt: skip
    else:
        append_event(tx, ctx, row, "intent.claimed", details={**details, "resumed": resumed},
                     lease=_columns(lease))  # fmt: skip
    return lease


_CLAIMABLE_FROM = {
    # SQLite, without statistics, rates the partial index no better than the agent's full
    # one of the same columns, and picked the full one (which walks ended intents); the
    # PostgreSQL planner picks the smaller by itself
    "sqlite": "intents INDEXED BY intents_claimable",
    "postgresql": "intents",
}


def _claimable(ctx: Ctx, agent: str, intent_types: list[str] | None) -> tuple[str, list[object]]:
    """Which intents a claim for ``agent`` may take: runnable, not under a live lease."""
    where = [
        "to_agent = ?",
        CLAIMABLE,  # literal statuses: the partial index intents_claimable matches only these
        "(lease_expires_at IS NULL OR lease_expires_at <= ?)",
        "workspace = ?",
    ]
    params: list[object] = [agent, ctx.now_text, ctx.actor.workspace]
    if intent_types:
        where.append(f"intent_type IN ({', '.join('?' * len(intent_types))})")
        params.extend(intent_types)
    return " AND ".join(where), params


def any_claimable(tx: Tx, ctx: Ctx, agent: str, intent_types: list[str] | None) -> bool:
    """Whether a claim could find work now: a read, so idle workers that race for one new
    intent do not each pay for a write to learn that another took it."""
    where, params = _claimable(ctx, agent, intent_types)
    return tx.one(f"SELECT 1 FROM {_CLAIMABLE_FROM[tx.dialect]} WHERE {where} LIMIT 1",
                  params) is not None  # fmt: skip


def claim(
    tx: Tx,
    ctx: Ctx,
    agent: str,
    owner: str,
    seconds: float,
    intent_types: list[str] | None,
    start: bool = False,
    journal: bool = False,
) -> Claim | None:
    """Claim the oldest runnable intent addressed to ``agent`` whose lease is free; with
    ``start``, also begin work on it (IN_PROGRESS) in the same transaction; with
    ``journal``, hand over its steps and waits too (a worker replays from them)."""
    _check_ttl(seconds)
    where, params = _claimable(ctx, agent, intent_types)
    # a paused or killed agent takes no work (its intents wait for it): checked in the
    # claim's own statement. (Its waits and steps are read after it, by statements of their
    # own: on PostgreSQL a subquery reads as of the statement's start, while the row it
    # locks may be newer, and a step committed in between would be missed.)
    stop, stop_params = mesh.not_stopped_sql(ctx, agent)
    found = tx.one(
        f"SELECT {INTENT_COLUMNS} FROM {_CLAIMABLE_FROM[tx.dialect]} WHERE {where} AND {stop} "
        "ORDER BY intent_id LIMIT 1" + for_update(tx, skip_locked=True),
        [*params, *stop_params],
    )
    if found is None:
        return None
    return _claim_row(tx, ctx, IntentRow.from_row(found), owner, seconds, journal, start)


def claim_intent(tx: Tx, ctx: Ctx, intent_id: str, owner: str, seconds: float) -> Claim:
    """Claim one intent by id; a conflict if it is not runnable or another lease is live.
    An agent claims only intents addressed to it (as :func:`claim` claims only its own)."""
    _check_ttl(seconds)
    row = load_intent(tx, intent_id, ctx.actor)
    if ctx.actor.kind is PrincipalKind.AGENT and row.to_agent != ctx.actor.name:
        raise Forbidden(
            f"intent {intent_id} is addressed to {row.to_agent}; an agent claims only its own",
            code="wrong_agent",
            details={"to_agent": row.to_agent},
        )
    if (stop := mesh.check_claim(tx, ctx, row.to_agent, row.workspace)) is not None:
        raise stop
    if row.status not in RUNNABLE:
        raise Conflict(
            f"intent {intent_id} is {row.status.value} and cannot be claimed",
            code="not_runnable",
            details={"status": row.status.value},
        )
    if row.lease_live(ctx.now_text):
        raise Conflict(
            f"intent {intent_id} is leased by {row.lease_owner} until {row.lease_expires_at}",
            code="leased",
            details={"owner": row.lease_owner, "expires_at": row.lease_expires_at},
        )
    return _claim_row(tx, ctx, row, owner, seconds)


def _claim_row(
    tx: Tx,
    ctx: Ctx,
    row: IntentRow,
    owner: str,
    seconds: float,
    journal: bool = False,
    start: bool = False,
) -> Claim:
    if journal:  # its waits and its journal, read in one round trip
        wait_rows, step_rows = tx.all_of(
            [(WAITS_OF, (row.intent_id,)), (STEPS_OF, (row.intent_id,))]
        )
        waits, steps = waits_from(ctx, wait_rows), steps_from(row.intent_id, step_rows)
        ended = [w for w in waits if w.status is not WaitStatus.OPEN]
        last_wait = max(ended, key=lambda w: (w.resolved_at or w.opened_at, w.wait_id),
                        default=None)  # fmt: skip
    else:
        last = tx.one(
            f"SELECT {WAIT_COLUMNS} FROM waits WHERE intent_id = ? AND status != ? "
            "ORDER BY resolved_at DESC, wait_id DESC LIMIT 1",
            (row.intent_id, WaitStatus.OPEN.value),
        )
        last_wait = _model(ctx, last) if last is not None else None
    lease = _take(tx, ctx, row, owner, seconds)
    if start and row.status is not Status.IN_PROGRESS:
        append_event(tx, ctx, row, "intent.in_progress", Status.IN_PROGRESS,
                     details={"worker": owner})  # fmt: skip
    return Claim(
        intent=model_of(tx, ctx, row),
        lease=lease,
        resumed=last_wait is not None,
        last_wait=last_wait,
        steps=steps if journal else None,
        waits=waits if journal else None,
    )


def heartbeat(tx: Tx, ctx: Ctx, intent_id: str, token: str, seconds: float) -> Lease:
    """Extend a live lease; :class:`LeaseLost` if it expired and was taken, or was released."""
    _check_ttl(seconds)
    row = load_intent(tx, intent_id, ctx.actor)
    if row.lease_token != token or row.status.terminal:
        raise LeaseLost(
            f"the lease on intent {intent_id} is gone", details={"intent_id": intent_id}
        )
    expires = to_text(ctx.now + timedelta(seconds=seconds))
    tx.execute_later(
        "UPDATE intents SET lease_expires_at = ? WHERE intent_id = ?", (expires, intent_id)
    )
    assert row.lease_owner is not None
    return Lease(
        intent_id=intent_id, owner=row.lease_owner, token=token, expires_at=from_text(expires)
    )


def release(tx: Tx, ctx: Ctx, intent_id: str, token: str) -> None:
    row = load_intent(tx, intent_id, ctx.actor)
    if row.lease_token == token:
        tx.execute_later(
            "UPDATE intents SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL "
            "WHERE intent_id = ?",
            (intent_id,),
        )
        if row.status in RUNNABLE:
            tx.touch(work_for(row.to_agent))


def start(
    tx: Tx, ctx: Ctx, intent_id: str, owner: str, seconds: float, lease_token: str | None
) -> Lease:
    """Begin work on an intent: IN_PROGRESS, under a lease (the caller's, or a new one)."""
    _check_ttl(seconds)
    row = load_intent(tx, intent_id, ctx.actor)
    if (stop := mesh.check_claim(tx, ctx, row.to_agent, row.workspace)) is not None:
        raise stop
    if row.status is Status.WAITING:  # only resolving its wait resumes a waiting intent
        raise IllegalTransition(
            f"intent {intent_id} is waiting; resolve its wait first",
            details={"intent_id": intent_id, "wait_id": row.wait_id},
        )
    taken: tuple[str, str, str] | None = None  # a new lease, written with the event
    if lease_token is not None:
        from .intents import check_lease

        check_lease(row, ctx, lease_token)
        lease = Lease(
            intent_id=intent_id,
            owner=row.lease_owner or owner,
            token=lease_token,
            expires_at=from_text(row.lease_expires_at or ctx.now_text),
        )
    elif row.lease_live(ctx.now_text):
        raise Conflict(
            f"intent {intent_id} is leased by {row.lease_owner}",
            code="leased",
            details={"owner": row.lease_owner, "expires_at": row.lease_expires_at},
        )
    else:
        if row.status not in RUNNABLE:
            from .lifecycle import check_transition

            check_transition(row.status, Status.IN_PROGRESS, intent_id)
        lease = _new_lease(ctx, row, owner, seconds)
        taken = _columns(lease)
    if row.status is not Status.IN_PROGRESS:
        append_event(tx, ctx, row, "intent.in_progress", Status.IN_PROGRESS,
                     details={"worker": owner}, lease=taken)  # fmt: skip
    elif taken is not None:  # already in progress, its lease had lapsed: only the lease moves
        row.lease_owner, row.lease_token, row.lease_expires_at = taken
        tx.execute_later(
            "UPDATE intents SET lease_owner = ?, lease_token = ?, lease_expires_at = ? "
            "WHERE intent_id = ?",
            (*taken, row.intent_id),
        )
    return lease


def feed(
    tx: Tx, ctx: Ctx, agent: str, since: int, statuses: list[Status], limit: int
) -> list[FeedItem]:
    """Intents addressed to ``agent`` whose status changed after feed position ``since``.

    Without ended statuses (the default) it reads one ordered range per status and merges
    them, so an agent with many ended intents costs what its page costs."""
    columns = "intent_id, feed_seq, seq, status, waiting_reason, intent_type, updated_at"
    if any(s.terminal for s in statuses):
        rows = tx.all(
            f"SELECT {columns} FROM intents WHERE to_agent = ? AND workspace = ? "
            f"AND feed_seq > ? AND status IN ({', '.join('?' * len(statuses))}) "
            "ORDER BY feed_seq LIMIT ?",
            (agent, ctx.actor.workspace, since, *(s.value for s in statuses), limit),
        )
    else:
        rows = []
        for status in dict.fromkeys(statuses):
            rows += tx.all(
                f"SELECT {columns} FROM intents WHERE to_agent = ? AND status = ? "
                "AND feed_seq > ? AND workspace = ? ORDER BY feed_seq LIMIT ?",
                (agent, status.value, since, ctx.actor.workspace, limit),
            )
        rows = sorted(rows, key=lambda r: int(r[1]))[:limit]
    return [
        FeedItem(
            intent_id=r[0],
            seq=r[1],
            intent_seq=r[2],
            event_type=f"intent.{r[3].lower()}",
            status=r[3],
            waiting_reason=r[4],
            intent_type=r[5],
            at=from_text(r[6]),
        )
        for r in rows
    ]
