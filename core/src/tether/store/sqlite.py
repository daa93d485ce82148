"""The SQLite dialect: the embedded store, durable by default, with group commit.

Durability: WAL with ``synchronous=FULL``, so the WAL is synced before a commit returns and an
acknowledged write survives SIGKILL and a power cut.

Throughput: a sync per commit would cap every process at the disk's sync rate, so one writer
thread per store takes every write waiting at that moment and runs them in one transaction,
then commits once (a write that fails is undone alone: see :meth:`SQLiteStore._apply`).
Callers return only after that commit. A write that finds nothing queued and no commit
running commits on its caller's thread. Other processes on the same file take turns through
SQLite's own lock (``busy_timeout``).
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..errors import StoreClosed, StoreError, TetherError
from .base import Row, Store, Tx, TxState
from .bridge import bridged, settling_together, wait_future
from .migrations import apply_migrations
from .schema import MIGRATIONS, Migration

T = TypeVar("T")

_STOP = object()
logger = logging.getLogger("tether.store")


class _SQLiteTx(TxState):
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__()
        self._conn = conn
        self.wrote = False
        """Whether this transaction ran anything but a SELECT (so a failure has to be undone)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.wrote = True
        return self._conn.execute(sql, params).rowcount

    def execute_later(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.execute(sql, params)  # (a local call: nothing to save by waiting)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        if not sql.startswith("SELECT"):
            self.wrote = True  # e.g. UPDATE ... RETURNING
        row: Row | None = self._conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = (), *, replan: bool = False) -> list[Row]:
        if not sql.startswith("SELECT"):
            self.wrote = True
        return self._conn.execute(sql, params).fetchall()

    def all_of(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        return [self.all(sql, params) for sql, params in queries]


class _Writing(threading.local):
    active = False
    """Whether this thread is inside a write: the writer thread always, a caller while it
    commits on its own thread (see :meth:`SQLiteStore.write`)."""


@dataclass
class _Job:
    fn: Callable[[Tx], Any]
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///`` URL (``sqlite:///rel.db``, ``sqlite:////abs.db``)."""
    if not url.startswith("sqlite:///"):
        raise StoreError(f"not a SQLite URL: {url!r} (expected sqlite:///path/to/tether.db)")
    path = url[len("sqlite:///") :]
    if not path:
        raise StoreError("a SQLite URL needs a file path: sqlite:///path/to/tether.db")
    return path


class SQLiteStore(Store):
    """The embedded store, one file. Safe for many threads and many processes at once."""

    embedded = True

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 60.0,
        max_batch: int = 512,
        migrations: Sequence[Migration] = MIGRATIONS,
        poll_interval: float = 0.05,
    ) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._busy_timeout = busy_timeout
        self._max_batch = max_batch
        self._poll_seconds = poll_interval
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wconn = self._connect()
            mode = self._wconn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc
        if str(mode).lower() != "wal":
            raise StoreError(f"the store at {self.path} cannot use WAL (journal_mode={mode})")
        self._schema_version = apply_migrations(self._wconn, "sqlite", migrations)
        self._readers: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._readers_lock = threading.Lock()
        self._watch = self._connect()
        self._watch_version: int = self._watch.execute("PRAGMA data_version").fetchone()[0]
        self._init_changes()
        self._closed = False
        self._stopped = False
        """Set by the writer thread once it takes no more jobs."""
        self._failed: BaseException | None = None
        """What stopped the writer thread, if it was not :meth:`close`."""
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._committing = threading.Lock()  # held by whoever runs a commit on _wconn
        self._writing = _Writing()
        self._thread = threading.Thread(target=self._run, name="tether-sqlite-writer", daemon=True)
        self._thread.start()

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @property
    def schema_version(self) -> int:
        return self._schema_version

    # -- reads -------------------------------------------------------------------------------

    def read(self, fn: Callable[[Tx], T]) -> T:
        self._check_open()
        conn = self._reader()
        try:
            conn.execute("BEGIN")
            try:
                return fn(_SQLiteTx(conn))
            finally:
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"store read failed: {exc}") from exc

    # -- writes ------------------------------------------------------------------------------

    def write(self, fn: Callable[[Tx], T]) -> T:
        self._check_writable()
        if self._writing.active:
            raise RuntimeError("store.write() called from inside a write")
        job = _Job(fn)
        if not bridged() and self._queue.empty() and self._committing.acquire(blocking=False):
            # Nothing else is waiting to be written: commit on this thread. The hand-over
            # to the writer thread and back costs two thread wake-ups, more than the
            # grouping could gain for one write (writes that queue meanwhile are grouped by
            # the writer thread once this commit ends). Never on an event loop: the disk
            # sync, and another process's write lock, would hold it.
            try:
                self._check_open()  # (again, under the commit lock close() takes)
                self._writing.active = True
                self._commit([job])
            finally:
                self._writing.active = False
                try:  # interrupted (KeyboardInterrupt, a signal's exception) mid-commit:
                    self._undo_interrupted(job)  # leave no transaction open behind it
                finally:
                    self._committing.release()
        else:
            self._enqueue(job)
        result: T = wait_future(job.future)  # on an event loop, under run_bridged: awaited
        return result

    def _undo_interrupted(self, job: _Job) -> None:
        """After a commit on a caller's thread: if an exception from outside the job (such as
        KeyboardInterrupt) cut it short, roll back what it left open and fail the job."""
        if self._closed:
            return
        if self._wconn.in_transaction:
            self._wconn.execute("ROLLBACK")
        if not job.future.done():
            job.future.set_exception(StoreError("the write was interrupted; nothing was stored"))

    def submit(self, fn: Callable[[Tx], T]) -> concurrent.futures.Future[T]:
        """Queue a write and return its future (resolved once the commit is durable)."""
        self._check_writable()
        job = _Job(fn)
        self._enqueue(job)
        return job.future

    def _enqueue(self, job: _Job) -> None:
        self._queue.put(job)
        if self._stopped:  # the writer has taken its last job: this one would wait for ever
            self._fail_queued()

    def _fail_queued(self) -> None:
        """Fail every job still queued (once the writer has stopped taking jobs). The writer
        thread and a caller may both do it at once: each job is taken by one of them."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not _STOP and job.future.set_running_or_notify_cancel():
                job.future.set_exception(self._gone())

    def _gone(self) -> StoreError:
        """Why the store takes no more writes: closed, or its writer thread failed."""
        if self._failed is not None:
            return StoreError(f"the store's writer failed and takes no more writes: "
                              f"{self._failed!r}; open the store again")  # fmt: skip
        return StoreClosed("the store is closed")

    def _run(self) -> None:
        self._writing.active = True
        try:
            self._take_jobs()
        except BaseException as exc:  # a bug or an I/O error outside any job: no more writes
            self._failed = exc
            logger.exception("the store's writer thread failed")
        finally:
            # Jobs queued behind the stop (by callers that checked the store was open just
            # before close() began) fail at once. The flag first, then the queue: a caller
            # that queues after the flag is set fails its job itself (see _enqueue).
            self._stopped = True
            self._fail_queued()

    def _take_jobs(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[_Job] = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            with self._committing:
                try:
                    self._commit(batch)
                except BaseException as exc:  # its callers must not wait for ever
                    self._fail(batch, StoreError(f"the store's writer failed: {exc!r}"))
                    raise
            if stop:
                return

    def _commit(self, batch: list[_Job]) -> None:
        # a job whose future was cancelled before it ran is dropped, never half-applied
        batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not batch:
            return
        outcomes = self._apply(batch, guarded=False)
        if outcomes is None:  # a job failed after writing: undo all, then one savepoint each
            outcomes = self._apply(batch, guarded=True)
        if outcomes is None:
            return
        conn = self._wconn
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._fail(batch, StoreError(f"commit failed, nothing of it was stored: {exc}"))
            return
        self._notify({t for _, tx, _, error in outcomes if error is None for t in tx.topics})
        with settling_together():  # an event loop awaiting several of them wakes once
            for job, tx, value, error in outcomes:
                if error is not None:
                    job.future.set_exception(error)
                    continue
                for callback in tx.callbacks:
                    try:
                        callback()
                    except Exception:  # a callback's failure must not stop the writer
                        logger.exception("after-commit callback failed")
                job.future.set_result(value)

    def _apply(
        self, batch: list[_Job], *, guarded: bool
    ) -> list[tuple[_Job, _SQLiteTx, Any, BaseException | None]] | None:
        """Run the batch's jobs in one open transaction, ready to commit.

        Unguarded (the first try), the jobs share one memo and take no savepoints: a job that
        fails before it writes anything leaves nothing to undo. If one fails after writing,
        everything is rolled back and None returned, for a guarded replay: each job in its own
        savepoint, so only its own changes are undone. (A job is a function of its
        transaction; a rolled-back try left nothing behind.) None also when the batch failed
        as a whole; its futures then hold the error.
        """
        conn = self._wconn
        outcomes: list[tuple[_Job, _SQLiteTx, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._fail(batch, StoreError(f"cannot begin a write: {exc}"))
            return None
        lone = len(batch) == 1  # a lone job needs no savepoint: its failure rolls back all
        memo: dict[Any, Any] = {}
        for job in batch:
            tx = _SQLiteTx(conn)
            if not guarded:
                tx.memo = memo  # one transaction: what one job read holds for the next
            elif not lone:
                conn.execute("SAVEPOINT job")
            try:
                value = job.fn(tx)
                for statement, params in tx.last_statements():  # the job's last statements
                    tx.execute(statement, params)
            except BaseException as exc:  # the job's own failure; roll back only its changes
                if not conn.in_transaction:  # SQLite aborted the whole transaction
                    exc = StoreError(f"the write was aborted, nothing of it was stored: {exc}")
                    self._fail(batch, exc)
                    return None
                if not tx.wrote:  # nothing to undo
                    outcomes.append((job, tx, None, _as_store_error(exc)))
                    continue
                if lone:
                    conn.execute("ROLLBACK")
                    self._fail(batch, _as_store_error(exc))
                    return None
                if not guarded:
                    conn.execute("ROLLBACK")
                    return None
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((job, tx, None, _as_store_error(exc)))
            else:
                if guarded and not lone:
                    conn.execute("RELEASE job")
                outcomes.append((job, tx, value, None))
        return outcomes

    @staticmethod
    def _fail(batch: list[_Job], error: BaseException) -> None:
        for job in batch:
            if not job.future.done():
                job.future.set_exception(error)

    # -- change notification -----------------------------------------------------------------

    def _poll_external(self) -> bool:
        """True if another process committed since the last check (WAL ``data_version``).
        Called with ``self._cond`` held, which :meth:`close` takes to close the connection."""
        if self._closed:
            return False
        version: int = self._watch.execute("PRAGMA data_version").fetchone()[0]
        if version == self._watch_version:
            return False
        self._watch_version = version
        return True

    def external_change(self) -> bool:
        """Like :meth:`_poll_external`, and counts the change (for the server's change feed)."""
        with self._cond:
            if not self._poll_external():
                return False
            self._counter += 1
            self._unknown += 1
            return True

    # -- lifecycle ---------------------------------------------------------------------------

    def _check_writable(self) -> None:
        self._check_open()
        if self._failed is not None:
            raise self._gone()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._cond:  # no waiter is polling it while it closes
            self._watch.close()
        with self._committing:  # no caller is committing on it while it closes
            self._wconn.close()


def _as_store_error(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError) and not isinstance(
        exc, TetherError
    ):
        return StoreError(f"store write failed: {exc}")
    return exc
