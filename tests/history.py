"""A store's history made quickly: rows copied by the thousand, as a long-lived store has them
(for tests of what must not slow down as history grows)."""

from __future__ import annotations

from tether.store import Store, Tx

OLD = "2020-01-01T00:00:00.000000Z"


def columns(store: Store, table: str) -> list[str]:
    """The table's columns, in order."""
    if store.url.startswith("postgresql"):
        rows = store.read(lambda tx: tx.all(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position",
            (table,),
        ))  # fmt: skip
        return [r[0] for r in rows]
    return [r[1] for r in store.read(lambda tx: tx.all(f"PRAGMA table_info({table})"))]


def clone(
    store: Store, table: str, key: str, ids: list[str], copies: int, dated: tuple[str, ...] = ()
) -> None:
    """``copies`` copies of each row ``key IN ids`` under new keys, the ``dated`` columns set
    to ``OLD``."""
    names = columns(store, table)
    picked = ", ".join(f"{c} || ?" if c == key else ("?" if c in dated else c) for c in names)
    marks = ", ".join("?" * len(ids))

    def copy(tx: Tx) -> None:
        for k in range(copies):
            tx.execute(
                f"INSERT INTO {table} ({', '.join(names)}) SELECT {picked} FROM {table} "
                f"WHERE {key} IN ({marks})",
                (f"-{k}", *[OLD] * len(dated), *ids),
            )

    store.write(copy)
