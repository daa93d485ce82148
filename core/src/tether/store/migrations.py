"""Applying the schema's migrations, one transaction each, safely from many processes."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..clock import to_text
from ..errors import StoreError
from .schema import Migration


def apply_migrations(
    conn: sqlite3.Connection, dialect: str, migrations: Sequence[Migration]
) -> int:
    """Bring the store up to the newest migration this release knows; return its version.

    Raises :class:`StoreError` if the store was written by a newer release.
    """
    known = max((m.version for m in migrations), default=0)
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS tether_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        current = _current(conn)
        if current > known:
            raise StoreError(
                f"the store's schema is version {current}, newer than this tether knows "
                f"({known}); upgrade tether before opening it",
                code="schema_too_new",
            )
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version <= current:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                if _current(conn) >= migration.version:  # another process applied it meanwhile
                    conn.execute("ROLLBACK")
                    continue
                for statement in migration.sql(dialect):
                    conn.execute(statement)
                if migration.version == 1:
                    conn.execute(
                        "INSERT INTO tether_meta (key, value) VALUES ('secret', ?)",
                        (secrets.token_hex(32),),
                    )
                conn.execute(
                    "INSERT INTO tether_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, to_text(datetime.now(UTC))),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return _current(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read or migrate the store: {exc}", code="store_corrupt") from exc


def _current(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM tether_migrations").fetchone()
    return int(row[0])


_LOCK_ID = 0x7E7E_0001  # the advisory lock that serializes migrations across replicas


def apply_migrations_pg(conn: Any, migrations: Sequence[Migration]) -> int:
    """The PostgreSQL twin of :func:`apply_migrations` (a psycopg connection, autocommit off).

    Each migration runs in its own transaction under an advisory lock, so replicas starting
    together apply it once.
    """
    import psycopg

    known = max((m.version for m in migrations), default=0)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS tether_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
        with conn.transaction():
            current = _current_pg(conn)
        if current > known:
            raise StoreError(
                f"the store's schema is version {current}, newer than this tether knows "
                f"({known}); upgrade tether before opening it",
                code="schema_too_new",
            )
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version <= current:
                continue
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
                if _current_pg(conn) >= migration.version:
                    continue
                for statement in migration.sql("postgresql"):
                    conn.execute(statement)
                if migration.version == 1:
                    conn.execute(
                        "INSERT INTO tether_meta (key, value) VALUES ('secret', %s)",
                        (secrets.token_hex(32),),
                    )
                conn.execute(
                    "INSERT INTO tether_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, to_text(datetime.now(UTC))),
                )
        with conn.transaction():
            return _current_pg(conn)
    except psycopg.Error as exc:
        raise StoreError(f"cannot read or migrate the store: {exc}") from exc


def _current_pg(conn: Any) -> int:
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM tether_migrations").fetchone()
    return int(row[0])
