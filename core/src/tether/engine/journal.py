"""The steps journal and versioned opaque state: what lets work resume without replay."""

from __future__ import annotations

from typing import Any

from ..clock import from_text
from ..errors import InvalidRequest, VersionConflict
from ..model import StateEntry, StateRecord, Step, TurnUsage
from ..store import Tx
from ..store.base import Row
from .context import Ctx
from .intents import check_lease
from .records import dumps, load_intent, load_intent_with, loads
from .transitions import append_event

_RECORDED = "SELECT 1 FROM steps WHERE steps.intent_id = intents.intent_id AND steps.step_key = ?"


def _find_step(tx: Tx, intent_id: str, key: str) -> Step | None:
    row = tx.one(
        "SELECT step_key, result, recorded_at, schema_version FROM steps "
        "WHERE intent_id = ? AND step_key = ?",
        (intent_id, key),
    )
    return _step(intent_id, row) if row is not None else None


def _step(intent_id: str, row: tuple[Any, ...]) -> Step:
    key, result, recorded_at, version = row
    return Step(
        intent_id=intent_id,
        key=key,
        result=loads(result, "step result"),
        recorded_at=from_text(recorded_at),
        schema_version=version,
    )


def get_step(tx: Tx, ctx: Ctx, intent_id: str, key: str) -> Step | None:
    load_intent(tx, intent_id, ctx.actor)
    return _find_step(tx, intent_id, key)


def list_steps(tx: Tx, ctx: Ctx, intent_id: str) -> list[Step]:
    load_intent(tx, intent_id, ctx.actor)
    return steps_of(tx, intent_id)


STEPS_OF = (
    "SELECT step_key, result, recorded_at, schema_version FROM steps WHERE intent_id = ? "
    "ORDER BY recorded_at, step_key"
)
"""An intent's journal (its id the one parameter): :func:`steps_from` makes the steps."""


def steps_of(tx: Tx, intent_id: str) -> list[Step]:
    """The journal of an intent the caller has already loaded (and may see)."""
    return steps_from(intent_id, tx.all(STEPS_OF, (intent_id,)))


def steps_from(intent_id: str, rows: list[Row]) -> list[Step]:
    return [_step(intent_id, r) for r in rows]


def record_step(
    tx: Tx,
    ctx: Ctx,
    intent_id: str,
    key: str,
    result: Any,
    lease_token: str | None,
    usage: TurnUsage | None = None,
) -> tuple[Step, str | None]:
    """Record a finished step. The first record wins: a second one returns the first.

    With ``usage`` (the model turn the step holds), the turn's usage is reported in the same
    transaction, once (not again when the step was already recorded). Returns the step and,
    if that report crossed a ``require_approval`` spend cap, the human wait it opened.
    """
    if not key or len(key) > 512:
        raise InvalidRequest("a step key is 1 to 512 characters")
    # whether the step is recorded already, read with the intent (a record committed while
    # this waited for the intent's lock is caught by the steps' key: the write runs again)
    row, recorded = load_intent_with(tx, intent_id, ctx.actor, _RECORDED, (key,))
    check_lease(row, ctx, lease_token)
    if recorded:
        found = _find_step(tx, intent_id, key)
        assert found is not None
        return found, None
    stored = dumps(result)
    tx.execute_later(
        "INSERT INTO steps (intent_id, step_key, result, recorded_at, schema_version) "
        "VALUES (?, ?, ?, ?, 1)",
        (intent_id, key, stored, ctx.now_text),
    )
    append_event(tx, ctx, row, "intent.step_recorded", details={"key": key})
    # the result as a replay reads it back (JSON's: object keys are strings), so a handler
    # sees the same value on its first run as after a resume
    step = Step(intent_id=intent_id, key=key, result=loads(stored, "step result"),
                recorded_at=ctx.now)  # fmt: skip
    if usage is None:
        return step, None
    from .mesh import report_usage

    report = report_usage(
        tx, ctx, intent_id, usage.model, usage.tokens_in, usage.tokens_out, usage.cost_usd,
        lease_token, totals=False,
    )  # fmt: skip
    return step, report.approval_wait_id if report is not None else None


def get_state(tx: Tx, ctx: Ctx, intent_id: str, key: str) -> StateRecord | None:
    load_intent(tx, intent_id, ctx.actor)
    row = tx.one(
        "SELECT version, data, updated_at, schema_version FROM states "
        "WHERE intent_id = ? AND state_key = ?",
        (intent_id, key),
    )
    if row is None:
        return None
    return StateRecord(
        intent_id=intent_id,
        key=key,
        version=row[0],
        data=loads(row[1], "state"),
        updated_at=from_text(row[2]),
        schema_version=row[3],
    )


def _stored(
    tx: Tx,
    ctx: Ctx,
    intent_id: str,
    key: str,
    expected_version: int | None,
    lease_token: str | None,
) -> tuple[Row | None, int]:
    """Before a write of state ``key``: the intent checked (and its lease), then the stored
    row and version (0: none), which must be ``expected_version`` when one is given."""
    if expected_version is not None and not 0 <= expected_version <= 2**62:
        raise InvalidRequest("expected_version must be between 0 and 2**62")
    row = load_intent(tx, intent_id, ctx.actor)
    check_lease(row, ctx, lease_token)
    current = tx.one(
        "SELECT version FROM states WHERE intent_id = ? AND state_key = ?", (intent_id, key)
    )
    version = int(current[0]) if current else 0
    if expected_version is not None and version != expected_version:
        raise VersionConflict(
            f"state {key!r} of intent {intent_id} is at version {version}, not {expected_version}",
            details={"current_version": version, "expected_version": expected_version},
        )
    return current, version


def put_state(
    tx: Tx,
    ctx: Ctx,
    intent_id: str,
    key: str,
    data: Any,
    expected_version: int,
    lease_token: str | None,
) -> StateRecord:
    """Compare-and-set: write version ``expected_version + 1`` only if ``expected_version`` is
    the stored one (0 when there is none yet)."""
    current, version = _stored(tx, ctx, intent_id, key, expected_version, lease_token)
    text = dumps(data)
    if current is None:
        tx.execute_later(
            "INSERT INTO states (intent_id, state_key, version, data, updated_at, schema_version) "
            "VALUES (?, ?, 1, ?, ?, 1)",
            (intent_id, key, text, ctx.now_text),
        )
    else:
        tx.execute_later(
            "UPDATE states SET version = ?, data = ?, updated_at = ? "
            "WHERE intent_id = ? AND state_key = ? AND version = ?",
            (version + 1, text, ctx.now_text, intent_id, key, version),
        )
    return StateRecord(
        intent_id=intent_id, key=key, version=version + 1, data=data, updated_at=ctx.now
    )


MAX_KEYS = 1000
"""The most state keys one listing returns."""


def _key(tx: Tx) -> str:
    """The state key, compared by code point in every dialect: SQLite's default collation
    does so already; PostgreSQL's may follow a locale (``A`` between ``a`` and ``b``, say, so
    a prefix is no range), hence "C" there, which migration 9's index serves."""
    return 'state_key COLLATE "C"' if tx.dialect == "postgresql" else "state_key"


def _after_prefix(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix``, by code point (None:
    there is none, the prefix being all U+10FFFF)."""
    head = prefix.rstrip("\U0010ffff")
    if not head:
        return None
    last = ord(head[-1]) + 1
    return head[:-1] + chr(0xE000 if 0xD800 <= last <= 0xDFFF else last)  # no surrogates


def _prefixed(tx: Tx, prefix: str) -> tuple[str, list[Any]]:
    """SQL (after ``intent_id = ?``) and its parameters for keys that start with ``prefix``,
    as a range: exact whatever the prefix holds (no LIKE wildcards), and served by the key's
    index."""
    if not prefix:
        return "", []
    upper = _after_prefix(prefix)
    if upper is None:
        return f" AND {_key(tx)} >= ?", [prefix]
    return f" AND {_key(tx)} >= ? AND {_key(tx)} < ?", [prefix, upper]


def list_state(
    tx: Tx, ctx: Ctx, intent_id: str, prefix: str, after: str, limit: int
) -> list[StateEntry]:
    """The intent's state keys that start with ``prefix`` and sort after ``after``, in code
    point order, at most ``limit``; pass the last key back as ``after`` for the next page."""
    if not 1 <= limit <= MAX_KEYS:
        raise InvalidRequest(f"limit must be between 1 and {MAX_KEYS}")
    load_intent(tx, intent_id, ctx.actor)
    where, params = _prefixed(tx, prefix)
    if after:
        where += f" AND {_key(tx)} > ?"
        params.append(after)
    rows = tx.all(
        f"SELECT state_key, version, updated_at FROM states WHERE intent_id = ?{where} "
        f"ORDER BY {_key(tx)} LIMIT ?",
        (intent_id, *params, limit),
    )
    return [StateEntry(key=r[0], version=r[1], updated_at=from_text(r[2])) for r in rows]


def delete_state(
    tx: Tx,
    ctx: Ctx,
    intent_id: str,
    key: str,
    expected_version: int | None,
    lease_token: str | None,
) -> bool:
    """Delete one key; False if there was none. With ``expected_version``, only if that is
    the stored version (0: none), :class:`VersionConflict` otherwise."""
    if not key:
        raise InvalidRequest("a state key is not empty")
    current, version = _stored(tx, ctx, intent_id, key, expected_version, lease_token)
    if current is None:
        return False
    tx.execute_later(
        "DELETE FROM states WHERE intent_id = ? AND state_key = ? AND version = ?",
        (intent_id, key, version),
    )
    return True


def delete_state_prefix(
    tx: Tx, ctx: Ctx, intent_id: str, prefix: str, lease_token: str | None
) -> int:
    """Delete every key that starts with ``prefix``; return how many. An empty prefix is
    refused, so that no call deletes all of an intent's state by accident."""
    if not prefix:
        raise InvalidRequest("deleting state by prefix needs a prefix that is not empty")
    row = load_intent(tx, intent_id, ctx.actor)
    check_lease(row, ctx, lease_token)
    where, params = _prefixed(tx, prefix)
    return tx.execute(f"DELETE FROM states WHERE intent_id = ?{where}", (intent_id, *params))
