"""The SQLite store: durability settings, group commit, migrations, corruption."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tether
from tether.store import LATEST, MIGRATIONS, Migration, SQLiteStore, open_store

from ..polling import eventually


def test_durable_settings(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    try:
        conn = store._wconn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()


def test_default_location_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with tether.connect() as client:
        client.create_intent("a.b.v1", "agent://x/y")
    assert (tmp_path / ".tether" / "tether.db").exists()
    monkeypatch.setenv("TETHER_DB", f"sqlite:///{tmp_path / 'env.db'}")
    with tether.connect() as client:
        assert client.list_intents().items == []
    assert (tmp_path / "env.db").exists()


def test_unknown_url_is_a_clear_error() -> None:
    with pytest.raises(tether.StoreError, match="unknown store URL"):
        open_store("mysql://x")


def test_a_failing_write_rolls_back_alone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.write(lambda tx: tx.execute("CREATE TABLE t (x INTEGER UNIQUE)"))
    barrier = threading.Barrier(12)
    errors: list[BaseException] = []

    def insert(value: int) -> None:
        barrier.wait()
        try:
            store.write(lambda tx: tx.execute("INSERT INTO t VALUES (?)", (value,)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=insert, args=(i % 6,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = sorted(r[0] for r in store.read(lambda tx: tx.all("SELECT x FROM t")))
    store.close()
    assert rows == list(range(6))  # each value once; the duplicates failed alone
    assert len(errors) == 6


def test_a_batch_keeps_what_succeeded_and_undoes_only_the_failed_job(tmp_path: Path) -> None:
    """Jobs queued together commit together. One that fails before writing leaves nothing to
    undo; one that fails after writing is undone alone (the batch is replayed with a savepoint
    per job), and the rest of the batch still commits."""
    store = SQLiteStore(tmp_path / "s.db")
    store.write(lambda tx: tx.execute("CREATE TABLE t (x INTEGER)"))
    hold = threading.Event()
    runs: list[str] = []

    def blocker(tx: Any) -> None:
        hold.wait(10)

    def insert(value: int, fail_after: bool = False) -> Callable[[Any], int]:
        def job(tx: Any) -> int:
            runs.append(f"insert {value}")
            tx.execute("INSERT INTO t VALUES (?)", (value,))
            if fail_after:
                raise ValueError(f"after writing {value}")
            return value

        return job

    def fails_first(tx: Any) -> None:
        tx.one("SELECT COUNT(*) FROM t")
        raise KeyError("before writing")

    first = store.submit(blocker)  # the writer is busy: the rest queue into one batch
    time.sleep(0.05)
    futures = [store.submit(insert(1)), store.submit(insert(2, fail_after=True)),
               store.submit(fails_first), store.submit(insert(3))]  # fmt: skip
    hold.set()
    first.result(10)
    assert futures[0].result(10) == 1 and futures[3].result(10) == 3
    with pytest.raises(ValueError, match="after writing 2"):
        futures[1].result(10)
    with pytest.raises(KeyError):
        futures[2].result(10)
    rows = sorted(r[0] for r in store.read(lambda tx: tx.all("SELECT x FROM t")))
    store.close()
    assert rows == [1, 3]  # the failed job's insert was undone, no one else's
    assert runs.count("insert 1") == 2  # the batch was replayed once, guarded


def test_a_lone_write_commits_on_its_callers_thread_but_never_beside_a_batch(
    tmp_path: Path,
) -> None:
    """With nothing queued, a write commits on the calling thread (no hand-over to the writer
    and back). While the writer thread runs a batch, a write waits for it and joins the
    writer's next batch: the connection is never used by two threads at once."""
    store = SQLiteStore(tmp_path / "s.db")
    try:
        store.write(lambda tx: tx.execute("CREATE TABLE t (x INTEGER)"))
        caller = threading.current_thread()
        ran_on = store.write(lambda tx: threading.current_thread())
        assert ran_on is caller
        hold = threading.Event()
        events: list[str] = []

        def blocker(tx: Any) -> None:
            events.append("batch starts")
            hold.wait(10)
            events.append("batch ends")

        first = store.submit(blocker)
        time.sleep(0.05)
        threading.Timer(0.1, hold.set).start()

        def insert(tx: Any) -> threading.Thread:
            events.append("write runs")
            tx.execute("INSERT INTO t VALUES (1)")
            return threading.current_thread()

        assert store.write(insert) is not caller  # it waited for the writer's batch
        first.result(5)
        assert events == ["batch starts", "batch ends", "write runs"]
        assert store.read(lambda tx: tx.all("SELECT x FROM t")) == [(1,)]
    finally:
        store.close()


def test_a_commit_interrupted_on_the_callers_thread_leaves_nothing_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KeyboardInterrupt (or a signal handler's exception) can cut a caller's own commit short
    anywhere; the transaction it began is rolled back and the next write goes through."""
    store = SQLiteStore(tmp_path / "s.db")
    try:
        store.write(lambda tx: tx.execute("CREATE TABLE t (x INTEGER)"))
        real = store._commit

        def interrupted(batch: list[Any]) -> None:
            store._wconn.execute("BEGIN IMMEDIATE")
            store._wconn.execute("INSERT INTO t VALUES (1)")
            raise KeyboardInterrupt

        monkeypatch.setattr(store, "_commit", interrupted)
        with pytest.raises(KeyboardInterrupt):
            store.write(lambda tx: None)
        monkeypatch.setattr(store, "_commit", real)
        assert not store._wconn.in_transaction
        store.write(lambda tx: tx.execute("INSERT INTO t VALUES (2)"))
        assert store.read(lambda tx: tx.all("SELECT x FROM t")) == [(2,)]
    finally:
        store.close()


def test_a_write_inside_a_write_is_refused(tmp_path: Path) -> None:
    """On the writer thread or on the caller's own, a nested write would wait for itself."""
    store = SQLiteStore(tmp_path / "s.db")
    try:

        def nested(tx: Any) -> str:
            with pytest.raises(RuntimeError, match="inside a write"):
                store.write(lambda inner: None)
            return "refused"

        assert store.write(nested) == "refused"  # a lone write: on this thread
        assert store.submit(nested).result(5) == "refused"  # on the writer thread
    finally:
        store.close()


def test_migrations_upgrade_an_older_store_and_refuse_a_newer_one(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    old = SQLiteStore(path, migrations=MIGRATIONS[:1])  # a store written by the first release
    intent_id = "01a21a65-0000-7000-8000-000000000001"
    old.write(
        lambda tx: tx.execute(
            "INSERT INTO intents (intent_id, workspace, intent_type, correlation_id, to_agent, "
            "payload, metadata, status, seq, head_hash, created_at, updated_at, schema_version) "
            "VALUES (?, 'default', 'a.b.v1', 'c', 'agent://x/y', '{\"kept\":true}', '{}', "
            "'SUBMITTED', 0, '', '2030-01-01T00:00:00.000000Z', '2030-01-01T00:00:00.000000Z', 1)",
            (intent_id,),
        )
    )
    old.close()
    intent = tether.Intent.model_construct(intent_id=intent_id)
    with tether.connect(f"sqlite:///{path}") as client:  # this release upgrades it in place
        assert client.store.schema_version == LATEST
        assert client.get_intent(intent.intent_id).payload == {"kept": True}
    newer = (
        *MIGRATIONS,
        Migration(LATEST + 1, "a test column", ("ALTER TABLE intents ADD COLUMN note TEXT",)),
    )
    store = SQLiteStore(path, migrations=newer)
    assert store.schema_version == LATEST + 1
    store.close()
    versions = sqlite3.connect(path).execute("SELECT version FROM tether_migrations").fetchall()
    assert versions == [(v,) for v in range(1, LATEST + 2)]
    with pytest.raises(tether.StoreError) as info:
        SQLiteStore(path)  # this release does not know the newest migration
    assert info.value.code == "schema_too_new"
    store = SQLiteStore(path, migrations=newer)
    engine = tether.engine.Engine(store)
    assert engine.get_intent(intent.intent_id).payload == {"kept": True}
    store.close()


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(tether.StoreError):
        tether.connect(f"sqlite:///{path}")


def test_hand_edited_json_is_reported_not_loaded(db_url: str, tmp_path: Path) -> None:
    with tether.connect(db_url) as client:
        intent = client.create_intent("a.b.v1", "agent://x/y", {"a": 1})
    conn = sqlite3.connect(tmp_path / "tether.db")
    conn.execute("UPDATE intents SET payload = '{broken' WHERE intent_id = ?", (intent.intent_id,))
    conn.commit()
    conn.close()
    with tether.connect(db_url) as client, pytest.raises(tether.CorruptStore):
        client.get_intent(intent.intent_id)


def test_a_cancelled_write_is_dropped_and_the_writer_survives(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.write(lambda tx: tx.execute("CREATE TABLE t (x INTEGER)"))
    gate = threading.Event()
    first = store.submit(lambda tx: gate.wait(5))
    second = store.submit(lambda tx: tx.execute("INSERT INTO t VALUES (1)"))
    assert second.cancel()
    gate.set()
    first.result(5)
    store.write(lambda tx: tx.execute("INSERT INTO t VALUES (2)"))  # the writer is still alive
    rows = store.read(lambda tx: tx.all("SELECT x FROM t"))
    store.close()
    assert rows == [(2,)]


def test_a_write_racing_close_fails_instead_of_waiting_for_ever(tmp_path: Path) -> None:
    """close() lets the writer finish what was queued before it; a write that passed the open
    check as close() began, and queued behind the stop, fails at once."""
    store = SQLiteStore(tmp_path / "s.db")
    store.write(lambda tx: tx.execute("CREATE TABLE t (x INTEGER)"))
    gate = threading.Event()
    busy = store.submit(lambda tx: gate.wait(5))  # holds the writer thread
    before = store.submit(lambda tx: tx.execute("INSERT INTO t VALUES (1)"))
    closer = threading.Thread(target=store.close)
    closer.start()
    assert eventually(lambda: store._closed, 5)
    store._check_open = lambda: None  # type: ignore[method-assign]  # it passed just before
    late = store.submit(lambda tx: tx.execute("INSERT INTO t VALUES (2)"))
    assert not late.done()  # queued behind the stop, and the caller did not wait for the writer
    gate.set()
    with pytest.raises(tether.StoreClosed):
        late.result(5)
    closer.join(5)
    assert not closer.is_alive()
    assert busy.result(0) is True
    assert before.result(0) == 1
    once_closed = store.submit(lambda tx: tx.execute("INSERT INTO t VALUES (3)"))
    with pytest.raises(tether.StoreClosed):  # the writer is gone: at once
        once_closed.result(0)
    reopened = SQLiteStore(tmp_path / "s.db")
    try:
        assert reopened.read(lambda tx: tx.all("SELECT x FROM t")) == [(1,)]
    finally:
        reopened.close()


def test_a_writer_thread_that_fails_fails_its_writes_and_takes_no_more(tmp_path: Path) -> None:
    """If the writer thread itself fails (a bug, an I/O error outside any job), the writes it
    held fail, later writes are refused with a StoreError (not "closed": nobody closed it,
    and nothing waits for ever), and reads go on."""
    store = SQLiteStore(tmp_path / "s.db")
    try:
        store.write(lambda tx: tx.execute("CREATE TABLE t (x INTEGER)"))

        def broken(topics: object) -> None:
            raise OSError("disk gone")

        store._notify = broken  # type: ignore[method-assign,assignment]  # runs after COMMIT
        held = store.submit(lambda tx: tx.execute("INSERT INTO t VALUES (1)"))
        with pytest.raises(tether.StoreError, match="writer failed") as info:
            held.result(5)
        assert not isinstance(info.value, tether.StoreClosed)
        with pytest.raises(tether.StoreError, match="takes no more writes"):
            store.write(lambda tx: tx.execute("INSERT INTO t VALUES (2)"))
        with pytest.raises(tether.StoreError, match="takes no more writes"):
            store.submit(lambda tx: tx.execute("INSERT INTO t VALUES (3)"))
        assert store.read(lambda tx: tx.all("SELECT x FROM t")) == [(1,)]  # it had committed
    finally:
        store.close()


def test_a_truncated_store_is_refused_not_half_loaded(db_url: str, tmp_path: Path) -> None:
    with tether.connect(db_url) as client:
        for _ in range(200):
            client.create_intent("a.b.v1", "agent://x/y", {"pad": "x" * 500})
    path = tmp_path / "tether.db"
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)
    for extra in ("tether.db-wal", "tether.db-shm"):
        (tmp_path / extra).unlink(missing_ok=True)
    with pytest.raises(tether.StoreError) as refused:
        tether.connect(db_url)
    assert "malformed" in refused.value.message
