"""The workload of the chaos suite: an agent whose every side effect goes to an "external
system" that applies each idempotency key once (a SQLite table with a unique key), and logs
every execution, applied or not, to a second table. The suite counts both."""

from __future__ import annotations

import os
import sqlite3
import time

import tether

AGENT = "agent://chaos/orders"
# a lease outlives a replica restart or a PostgreSQL restart (a few seconds): a worker cut off
# that briefly keeps its claim, so a step runs again only after its worker died
worker = tether.Worker(agent=AGENT, lease_seconds=10.0, poll_seconds=0.1)


def external(key: str) -> str:
    """Call the external system with an idempotency key; it applies each key once."""
    with sqlite3.connect(os.environ["CHAOS_EFFECTS"], timeout=30, isolation_level=None) as db:
        db.execute("INSERT INTO executions (key, pid) VALUES (?, ?)", (key, os.getpid()))
        db.execute("INSERT OR IGNORE INTO applied (key) VALUES (?)", (key,))
    return key


@worker.handler("chaos.order.v1")
def order(ctx: tether.WorkContext) -> dict[str, object]:
    intent_id = ctx.intent.intent_id
    ctx.step("reserve", lambda: external(f"{intent_id}:reserve"))
    if ctx.intent.payload["approval"]:
        decision = ctx.wait_for_human(tether.HumanTask(title="Ship it?"), key="approval")
        if decision.outcome != "approved":
            return {"shipped": False}
    time.sleep(float(ctx.intent.payload.get("work_seconds", 0.05)))  # a long call
    ctx.step("ship", lambda: external(f"{intent_id}:ship"))
    return {"shipped": True}


def effects_db(path: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS executions (key TEXT NOT NULL, pid INTEGER)")
        db.execute("CREATE TABLE IF NOT EXISTS applied (key TEXT PRIMARY KEY)")
