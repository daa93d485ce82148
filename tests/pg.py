"""A fresh PostgreSQL schema per test on the machine's server (127.0.0.1:5432, database
``test``, trust auth), so tests never see each other's rows."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import psycopg

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
