"""Waits: opening one, resolving it exactly once, timing it out, and the human inbox.

Four kinds (DESIGN §3): a human task, a long tool call (with a callback token), another
agent's intent (a child), and a durable timer. Opening is idempotent per (intent, key), so an
adapter whose node re-runs on resume gets the same wait back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jsonschema import Draft202012Validator

from ..clock import to_text
from ..errors import (
    Forbidden,
    IdempotencyConflict,
    IllegalTransition,
    InvalidRequest,
    NotFound,
    WaitResolved,
)
from ..ids import new_id
from ..model import (
    TIMEOUT,
    ErrorInfo,
    HumanTask,
    Intent,
    PrincipalKind,
    Status,
    Wait,
    WaitKind,
    WaitSpec,
    WaitStatus,
)
from ..model.waits import MAX_SECONDS
from ..store import Tx
from .context import Ctx
from .mesh import SPEND_WAIT_KEY
from .records import (
    WAIT_BY_ID,
    WAIT_COLUMNS,
    WAITING_ON,
    IntentRow,
    as_stored,
    dumps,
    load_intent,
    load_intent_and,
    load_wait_row,
    loads,
    request_hash,
    tstext,
    wait_from_row,
)
from .transitions import append_event

_CAN_WAIT = {Status.SUBMITTED, Status.DELIVERED, Status.ACKNOWLEDGED, Status.IN_PROGRESS}


# -- callback tokens ---------------------------------------------------------------------------


def callback_token(secret: str, wait_id: str) -> str:
    """The tool wait's callback token: derivable again by the engine, unguessable outside it."""
    mac = hmac.new(secret.encode(), wait_id.encode(), hashlib.sha256).digest()
    return f"tw_{wait_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def wait_id_of_token(secret: str, token: str) -> str:
    if not token.startswith("tw_") or "." not in token:
        raise NotFound("unknown callback token")
    wait_id = token[3:].split(".", 1)[0]
    if not hmac.compare_digest(callback_token(secret, wait_id), token):
        raise NotFound("unknown callback token")
    return wait_id


# -- reading -----------------------------------------------------------------------------------


def _model(ctx: Ctx, row: tuple[Any, ...]) -> Wait:
    """The wait as ``ctx.actor`` sees it: a tool wait's callback token (the tool's one
    credential) is shown to agents and admins, never to a person (an approver could
    otherwise complete the tool with a result of their own)."""
    shown = row[3] == WaitKind.TOOL.value and ctx.actor.kind is not PrincipalKind.HUMAN
    return wait_from_row(row, callback_token(ctx.secret, row[0]) if shown else None)


def open_wait_model(tx: Tx, ctx: Ctx, intent: IntentRow) -> Wait | None:
    if intent.wait_id is None:
        return None
    return _model(ctx, load_wait_row(tx, intent.wait_id))


def get(tx: Tx, ctx: Ctx, wait_id: str) -> Wait:
    row = load_wait_row(tx, wait_id)
    load_intent(tx, row[1], ctx.actor)  # visibility
    return _model(ctx, row)


def list_for_intent(tx: Tx, ctx: Ctx, intent_id: str) -> list[Wait]:
    load_intent(tx, intent_id, ctx.actor)
    return waits_of(tx, ctx, intent_id)


WAITS_OF = f"SELECT {WAIT_COLUMNS} FROM waits WHERE intent_id = ? ORDER BY opened_at, wait_id"
"""An intent's waits, oldest first (its id the one parameter): :func:`waits_from` makes them."""


def waits_of(tx: Tx, ctx: Ctx, intent_id: str) -> list[Wait]:
    """The waits of an intent the caller has already loaded (and may see), oldest first."""
    return waits_from(ctx, tx.all(WAITS_OF, (intent_id,)))


def waits_from(ctx: Ctx, rows: list[tuple[Any, ...]]) -> list[Wait]:
    return [_model(ctx, r) for r in rows]


# -- opening -----------------------------------------------------------------------------------


WAIT_BY_KEY = f"SELECT {WAIT_COLUMNS} FROM waits WHERE intent_id = ? AND wait_key = ?"
"""An intent's wait of one key (parameters: the intent's id, the key)."""


def open_wait(
    tx: Tx,
    ctx: Ctx,
    row: IntentRow,
    spec: WaitSpec,
    lease_token: str | None,
    keyed: list[Any] | None = None,
) -> Wait:
    """Open ``spec`` on the intent (-> WAITING); return the existing wait if the key was used.
    ``keyed``: the rows of :data:`WAIT_BY_KEY` for the key, if the caller read them with the
    intent (:func:`load_intent_and`). The key is looked up by a statement of its own, before
    anything that may refuse: read within the intent's locking statement, it could miss a
    wait opened while that statement waited for the lock, and then refuse as "already
    waiting" what is an idempotent retry."""
    from .intents import check_lease

    key = spec.key
    spec_json = spec.model_dump(mode="json", exclude={"key"})
    if key is not None:
        if keyed is None:
            keyed = tx.all(WAIT_BY_KEY, (row.intent_id, key))
        found = keyed[0] if keyed else None
        if found is not None:
            stored = WaitSpec.model_validate(loads(found[5], "wait spec"))  # defaults of today
            if request_hash(stored.model_dump(mode="json", exclude={"key"})) != request_hash(
                spec_json
            ):
                raise IdempotencyConflict(
                    f"wait key {key!r} was used for a different wait on this intent",
                    details={"intent_id": row.intent_id, "key": key},
                )
            return _model(ctx, found)
    check_lease(row, ctx, lease_token)
    if row.status is Status.WAITING:
        raise IllegalTransition(
            f"intent {row.intent_id} is already waiting; resolve its wait first",
            details={"intent_id": row.intent_id, "wait_id": row.wait_id},
        )
    if row.status not in _CAN_WAIT:
        from .lifecycle import check_transition

        check_transition(row.status, Status.WAITING, row.intent_id)
    if spec.deadline_at is not None and spec.deadline_at <= ctx.now:
        raise InvalidRequest("the wait's deadline_at is in the past")
    child: IntentRow | None = None
    if spec.kind is WaitKind.AGENT:
        assert spec.child_intent_id is not None
        child = load_intent(tx, spec.child_intent_id, ctx.actor)
        if child.intent_id == row.intent_id:
            raise InvalidRequest("an intent cannot wait for itself")
    wait_id = new_id()
    deadline = spec.deadline_at
    if spec.heartbeat_timeout_seconds is not None:
        beat = ctx.now + timedelta(seconds=spec.heartbeat_timeout_seconds)
        deadline = min(deadline, beat) if deadline is not None else beat
    task = spec.human_task
    inserted = (  # in WAIT_COLUMNS order
        wait_id, row.intent_id, key or wait_id, spec.kind.value, WaitStatus.OPEN.value,
        dumps(spec_json), spec.child_intent_id, ctx.now_text, tstext(deadline),
        None, None, None, None, None, 1,
    )  # fmt: skip
    tx.execute_later(
        "INSERT INTO waits (wait_id, intent_id, wait_key, kind, status, spec, child_intent_id, "
        "assignees, opened_at, deadline_at, schema_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        (*inserted[:7], _assignees(task), *inserted[7:9]),
    )
    if task is not None:
        _index_task(tx, row.workspace, wait_id, task, ctx.now_text, new=True)
    if deadline is not None:
        _add_timer(tx, "wait_deadline", row.intent_id, wait_id, tstext(deadline))
    if spec.kind is WaitKind.TIME:
        _add_timer(tx, "wait_fire", row.intent_id, wait_id, tstext(spec.fire_at))
    if task is not None and task.remind_after_seconds is not None:
        due = ctx.now + timedelta(seconds=task.remind_after_seconds)
        _add_timer(tx, "reminder", row.intent_id, wait_id, tstext(due))
    details: dict[str, Any] = {"wait_id": wait_id, "kind": spec.kind.value}
    if key is not None:
        details["key"] = key
    if deadline is not None:
        details["deadline_at"] = tstext(deadline)
    if task is not None:
        details["human_task"] = task.model_dump(mode="json", exclude_defaults=True)
    for name in ("tool_name", "child_intent_id"):
        if getattr(spec, name) is not None:
            details[name] = getattr(spec, name)
    if spec.fire_at is not None:
        details["fire_at"] = tstext(spec.fire_at)
    event = "intent.human_task_assigned" if spec.kind is WaitKind.HUMAN else "intent.waiting"
    append_event(
        tx,
        ctx,
        row,
        event,
        Status.WAITING,
        waiting_reason=spec.kind.reason,
        details=details,
        wait_id=wait_id,
        release_lease=True,
    )
    if child is not None and child.status.terminal:  # it ended before we started waiting
        _resolve_child_wait(tx, ctx, wait_id, child)
        return _model(ctx, load_wait_row(tx, wait_id))
    return _model(ctx, inserted)


def _assignees(task: HumanTask | None) -> str:
    if task is None:
        return "[]"
    return dumps(_who_may_answer(task))


def _who_may_answer(task: HumanTask) -> list[str]:
    return [*task.assignees, *(f"group:{g}" for g in task.groups)]


ANYONE = "*"
"""The assignee of a task with no assignees and no groups: any person of the workspace."""


def _index_task(
    tx: Tx, workspace: str, wait_id: str, task: HumanTask, opened_at: str, *, new: bool = False
) -> None:
    """(Re)write who may answer the open task, the index the inbox lists from."""
    if not new:
        tx.execute_later("DELETE FROM task_assignees WHERE wait_id = ?", (wait_id,))
    for assignee in dict.fromkeys(_who_may_answer(task) or [ANYONE]):
        tx.execute_later(
            "INSERT INTO task_assignees (workspace, assignee, opened_at, wait_id) "
            "VALUES (?, ?, ?, ?)",
            (workspace, assignee, opened_at, wait_id),
        )


def _add_timer(tx: Tx, kind: str, intent_id: str, wait_id: str | None, due: str | None) -> None:
    tx.execute_later(
        "INSERT INTO timers (kind, intent_id, wait_id, due_at, status) VALUES (?, ?, ?, ?, 'pending')",
        (kind, intent_id, wait_id, due),
    )


# -- resolving ---------------------------------------------------------------------------------


def _close(
    tx: Tx,
    ctx: Ctx,
    wait_id: str,
    status: WaitStatus,
    *,
    outcome: str | None,
    result: Any = None,
    comment: str | None = None,
) -> None:
    close = (
        "UPDATE waits SET status = ?, resolved_at = ?, outcome = ?, result = ?, comment = ?, "
        "resolved_by = ? WHERE wait_id = ? AND status = 'open'"
    )
    params = (status.value, ctx.now_text, outcome, dumps(result), comment, ctx.actor.actor,
              wait_id)  # fmt: skip
    timers = "UPDATE timers SET status = 'canceled' WHERE wait_id = ? AND status = 'pending'"
    assignees = "DELETE FROM task_assignees WHERE wait_id = ?"
    # (for a wait closed already, the timer cancel and the assignee delete change nothing)
    if tx.dialect == "postgresql":  # one statement
        changed = tx.execute(
            f"WITH t AS ({timers}), a AS ({assignees}) {close}", (wait_id, wait_id, *params)
        )
    else:
        changed = tx.execute(close, params)
        tx.execute(timers, (wait_id,))
        tx.execute(assignees, (wait_id,))
    if changed != 1:
        raise WaitResolved(f"wait {wait_id} is already closed", details={"wait_id": wait_id})


def _resume(
    tx: Tx,
    ctx: Ctx,
    row: IntentRow,
    wait: Wait,
    status: WaitStatus,
    outcome: str,
    result: Any,
    comment: str | None,
    event_type: str = "intent.resumed",
) -> None:
    _close(tx, ctx, wait.wait_id, status, outcome=outcome, result=result, comment=comment)
    if outcome != "approved" and wait.key.startswith(SPEND_WAIT_KEY):
        _fail_closed(  # a spend cap nobody approved ends the intent
            tx,
            ctx,
            row,
            {"reason": "spend_not_approved", "wait_id": wait.wait_id, "outcome": outcome},
            ErrorInfo(
                code="spend_cap_exceeded",
                message=f"going on over the spend cap was not approved ({outcome})",
                details={"comment": comment} if comment else {},
            ),
        )
        return
    details: dict[str, Any] = {"wait_id": wait.wait_id, "kind": wait.kind.value, "outcome": outcome}
    if status is WaitStatus.TIMED_OUT:
        details["timed_out"] = True
    if comment:
        details["comment"] = comment
    if result is not None:
        details["result"] = as_stored(result)
    append_event(
        tx,
        ctx,
        row,
        event_type,
        Status.IN_PROGRESS,
        details=details,
        wait_id=None,
        release_lease=True,
    )


def _fail_closed(
    tx: Tx, ctx: Ctx, row: IntentRow, details: dict[str, Any], error: ErrorInfo
) -> None:
    """Fail an intent whose wait was just closed (so there is no open wait left to close)."""
    from .intents import end

    row.wait_id = None
    end(tx, ctx, row, Status.FAILED, "intent.failed", details=details, error=error)


def _open_wait_of(
    tx: Tx,
    ctx: Ctx,
    wait_id: str,
    row: IntentRow | None = None,
    wrow: tuple[Any, ...] | None = None,
    intent_id: str | None = None,
) -> tuple[IntentRow, Wait]:
    """The open wait and its intent. The wait is read once its intent is locked, so its
    status and its assignees are current (a delegation or a resolution that committed while
    this write waited for the lock is seen). ``row`` and ``wrow``: the intent and the wait,
    if the caller has read them so; ``intent_id``: the wait's intent, if the caller knows."""
    if row is None or wrow is None or wrow[1] != row.intent_id:
        if intent_id is None:
            intent_id = load_wait_row(tx, wait_id)[1]  # (a wait's intent never changes)
        row, found = load_intent_and(tx, intent_id, ctx.actor, WAIT_BY_ID, (wait_id,))
        if not found:
            raise NotFound(f"no wait {wait_id}", details={"wait_id": wait_id})
        wrow = found[0]
    wait = _model(ctx, wrow)
    if not wait.is_open:
        raise WaitResolved(
            f"wait {wait_id} is already {wait.status.value}",
            details={"wait_id": wait_id, "status": wait.status.value, "outcome": wait.outcome},
        )
    return row, wait


_OPEN_WAIT = (
    f"SELECT {WAIT_COLUMNS} FROM waits "
    "WHERE wait_id = (SELECT wait_id FROM intents WHERE intent_id = ?)"
)
"""An intent's open wait (the intent's id the one parameter)."""


@dataclass(frozen=True)
class Target:
    """The wait to resolve, and what was read on the way to it (for the resolution): its
    intent's row and its own, read once the intent was locked, or its intent's id."""

    wait_id: str
    row: IntentRow | None = None
    wrow: tuple[Any, ...] | None = None
    intent_id: str | None = None


def wait_of_intent(tx: Tx, ctx: Ctx, intent_id: str, wait_id: str | None) -> Target:
    """The wait to resolve: the given one, which must belong to the intent, or its open one
    (then with the intent's row and the wait's, read on the way in one round trip: the wait
    once the intent is locked)."""
    if wait_id is None:
        row, wrows = load_intent_and(tx, intent_id, ctx.actor, _OPEN_WAIT, (intent_id,))
        if row.wait_id is None:
            if row.status.terminal:
                from .lifecycle import check_transition

                check_transition(row.status, Status.IN_PROGRESS, intent_id)
            raise WaitResolved(
                f"intent {intent_id} has no open wait", details={"intent_id": intent_id}
            )
        # (the wait read once the intent was locked: it is the intent's open wait)
        return Target(row.wait_id, row, wrows[0] if wrows else None)
    if load_wait_row(tx, wait_id)[1] != intent_id:  # (read again once the intent is locked)
        raise NotFound(f"intent {intent_id} has no wait {wait_id}", details={"wait_id": wait_id})
    return Target(wait_id, intent_id=intent_id)


def may_act_on(task: HumanTask, ctx: Ctx) -> bool:
    actor = ctx.actor
    if actor.kind in (PrincipalKind.ADMIN, PrincipalKind.SYSTEM):
        return True
    if actor.kind is not PrincipalKind.HUMAN:
        return False
    if not task.assignees and not task.groups:
        return True
    return actor.name in task.assignees or bool(set(task.groups) & set(actor.groups))


def respond(
    tx: Tx,
    ctx: Ctx,
    target: Target,
    outcome: str,
    comment: str | None,
    data: dict[str, Any] | None,
) -> Intent:
    """A person's answer to a human task: checked against the task, then the intent resumes."""
    row, wait = _open_wait_of(tx, ctx, target.wait_id, target.row, target.wrow, target.intent_id)
    return _answer(tx, ctx, row, wait, outcome, comment, data)


def _answer(
    tx: Tx,
    ctx: Ctx,
    row: IntentRow,
    wait: Wait,
    outcome: str,
    comment: str | None,
    data: dict[str, Any] | None,
) -> Intent:
    """:func:`respond` to the open ``wait`` of ``row``, both read under the intent's lock."""
    from .intents import model_of

    wait_id = wait.wait_id
    task = wait.human_task
    if task is None:
        raise InvalidRequest(f"wait {wait_id} is a {wait.kind.value} wait, not a human task")
    if ctx.actor.kind is PrincipalKind.AGENT:
        raise Forbidden("an agent cannot resolve a human task", code="agent_cannot_approve")
    if not may_act_on(task, ctx):
        raise Forbidden(
            f"{ctx.actor.actor} is not assigned this task",
            code="not_assignee",
            details={"assignees": task.assignees, "groups": task.groups},
        )
    if outcome not in task.allowed_outcomes:
        raise InvalidRequest(
            f"outcome {outcome!r} is not allowed; choose one of {task.allowed_outcomes}",
            code="outcome_not_allowed",
            details={"allowed_outcomes": task.allowed_outcomes},
        )
    if task.required_comment and not (comment or "").strip():
        raise InvalidRequest("this task requires a comment", code="comment_required")
    data = data or {}
    if task.evidence_required and not data.get("evidence"):
        raise InvalidRequest(
            "this task requires evidence (data.evidence)", code="evidence_required"
        )
    if task.form_schema is not None:
        errors = sorted(
            Draft202012Validator(task.form_schema).iter_errors(data), key=lambda e: list(e.path)
        )
        if errors:
            raise InvalidRequest(
                "the response does not match the task's form",
                code="form_invalid",
                details={
                    "errors": [
                        {"field": "/".join(str(p) for p in e.path), "message": e.message}
                        for e in errors
                    ]
                },
            )
    _resume(tx, ctx, row, wait, WaitStatus.RESOLVED, outcome, data or None, comment)
    return model_of(tx, ctx, row)


def resume(
    tx: Tx,
    ctx: Ctx,
    target: Target,
    outcome: str,
    result: Any,
    comment: str | None,
    lease_token: str | None,
) -> Intent:
    """Resolve a non-human wait by hand (an agent or admin ends a tool, agent or time wait)."""
    from .intents import check_lease, model_of

    row, wait = _open_wait_of(tx, ctx, target.wait_id, target.row, target.wrow, target.intent_id)
    if wait.kind is WaitKind.HUMAN:
        data = result if isinstance(result, dict) else None
        return _answer(tx, ctx, row, wait, outcome, comment, data)
    if ctx.actor.kind is PrincipalKind.HUMAN:
        raise Forbidden("a person resolves human tasks; this wait belongs to the agent")
    if outcome == TIMEOUT:
        raise InvalidRequest("'timeout' is reserved for waits whose deadline passed")
    check_lease(row, ctx, lease_token)
    _resume(tx, ctx, row, wait, WaitStatus.RESOLVED, outcome, result, comment)
    return model_of(tx, ctx, row)


def complete_tool(tx: Tx, ctx: Ctx, token: str, result: Any, error: str | None) -> Intent:
    """The tool posts its result (or its error) with the wait's callback token; single use."""
    from .intents import model_of

    wait_id = wait_id_of_token(ctx.secret, token)
    row, wait = _open_wait_of(tx, ctx, wait_id)
    outcome = "failed" if error is not None else "completed"
    payload = {"error": error} if error is not None else result
    _resume(tx, ctx, row, wait, WaitStatus.RESOLVED, outcome, payload, None)
    return model_of(tx, ctx, row)


def heartbeat_tool(tx: Tx, ctx: Ctx, token: str, extend_seconds: float | None) -> Wait:
    """The tool is alive: push the wait's timeout out by its heartbeat timeout (or as asked)."""
    wait_id = wait_id_of_token(ctx.secret, token)
    _, wait = _open_wait_of(tx, ctx, wait_id)
    seconds = extend_seconds if extend_seconds is not None else wait.heartbeat_timeout_seconds
    if seconds is None:
        raise InvalidRequest("this tool wait has no heartbeat timeout; pass extend_seconds")
    if not 0 < seconds <= MAX_SECONDS:  # also false for NaN
        raise InvalidRequest(f"extend_seconds must be between 0 and {MAX_SECONDS}")
    new_deadline = ctx.now + timedelta(seconds=seconds)
    if wait.deadline_at is not None and wait.deadline_at >= new_deadline:
        return wait
    text = tstext(new_deadline)
    tx.execute_later("UPDATE waits SET deadline_at = ? WHERE wait_id = ?", (text, wait_id))
    if (
        tx.execute(
            "UPDATE timers SET due_at = ? WHERE wait_id = ? AND kind = 'wait_deadline' AND status = 'pending'",
            (text, wait_id),
        )
        == 0
    ):
        _add_timer(tx, "wait_deadline", wait.intent_id, wait_id, text)
    return _model(ctx, load_wait_row(tx, wait_id))


def time_out(tx: Tx, ctx: Ctx, wait_id: str) -> None:
    """A wait's deadline passed: a timeout, handled as the wait's policy says."""
    row, wait = _open_wait_of(tx, ctx, wait_id)
    policy = wait.on_timeout
    if policy.action == "fail":
        _close(tx, ctx, wait_id, WaitStatus.TIMED_OUT, outcome=TIMEOUT)
        _fail_closed(
            tx,
            ctx,
            row,
            {"reason": "wait_timeout", "wait_id": wait_id},
            ErrorInfo(
                code="wait_timeout", message=f"{wait.kind.value} wait timed out", retryable=True
            ),
        )
        return
    outcome = policy.default_outcome if policy.action == "default" else TIMEOUT
    assert outcome is not None
    _resume(tx, ctx, row, wait, WaitStatus.TIMED_OUT, outcome, None, None, "intent.timeout")


def fire(tx: Tx, ctx: Ctx, wait_id: str) -> None:
    """A time wait's moment came: the intent resumes with the outcome ``elapsed``."""
    row, wait = _open_wait_of(tx, ctx, wait_id)
    _resume(tx, ctx, row, wait, WaitStatus.RESOLVED, "elapsed", None, None)


def close_open_wait(tx: Tx, ctx: Ctx, row: IntentRow, reason: str) -> None:
    """The intent is ending while it waits: its wait is canceled, never silently left open."""
    if row.wait_id is not None:
        _close(tx, ctx, row.wait_id, WaitStatus.CANCELED, outcome=None, comment=reason)
        row.wait_id = None


def child_ended(tx: Tx, ctx: Ctx, child: IntentRow) -> None:
    """A child intent reached a terminal status: resolve every wait that waits on it."""
    waits = child.waited_on_by
    if waits is None:
        waits = [wait_id for (wait_id,) in tx.all(WAITING_ON, (child.intent_id,))]
    for wait_id in waits:
        _resolve_child_wait(tx, ctx, wait_id, child)


def _resolve_child_wait(tx: Tx, ctx: Ctx, wait_id: str, child: IntentRow) -> None:
    """Resolve the parent's wait on ``child``, unless the parent closed it meanwhile (it was
    canceled, or the wait timed out, while this write waited for the parent's lock): the
    wait is read again once the parent is locked, and the child's end goes on either way."""
    parent_id = load_wait_row(tx, wait_id)[1]  # (a wait's intent never changes)
    system = ctx.actor.model_copy(update={"kind": PrincipalKind.SYSTEM})
    parent, found = load_intent_and(tx, parent_id, system, WAIT_BY_ID, (wait_id,))
    wrow = found[0]
    if wrow[4] != WaitStatus.OPEN.value:
        return
    result = {
        "intent_id": child.intent_id,
        "status": child.status.value,
        "result": loads(child.result, "result"),
        "error": loads(child.error, "error"),
    }
    _resume(
        tx,
        ctx,
        parent,
        _model(ctx, wrow),
        WaitStatus.RESOLVED,
        child.status.value.lower(),
        result,
        None,
    )


# -- the human inbox ---------------------------------------------------------------------------


def tasks(tx: Tx, ctx: Ctx, mine: bool, limit: int) -> list[Intent]:
    """Open human tasks, oldest first; ``mine`` keeps those the actor may act on.

    A person's tasks come from the ``task_assignees`` index: one ordered range per name the
    person answers to (their own, each group's, and "anyone"), merged; so the cost follows
    the page, not the number of open tasks.
    """
    from .intents import read_many

    person = mine and ctx.actor.kind is PrincipalKind.HUMAN
    if not person:
        rows = tx.all(
            "SELECT w.opened_at, w.wait_id, w.intent_id FROM waits w "
            "JOIN intents i ON i.intent_id = w.intent_id "
            "WHERE w.status = 'open' AND w.kind = 'human' AND i.workspace = ? "
            "ORDER BY w.opened_at, w.wait_id LIMIT ?",
            (ctx.actor.workspace, limit),
        )
        return read_many(tx, ctx, [r[2] for r in rows])
    names = [ctx.actor.name, *(f"group:{g}" for g in ctx.actor.groups), ANYONE]
    found: set[tuple[str, str]] = set()
    for name in dict.fromkeys(names):
        found.update(
            tx.all(
                "SELECT opened_at, wait_id FROM task_assignees "
                "WHERE workspace = ? AND assignee = ? ORDER BY opened_at, wait_id LIMIT ?",
                (ctx.actor.workspace, name, limit),
            )
        )
    page = [wait_id for _, wait_id in sorted(found)[:limit]]
    if not page:
        return []
    owners: dict[str, str] = dict(
        tx.all(
            f"SELECT wait_id, intent_id FROM waits WHERE wait_id IN ({', '.join('?' * len(page))})",
            page,
        )
    )
    return read_many(tx, ctx, [owners[w] for w in page if w in owners])


def reply(tx: Tx, ctx: Ctx, intent_id: str, message: str) -> Intent:
    """A message on the intent's thread (its audit trail), from a person or an agent."""
    from .intents import read

    if not 1 <= len(message) <= 5000:
        raise InvalidRequest("a reply is 1 to 5000 characters")
    row = load_intent(tx, intent_id, ctx.actor)
    append_event(tx, ctx, row, "intent.reply", details={"message": message})
    return read(tx, ctx, intent_id)


def delegate(tx: Tx, ctx: Ctx, intent_id: str, delegate_to: str, note: str | None) -> Intent:
    """Hand the open human task to another person: they become its only assignee."""
    from .intents import read

    row, found = load_intent_and(tx, intent_id, ctx.actor, _OPEN_WAIT, (intent_id,))
    if row.wait_id is None:
        raise WaitResolved(f"intent {intent_id} has no open task", details={"intent_id": intent_id})
    _, wait = _open_wait_of(tx, ctx, row.wait_id, row, found[0] if found else None)
    task = wait.human_task
    if task is None:
        raise InvalidRequest("only a human task can be delegated")
    if ctx.actor.kind is PrincipalKind.AGENT:
        raise Forbidden("an agent cannot delegate a human task", code="agent_cannot_approve")
    if not may_act_on(task, ctx):
        raise Forbidden(f"{ctx.actor.actor} is not assigned this task", code="not_assignee")
    if not delegate_to.strip() or len(delegate_to) > 255:
        raise InvalidRequest("delegate_to names a person (1 to 255 characters)")
    moved = task.model_copy(update={"assignees": [delegate_to], "groups": []})
    spec = loads(load_wait_row(tx, wait.wait_id)[5], "wait spec")
    spec["human_task"] = moved.model_dump(mode="json")
    tx.execute_later(
        "UPDATE waits SET spec = ?, assignees = ? WHERE wait_id = ?",
        (dumps(spec), _assignees(moved), wait.wait_id),
    )
    _index_task(tx, row.workspace, wait.wait_id, moved, to_text(wait.opened_at))
    before = task.assignees + [f"group:{g}" for g in task.groups]
    details: dict[str, Any] = {"wait_id": wait.wait_id, "from": before, "to": delegate_to}
    if note:
        details["note"] = note[:2000]
    append_event(tx, ctx, row, "intent.delegated", details=details)
    return read(tx, ctx, intent_id)


def remind(tx: Tx, ctx: Ctx, wait_id: str) -> None:
    """A reminder timer fired: remind the assignees, or, once the reminders are used up,
    escalate the task to ``escalate_to``."""
    row, wait = _open_wait_of(tx, ctx, wait_id)
    task = wait.human_task
    if task is None:
        return
    fired = tx.one(
        "SELECT COUNT(*) FROM timers WHERE intent_id = ? AND wait_id = ? "  # (by intent: indexed)
        "AND kind = 'reminder' AND status = 'fired'",
        (row.intent_id, wait_id),
    )
    count = int(fired[0]) if fired else 0
    interval = task.remind_interval_seconds or task.remind_after_seconds or 0
    names = task.assignees + [f"group:{g}" for g in task.groups]
    if count <= task.max_reminders:
        append_event(tx, ctx, row, "intent.reminder",
                     details={"wait_id": wait_id, "remind_count": count, "assignees": names})  # fmt: skip
        if count < task.max_reminders or task.escalate_to is not None:
            _add_timer(
                tx,
                "reminder",
                row.intent_id,
                wait_id,
                tstext(ctx.now + timedelta(seconds=interval)),
            )
        return
    if task.escalate_to is None:
        return
    target = task.escalate_to
    group = target.removeprefix("group:") if target.startswith("group:") else None
    moved = task.model_copy(
        update={"assignees": [] if group else [target], "groups": [group] if group else []}
    )
    spec = loads(load_wait_row(tx, wait_id)[5], "wait spec")
    spec["human_task"] = moved.model_dump(mode="json")
    tx.execute_later(
        "UPDATE waits SET spec = ?, assignees = ? WHERE wait_id = ?",
        (dumps(spec), _assignees(moved), wait_id),
    )
    _index_task(tx, row.workspace, wait_id, moved, load_wait_row(tx, wait_id)[7])
    append_event(tx, ctx, row, "intent.escalated",
                 details={"wait_id": wait_id, "from": names, "to": target, "reminders": count - 1})  # fmt: skip
