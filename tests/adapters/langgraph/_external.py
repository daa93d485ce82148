"""An external system for the side effects of the graphs that tests run in real processes.

It applies each idempotency key once (a SQLite table with a unique key), as a payment
provider does, and logs every call, applied or not, with the label the caller's code gave it
and the calling process, so a test can tell which version of the code made a call, in which
process, and whether a call was ever repeated. The idempotency key of a call is its entry
in the run's journal: ``<intent id>:<journal key>`` (see :func:`journal_key`).

Environment: ``EFFECTS``, the SQLite file (create it with :func:`create`).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from langgraph.config import get_config
from tether_langgraph._binding import binding_of, in_tool_call, scoped_key


def create(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS executions "
            "(key TEXT NOT NULL, label TEXT NOT NULL, pid INTEGER NOT NULL)"
        )
        db.execute("CREATE TABLE IF NOT EXISTS applied (key TEXT PRIMARY KEY)")


def journal_key(kind: str, name: str) -> str:
    """The idempotency key of a call made by the running node: the key under which tether's
    journal records it (``kind`` is ``"step"`` for :func:`tether_langgraph.step`, ``"tool"``
    for a tool call of ``tool_node``, named by its tool call id), prefixed by the run."""
    config = get_config()
    binding = binding_of(config)
    assert binding is not None, "the graph runs outside a tether run"
    if kind == "tool":  # a tool call's record is keyed by its task and id, outside the call
        with in_tool_call(None):
            return f"{binding.intent_id}:{scoped_key(config, kind, name)}"
    return f"{binding.intent_id}:{scoped_key(config, kind, name)}"


def call(key: str, label: str) -> str:
    """Call the external system: applies ``key`` once, logs the call either way."""
    path = os.environ["EFFECTS"]
    with closing(sqlite3.connect(path, timeout=60)) as db, db:  # one transaction
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            "INSERT INTO executions (key, label, pid) VALUES (?, ?, ?)", (key, label, os.getpid())
        )
        db.execute("INSERT OR IGNORE INTO applied (key) VALUES (?)", (key,))
    return label


@dataclass(frozen=True)
class Execution:
    key: str
    label: str
    pid: int

    @property
    def intent_id(self) -> str:
        return self.key.split(":", 1)[0]


def executions(path: Path) -> list[Execution]:
    """Every call, in the order they were made."""
    with closing(sqlite3.connect(path, timeout=60)) as db:
        rows = db.execute("SELECT key, label, pid FROM executions ORDER BY rowid").fetchall()
    return [Execution(*row) for row in rows]


def applied(path: Path) -> set[str]:
    """The keys the system applied (each once)."""
    with closing(sqlite3.connect(path, timeout=60)) as db:
        return {key for (key,) in db.execute("SELECT key FROM applied")}
