"""The PostgreSQL dialect: many ``tether serve`` replicas on one database.

Each write is one transaction on a pooled connection (PostgreSQL groups concurrent commits
itself). Intent rows are locked ``FOR UPDATE`` while they change; claims and timers are taken
with ``FOR UPDATE SKIP LOCKED`` so each fires once across replicas. Every commit sends a
NOTIFY; each replica LISTENs and wakes its streams, long-polls and waiters, with a periodic
catch-up so a lost notification delays an event but never loses it.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import InvalidRequest, StoreClosed, StoreError
from .base import Row, Store, Tx, TxState
from .migrations import apply_migrations_pg
from .schema import MIGRATIONS, Migration

T = TypeVar("T")
logger = logging.getLogger(__name__)

CATCH_UP_SECONDS = 1.0
"""How often waiters re-read even without a notification."""

_NOTIFY_ERRORS = frozenset({"54000"})
"""What only ``pg_notify`` raises in a commit's round trip: a full notification queue. (Its
other error, 22023, a bad channel or payload, a COMMIT may raise too, from a deferred
trigger; the channel and payload are checked before they are sent, so it never comes from
the NOTIFY.)"""

_MAX_TOPICS_BYTES = 7000
"""Topics named in a NOTIFY payload at most (PostgreSQL takes 8000 bytes); more: ``*``."""

_PLACEHOLDER = re.compile(r"\?")

_NAMES = itertools.count(1)
"""Names of prepared statements, unique in the process."""

_PREPARABLE = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH|VALUES)\b", re.IGNORECASE)
"""What PostgreSQL's ``PREPARE`` takes."""

_RETRY = (
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
    pg_errors.UniqueViolation,
    pg_errors.InvalidSqlStatementName,  # the session lost its prepared statements: again
)


@functools.cache
def _arguments(count: int) -> str:
    """The placeholders of an ``EXECUTE``'s ``count`` arguments."""
    return ", ".join(["%s"] * count)


def _origin_and_topics(payload: str) -> tuple[str, str]:
    """A NOTIFY's sender and topics, from ``@origin,topic,topic``. A replica of an older
    version sends the topics alone, and reads the origin as one more topic, which nobody
    waits on: a rolling deploy loses no wake-up either way."""
    if payload.startswith("@"):
        origin, _, topics = payload.partition(",")
        return origin[1:], topics
    return "", payload


def _status(conn: psycopg.Connection[Any]) -> TransactionStatus:
    """The connection's transaction status, read afresh (after a query has changed it)."""
    return conn.info.transaction_status


class _PgTx(TxState):
    """Statements go as simple queries of statements prepared once per connection
    (``EXECUTE name(literals)``), so that in a write what it need not wait for rides with
    what comes next: its ``BEGIN`` with its first statement, and the statements given to
    :meth:`execute_later` with the next statement or with the commit. Each round trip costs
    more client and server CPU here than the statements it carries. (A read runs each
    statement on its own, outside a transaction.)"""

    dialect = "postgresql"

    def __init__(
        self, conn: psycopg.Connection[Any], writing: bool, prepared: dict[str, str]
    ) -> None:
        super().__init__()
        self._conn = conn
        self.writing = writing
        self.begun = not writing
        """Whether ``BEGIN`` has been sent (a write sends it with its first statement)."""
        self._later: list[str] = []
        self._prepared = prepared  # this connection's statements, by their SQL
        self._binder: psycopg.ClientCursor[Any] | None = None

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def bind(self, sql: str, params: Sequence[Any]) -> str:
        """``sql`` (``%s`` placeholders) with ``params`` as quoted literals."""
        if self._binder is None:
            self._binder = psycopg.ClientCursor(self._conn)
        return self._binder.mogrify(sql, params)

    def render(self, sql: str, params: Sequence[Any], *, replan: bool = False) -> str:
        """The statement as it is sent: ``EXECUTE`` of the connection's prepared statement
        (prepared in a round trip of its own the first time the connection sees it), or
        with ``replan`` the statement itself, planned for its values (as is any statement
        PostgreSQL cannot prepare: ``ANALYZE``, ``LOCK``...)."""
        if replan or not _PREPARABLE.match(sql):
            return self.bind(self._sql(sql), params)
        name = self._prepared.get(sql)
        if name is None:
            numbered = itertools.count(1)
            text = _PLACEHOLDER.sub(lambda _: f"${next(numbered)}", sql)
            name = f"tether_{next(_NAMES)}"  # (never reused, even once forgotten)
            self._conn.execute(f"PREPARE {name} AS {text}")
            self._prepared[sql] = name
        if not params:
            return f"EXECUTE {name}"
        # The literals are rendered from a template that names no statement: psycopg parses
        # a template once and caches it (in a small LRU), and one per prepared name and
        # connection would miss that cache every time (12% of a busy server's CPU).
        return f"EXECUTE {name}({self.bind(_arguments(len(params)), params)})"

    def pending(self) -> list[str]:
        """What must go before the write's next statement: its ``BEGIN`` if not sent yet, and
        the statements given to :meth:`execute_later`."""
        head = [] if self.begun else ["BEGIN"]
        self.begun = True
        head += self._later
        self._later = []
        return head

    def _send(self, statements: list[str]) -> Any:
        """Send ``statements`` after what is :meth:`pending`, in one round trip; return the
        cursor at the first of their results."""
        head = self.pending()
        cursor = self._conn.cursor()
        cursor.execute("; ".join([*head, *statements]))
        for _ in head:  # (their results come first)
            cursor.nextset()
        return cursor

    def _run(self, sql: str, params: Sequence[Any], replan: bool = False) -> Any:
        return self._send([self.render(sql, params, replan=replan)])

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        count: int = self._run(sql, params).rowcount
        return count

    def execute_later(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self.writing:
            self._later.append(self.render(sql, params))
        else:  # (nothing to send it with)
            self._run(sql, params)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self._run(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = (), *, replan: bool = False) -> list[Row]:
        rows: list[Row] = self._run(sql, params, replan).fetchall()
        return rows

    def all_of(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        cursor = self._send([self.render(sql, params) for sql, params in queries])
        found: list[list[Row]] = []
        for _ in queries:
            found.append(cursor.fetchall())
            cursor.nextset()
        return found


class PostgresStore(Store):
    """A store on PostgreSQL, shared by any number of processes and replicas."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 16,
        migrations: Sequence[Migration] = MIGRATIONS,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self._conninfo = url
        self.channel = "tether_changes"
        self._origin = uuid.uuid4().hex[:16]
        """Names this store's own NOTIFYs, which its listener skips: it has told its waiters
        already, and an echo would wake them all a second time."""
        try:
            with psycopg.connect(url, autocommit=False, connect_timeout=int(timeout)) as conn:
                self._schema_version = apply_migrations_pg(conn, migrations)
                schema = conn.execute("SELECT current_schema()").fetchone()
                conn.commit()
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the PostgreSQL store: {exc}") from exc
        if schema and schema[0] and schema[0] != "public":
            # a channel is an identifier: at most 63 bytes
            name = f"tether_changes_{schema[0]}".encode()[:63]
            self.channel = name.decode(errors="ignore")
        self._pool = ConnectionPool(
            url, min_size=min_size, max_size=max_size, timeout=timeout, open=True,
            # a write opens its transaction, a read needs none; statements are prepared by
            # _PgTx (psycopg's own preparing would DEALLOCATE ALL after a ROLLBACK)
            kwargs={"autocommit": True, "prepare_threshold": None},
        )  # fmt: skip
        self._statements: weakref.WeakKeyDictionary[psycopg.Connection[Any], dict[str, str]]
        self._statements = weakref.WeakKeyDictionary()
        self._statements_lock = threading.Lock()
        self._init_changes()
        self._poll_seconds = CATCH_UP_SECONDS
        self._closed = False
        self._listen_thread = threading.Thread(
            target=self._listen, name="tether-pg-listen", daemon=True
        )
        self._listen_thread.start()

    @property
    def schema_version(self) -> int:
        return self._schema_version

    # -- transactions ------------------------------------------------------------------------

    def _run(self, fn: Callable[[Tx], T], writing: bool) -> T:
        if self._closed:
            raise StoreClosed("the store is closed")
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._pool.connection() as conn:
                    tx = _PgTx(conn, writing, self._statements_of(conn))
                    try:
                        result = fn(tx)  # (a read: each statement reads committed data, as
                        if writing:  # in a READ COMMITTED transaction, without BEGIN/COMMIT)
                            # the payload names the topics the write touched ("*": too many
                            # to name, so every topic moves)
                            topics = ",".join(sorted(tx.topics))
                            topics = topics if len(topics.encode()) <= _MAX_TOPICS_BYTES else "*"
                            self._commit(conn, tx, f"@{self._origin},{topics}")
                    except BaseException as exc:
                        if tx.begun and writing:  # (a broken connection is dropped by the
                            with contextlib.suppress(psycopg.Error):  # pool, its work undone)
                                conn.execute("ROLLBACK")
                        if isinstance(exc, pg_errors.InvalidSqlStatementName):
                            self._forget_statements(conn)
                        raise
                    break
            except _RETRY as exc:
                if attempt >= 5:
                    raise StoreError(f"the write kept conflicting: {exc}") from exc
                time.sleep(0.002 * attempt)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                raise StoreError(f"PostgreSQL is unavailable: {exc}") from exc
            except psycopg.DataError as exc:  # a value PostgreSQL cannot hold (a NUL in
                # text, a number out of range): the request's fault, not an outage to retry
                raise InvalidRequest(
                    f"the store cannot hold a value of this request: {exc}", code="invalid_value"
                ) from exc
            except psycopg.Error as exc:
                raise StoreError(f"store error: {exc}") from exc
        if writing:
            for callback in tx.callbacks:
                callback()
            self._notify(tx.topics)
        return result

    def _commit(self, conn: psycopg.Connection[Any], tx: _PgTx, payload: str) -> None:
        """The transaction's last statements, its COMMIT and its NOTIFY, in one round trip
        (a simple query: its parameters bound by psycopg as literals).

        No client round trip falls between the last statements and the commit, so the locks
        they take (an agent's feed counter, which every change of its intents bumps) are held
        for the commit alone. The NOTIFY comes after the COMMIT, in a transaction of its own:
        inside the transaction it would take PostgreSQL's lock on the notification queue
        until the commit is on disk, and no two writers could commit together."""
        if conn.info.transaction_status == TransactionStatus.INERROR:
            # a statement failed and the write went on (it caught the error): PostgreSQL
            # would answer the COMMIT with a rollback, and nothing of it is stored
            conn.execute("ROLLBACK")
            raise StoreError("the write went on after a failed statement; nothing was stored")
        statements = [tx.render(q, p) for q, p in tx.last_statements()]
        statements = [*tx.pending(), *statements, "COMMIT", self._notify_sql(tx, payload)]
        try:
            conn.execute("; ".join(statements))
        except psycopg.Error as exc:
            status = _status(conn)  # (the query changed it)
            if status == TransactionStatus.INERROR:
                with contextlib.suppress(psycopg.Error):
                    conn.execute("ROLLBACK")
                raise
            if status != TransactionStatus.IDLE or exc.sqlstate not in _NOTIFY_ERRORS:
                raise  # the COMMIT failed (or the connection broke): the caller is told
            # committed, and only the notification failed: other replicas see the change
            # at their next catch-up (as when a notification is lost)
            logger.warning("a commit's NOTIFY failed", exc_info=True)

    def _statements_of(self, conn: psycopg.Connection[Any]) -> dict[str, str]:
        """The statements prepared on ``conn`` by their SQL (they live as long as it does)."""
        with self._statements_lock:
            return self._statements.setdefault(conn, {})

    def _forget_statements(self, conn: psycopg.Connection[Any]) -> None:
        """``conn``'s session lost a prepared statement (someone ran ``DEALLOCATE ALL`` or
        ``DISCARD ALL``): deallocate the rest and prepare each again when next used."""
        with contextlib.suppress(psycopg.Error):  # (a broken connection: dropped anyway)
            conn.execute("DEALLOCATE ALL")
        self._statements_of(conn).clear()

    def _notify_sql(self, tx: _PgTx, payload: str) -> str:
        """The statement that tells the other replicas of a commit (its literals quoted)."""
        return tx.bind("SELECT pg_notify(%s, %s)", (self.channel, payload))

    def write(self, fn: Callable[[Tx], T]) -> T:
        return self._run(fn, writing=True)

    def read(self, fn: Callable[[Tx], T]) -> T:
        return self._run(fn, writing=False)

    # -- change notification -----------------------------------------------------------------

    def _listen(self) -> None:
        """LISTEN for other replicas' commits; reconnect when PostgreSQL goes away."""
        while not self._closed:
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'LISTEN "{self.channel}"')
                    self._notify(None)  # catch up on anything missed while disconnected
                    while not self._closed:
                        got = list(conn.notifies(timeout=CATCH_UP_SECONDS, stop_after=1))
                        if not got:  # the periodic catch-up: it does not know the topics,
                            self._notify(None)  # so every waiter re-reads (a lost NOTIFY
                            continue  # delays an event, never loses it)
                        # a notification names its origin and its topics
                        sent = [_origin_and_topics(n.payload) for n in got]
                        foreign = [topics for origin, topics in sent if origin != self._origin]
                        if foreign:
                            topics = {t for names in foreign for t in names.split(",") if t}
                            self._notify(None if "*" in topics else topics)
            except psycopg.Error:
                if not self._closed:
                    time.sleep(0.5)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:  # wake the listener so it sees the store closing now, not at its next catch-up
            with self._pool.connection(timeout=2) as conn:
                conn.execute("SELECT pg_notify(%s, '')", (self.channel,))
                conn.commit()
        except (psycopg.Error, PoolTimeout):
            pass
        self._pool.close()
        self._listen_thread.join(CATCH_UP_SECONDS + 6)
