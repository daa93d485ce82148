"""Reads and lists must not walk history: with thousands of ended intents and old webhook
deliveries in the store, each statement of these operations examines about as many rows as
it returns. (A query plan that walks history passes every functional test on a small store
and takes tens of milliseconds at production size; see docs/decisions.md, Store.)

The work is counted, not timed: SQLite's virtual-machine steps (a progress handler) and,
on PostgreSQL, the rows and pages that the plan which would run scans and filters away: the
generic plan of the prepared statement (psycopg prepares a statement once it has run five
times, and the generic plan is the one that then runs), or for a statement the store plans
afresh each time (``replan``), the plan for its values."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import tether
from tether import FrozenClock, HumanTask, Status
from tether.clock import to_text
from tether.store import Tx
from tether.store.sqlite import sqlite_path

from ..history import OLD, clone
from ..pg import fresh_schema

HISTORY = 1700  # copies of each of three ended intents: 5,100 ended intents of one agent
AGENT = "agent://hist/busy"
SQLITE_STEPS = 5_000  # a walk of the history takes several times this
PG_ROWS = 1_000


def _pg_rows(plan: dict[str, Any]) -> int:
    """Rows a plan's scans produced or filtered away, over all their loops."""
    loops = plan.get("Actual Loops", 1)
    rows = 0
    if "Scan" in plan.get("Node Type", ""):
        rows += plan.get("Actual Rows", 0) * loops
    rows += (
        plan.get("Rows Removed by Filter", 0) + plan.get("Rows Removed by Index Recheck", 0)
    ) * loops
    return int(rows + sum(_pg_rows(p) for p in plan.get("Plans", [])))


def _work(url: str, sql: str, params: tuple[Any, ...], replan: bool) -> tuple[int, str]:
    """How much one statement reads (rolled back if it writes), and its plan: on PostgreSQL
    the generic plan, or the plan for its values if the store plans it so each time."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
        try:
            steps = [0]

            def count() -> int:
                steps[0] += 1
                return 0

            plan = "; ".join(str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            conn.execute("BEGIN")
            conn.set_progress_handler(count, 1)
            conn.execute(sql, params).fetchall()
            conn.set_progress_handler(None, 0)
            conn.execute("ROLLBACK")
            return steps[0], plan
        finally:
            conn.close()
    numbered = sql
    for n in range(1, len(params) + 1):
        numbered = numbered.replace("?", f"${n}", 1)
    with psycopg.connect(url) as pg:  # one transaction, rolled back (EXPLAIN ANALYZE runs it)
        mode = "force_custom_plan" if replan else "force_generic_plan"
        pg.execute(f"SET LOCAL plan_cache_mode = {mode}")
        pg.execute(f"PREPARE q AS {numbered}")
        args = f"({', '.join(psycopg.sql.quote(p) for p in params)})" if params else ""
        row = pg.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE q{args}").fetchone()
        assert row is not None
        found = row[0] if isinstance(row[0], list) else json.loads(row[0])
        pg.rollback()
    plan = found[0]["Plan"]
    # rows, and pages: index entries a scan reads and rejects show in no row count
    pages = plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
    return max(_pg_rows(plan), pages), json.dumps(plan)[:2000]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def history(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A store with 5,100 ended intents of one agent and as many old webhook deliveries, and
    a few live intents of every kind on top (one per dialect, for every test here: the
    operations measured change nothing that another one reads)."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('history') / 'tether.db'}"
        else:
            url = stack.enter_context(fresh_schema())
        yield stack.enter_context(_history(url))


@contextlib.contextmanager
def _history(url: str) -> Iterator[dict[str, Any]]:
    with tether.connect(url) as client:
        sub = client.engine.subscribe("http://127.0.0.1:9/hook", ["*"], allow_private=True)
        ended = []
        for n in range(3):
            intent = client.create_intent(
                "hist.old.v1", AGENT, correlation_id=f"old-{n}", from_agent="agent://hist/old",
                reply_to="agent://hist/old", human_task=HumanTask(title="old"),
            )  # fmt: skip
            client.approve(intent.intent_id)
            client.complete(intent.intent_id, {}, lease=client.start(intent.intent_id))
            ended.append(intent.intent_id)
        deliveries = [
            r[0]
            for r in client.store.read(
                lambda tx: tx.all("SELECT delivery_id FROM webhook_deliveries")
            )
        ]
        clone(client.store, "intents", "intent_id", ended, HISTORY, ("created_at", "updated_at"))
        clone(
            client.store, "webhook_deliveries", "delivery_id", deliveries, HISTORY, ("created_at",)
        )

        def old_reminders(tx: Tx) -> None:  # reminders of tasks closed long ago
            for k in range(3 * HISTORY):
                tx.execute(
                    "INSERT INTO timers (kind, intent_id, wait_id, due_at, status, fired_at) "
                    "VALUES ('reminder', ?, ?, ?, 'fired', ?)",
                    (f"{ended[k % 3]}-{k // 3}", f"wait-old-{k}", OLD, OLD),
                )

        client.store.write(old_reminders)
        if client.store.url.startswith("postgresql"):
            client.store.write(lambda tx: tx.execute("ANALYZE"))  # as autovacuum would
        start = client.clock.now()
        parent = client.create_intent("hist.live.v1", AGENT, correlation_id="live")
        child = client.create_intent(
            "hist.rare.v1", AGENT, parent_intent_id=parent.intent_id,
            from_agent="agent://hist/live", reply_to="agent://hist/live",
        )  # fmt: skip
        client.start(parent.intent_id)
        asked = client.create_intent("hist.live.v1", AGENT, human_task=HumanTask(title="new"))
        clock = FrozenClock(start=client.clock.now())
        with tether.connect(url, clock=clock) as timed:  # (its reminders fire when told)
            task = HumanTask(title="remind me", remind_after_seconds=60, max_reminders=3)
            timed.create_intent("hist.live.v1", AGENT, human_task=task)
            yield {
                "client": client, "sub": sub.subscription_id, "start": start,
                "parent": parent.intent_id, "child": child.intent_id, "asked": asked.intent_id,
                "clock": clock, "timed": timed,
            }  # fmt: skip


def _statements(
    client: tether.Client, op: Callable[[], object]
) -> list[tuple[str, tuple[Any, ...], bool]]:
    """The statements ``op`` runs, with their values and whether they are planned afresh."""
    seen: list[tuple[str, tuple[Any, ...], bool]] = []
    tx_type = type(client.store.read(lambda tx: tx))
    originals = {name: getattr(tx_type, name) for name in ("one", "all", "execute")}

    def spy(name: str) -> Callable[..., Any]:
        def run(self: Tx, sql: str, params: tuple[Any, ...] = (), **options: Any) -> Any:
            if "INSERT INTO" not in sql:  # (an insert walks nothing, and ran already)
                shown = sql.removesuffix(" FOR UPDATE SKIP LOCKED")  # (EXPLAIN runs it alone)
                seen.append((shown, tuple(params), bool(options.get("replan"))))
            return originals[name](self, sql, params, **options)

        return run

    for name in originals:
        setattr(tx_type, name, spy(name))
    try:
        op()
    finally:
        for name, original in originals.items():
            setattr(tx_type, name, original)
    return seen


def _remind(h: dict[str, Any]) -> None:
    h["clock"].advance(61)
    assert h["timed"].fire_due_timers() == 1  # the live task's reminder, counted among old ones


def _claim(h: dict[str, Any]) -> None:
    claim = h["client"].claim(AGENT)  # the one claimable intent, among 5,100 ended ones
    assert claim is not None and claim.intent.intent_id == h["child"]


OPERATIONS: dict[str, Callable[[dict[str, Any]], object]] = {
    "runnable intents": lambda h: h["client"].list_intents(
        status=[Status.SUBMITTED, Status.IN_PROGRESS]
    ),
    "an agent's live intents": lambda h: h["client"].list_intents(
        to_agent=AGENT, status=[Status.SUBMITTED, Status.IN_PROGRESS, Status.WAITING]
    ),
    "an agent's intents": lambda h: h["client"].list_intents(to_agent=AGENT, limit=5),
    "an idle agent's intents": lambda h: h["client"].list_intents(to_agent="agent://hist/none"),
    "an idle agent's ended intents": lambda h: h["client"].list_intents(
        to_agent="agent://hist/none", status=Status.COMPLETED
    ),
    "a parent's children": lambda h: h["client"].list_intents(parent_intent_id=h["parent"]),
    "by correlation id": lambda h: h["client"].list_intents(correlation_id="live"),
    "by sender": lambda h: h["client"].list_intents(from_agent="agent://hist/live"),
    "by type": lambda h: h["client"].list_intents(intent_type="hist.rare.v1"),
    "a reply-to inbox's changes": lambda h: h["client"].engine.inbox_changes(
        reply_to="agent://hist/live", after=(to_text(h["start"]), "")
    ),
    "the human inbox's changes": lambda h: h["client"].engine.inbox_changes(
        after=(to_text(h["start"]), "")
    ),
    "the delivery log": lambda h: h["client"].engine.list_deliveries(h["sub"], limit=20),
    "a replay by time": lambda h: h["client"].engine.replay_deliveries(
        subscription_id=h["sub"], since=h["start"], until=h["start"] + timedelta(hours=1)
    ),
    "the backlog": lambda h: h["client"].engine.backlog(),
    "a reminder": lambda h: _remind(h),
    "a claim": lambda h: _claim(h),
}


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_no_statement_walks_history(history: dict[str, Any], name: str) -> None:
    client: tether.Client = history["client"]
    statements = _statements(client, lambda: OPERATIONS[name](history))
    assert statements
    for sql, params, replan in statements:
        work, plan = _work(client.store.url, sql, params, replan)
        bound = SQLITE_STEPS if client.store.url.startswith("sqlite") else PG_ROWS
        assert work < bound, f"{name}: {sql} examined {work}\n{plan}"
