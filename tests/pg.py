"""A fresh PostgreSQL schema per test on the machine's server (127.0.0.1:5432, database
``test``, trust auth), so tests never see each other's rows."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg

if TYPE_CHECKING:
    import tether
    from tether.engine.context import Ctx
    from tether.engine.records import IntentRow

T = TypeVar("T")

PG_BASE = os.environ.get("TETHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def url_for(schema: str) -> str:
    return f"{PG_BASE}?options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def fresh_schema() -> Iterator[str]:
    """A URL whose connections live in a new, empty schema (dropped afterwards)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield url_for(schema)
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def until_a_session_waits_for_a_lock(url: str, seconds: float = 10.0) -> None:
    """Return once some session waits for a lock: a test that holds a row's lock knows the
    writer it raced has reached it."""
    from .polling import eventually

    def waiting() -> bool:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()
        return row is not None and row[0] >= 1

    assert eventually(waiting, seconds), "no session came to wait for a lock"


def second_writer_at_the_lock(
    client: tether.Client,
    intent_id: str,
    first: Callable[[Any, Ctx, IntentRow], T],
    second: Callable[[], Any],
) -> tuple[T, list[Any]]:
    """Race two writers for an intent's lock: a write takes the lock, ``second`` (in another
    thread) comes to wait for it, and only then does the write run ``first(tx, ctx, row)``.
    Returns what ``first`` returned and what ``second`` did (empty if it did not finish)."""
    from datetime import UTC, datetime

    import tether
    from tether.engine.context import Ctx
    from tether.engine.records import load_intent

    url = client.store.url  # type: ignore[attr-defined]
    system = tether.Principal.system()
    locked = threading.Event()
    seconds: list[Any] = []

    def write(tx: Any) -> T:
        row = load_intent(tx, intent_id, system)  # holds the intent's lock
        locked.set()
        until_a_session_waits_for_a_lock(url)  # the other writer has reached it
        return first(tx, Ctx(datetime.now(UTC), system, ""), row)

    def late() -> None:
        locked.wait(10)
        seconds.append(second())

    waiter = threading.Thread(target=late)
    waiter.start()
    done = client.store.write(write)
    waiter.join(10)
    return done, seconds
