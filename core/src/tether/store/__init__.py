"""Stores: one interface (:class:`Store`), one class per dialect, opened by URL."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import StoreError
from .base import AGENT_CHANGES, KEY_CHANGES, WEBHOOK_CHANGES, Store, Tx, work_for
from .schema import LATEST, MIGRATIONS, Migration
from .sqlite import SQLiteStore, sqlite_path

DEFAULT_URL = "sqlite:///.tether/tether.db"


def open_store(url: str | None = None) -> Store:
    """Open (and migrate) the store at ``url``; default ``TETHER_DB`` or ``./.tether/tether.db``."""
    url = url or os.environ.get("TETHER_DB") or DEFAULT_URL
    if url.startswith("sqlite:///"):
        return SQLiteStore(Path(sqlite_path(url)))
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url)
    raise StoreError(
        f"unknown store URL {url!r}: use sqlite:///path/to/tether.db or postgresql://..."
    )


__all__ = [
    "AGENT_CHANGES",
    "DEFAULT_URL",
    "KEY_CHANGES",
    "LATEST",
    "MIGRATIONS",
    "WEBHOOK_CHANGES",
    "Migration",
    "SQLiteStore",
    "Store",
    "Tx",
    "open_store",
    "sqlite_path",
    "work_for",
]
