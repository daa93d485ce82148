"""Durable timers: intent deadlines, wait deadlines, and time waits.

Timers are rows, so they survive every process. Whoever runs :func:`fire_due` fires them: a
server's ticker, a worker's loop, or the next process that opens the store.
"""

from __future__ import annotations

from ..errors import Conflict, NotFound
from ..model import ErrorInfo, Status
from ..store import Tx
from .context import Ctx
from .records import for_update, load_intent


def fire_due(tx: Tx, ctx: Ctx, limit: int) -> int:
    """Fire up to ``limit`` timers due now; return how many fired."""
    from . import intents, waits

    due = tx.all(
        "SELECT timer_id, kind, intent_id, wait_id FROM timers "
        "WHERE status = 'pending' AND due_at <= ? ORDER BY due_at, timer_id LIMIT ?"
        + for_update(tx, skip_locked=True),
        (ctx.now_text, limit),
    )
    fired = 0
    for timer_id, kind, intent_id, wait_id in due:
        if (
            tx.execute(
                "UPDATE timers SET status = 'fired', fired_at = ? WHERE timer_id = ? AND status = 'pending'",
                (ctx.now_text, timer_id),
            )
            != 1
        ):
            continue
        try:
            if kind == "intent_deadline":
                row = load_intent(tx, intent_id, ctx.actor)
                if not row.status.terminal:
                    intents.end(
                        tx,
                        ctx,
                        row,
                        Status.TIMED_OUT,
                        "intent.timed_out",
                        details={"deadline_at": row.deadline_at},
                        error=ErrorInfo(
                            code="intent_timeout", message="deadline_at passed", retryable=True
                        ),
                    )
            elif kind == "wait_deadline":
                waits.time_out(tx, ctx, wait_id)
            elif kind == "wait_fire":
                waits.fire(tx, ctx, wait_id)
            elif kind == "reminder":
                waits.remind(tx, ctx, wait_id)
        except (Conflict, NotFound):
            pass  # the wait or intent closed some other way first: nothing left to fire
        fired += 1
    return fired


def next_due(tx: Tx) -> str | None:
    row = tx.one("SELECT MIN(due_at) FROM timers WHERE status = 'pending'")
    return row[0] if row else None
