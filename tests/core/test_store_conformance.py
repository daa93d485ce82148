"""One conformance suite for every store dialect: SQLite and PostgreSQL alike."""

from __future__ import annotations

import re
import threading
import time

import psycopg
import pytest
import tether
from tether.engine.transitions import RUNNABLE
from tether.store import LATEST, MIGRATIONS, Migration, Store, Tx, open_store
from tether.store.base import Row
from tether.store.postgres import PostgresStore
from tether.store.schema import CLAIMABLE
from tether.store.sqlite import SQLiteStore, sqlite_path

from ..pg import fresh_schema
from ..polling import eventually


def _open(url: str, migrations: tuple[Migration, ...] = MIGRATIONS) -> Store:
    if url.startswith("sqlite"):
        return SQLiteStore(sqlite_path(url), migrations=migrations)
    return PostgresStore(url, migrations=migrations)


def _setup(store: Store) -> None:
    store.write(lambda tx: tx.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)"))


def _get(store: Store, key: str) -> int | None:
    row = store.read(lambda tx: tx.one("SELECT v FROM kv WHERE k = ?", (key,)))
    return None if row is None else int(row[0])


def test_migrations_are_recorded(store_url: str) -> None:
    store = open_store(store_url)
    try:
        assert store.schema_version == LATEST
        rows = store.read(
            lambda tx: tx.all("SELECT version FROM tether_migrations ORDER BY version")
        )
        assert [r[0] for r in rows] == list(range(1, LATEST + 1))
    finally:
        store.close()


def test_a_newer_schema_is_refused(store_url: str) -> None:
    newer = (
        *MIGRATIONS,
        Migration(LATEST + 1, "future", ("CREATE TABLE future_thing (x INTEGER)",)),
    )
    _open(store_url, newer).close()
    with pytest.raises(tether.StoreError) as info:
        open_store(store_url)
    assert info.value.code == "schema_too_new"


def test_write_read_and_rollback(store_url: str) -> None:
    store = open_store(store_url)
    try:
        _setup(store)
        assert store.write(lambda tx: tx.execute("INSERT INTO kv VALUES (?, ?)", ("a", 1))) == 1
        assert _get(store, "a") == 1

        def half_then_fail(tx: Tx) -> None:
            tx.execute("INSERT INTO kv VALUES (?, ?)", ("b", 2))
            raise tether.Conflict("no")

        with pytest.raises(tether.Conflict):
            store.write(half_then_fail)
        assert _get(store, "b") is None  # nothing of a failed write is kept
        assert store.write(lambda tx: tx.execute("UPDATE kv SET v = ? WHERE k = ?", (5, "a"))) == 1
        assert store.write(lambda tx: tx.execute("UPDATE kv SET v = ? WHERE k = ?", (5, "zz"))) == 0
    finally:
        store.close()


def test_a_statement_run_at_commit_commits_or_fails_with_its_transaction(
    store_url: str,
) -> None:
    """``execute_at_commit`` runs after everything else the write did (on PostgreSQL, sent
    with the COMMIT); if it fails, nothing of the write is kept and the store goes on."""
    store = open_store(store_url)
    try:
        _setup(store)
        store.write(lambda tx: tx.execute("INSERT INTO kv VALUES ('n', 0)"))

        def bump(tx: Tx) -> None:
            tx.execute_at_commit("UPDATE kv SET v = v * 10 WHERE k = ?", ("n",))
            tx.execute("UPDATE kv SET v = v + 1 WHERE k = ?", ("n",))  # runs first

        store.write(bump)
        assert _get(store, "n") == 10  # (0 + 1) * 10

        def ordered(tx: Tx) -> None:  # by their order key, then as registered
            for key, digit in (("b", 2), ("a", 1), ("b", 3)):
                tx.execute_at_commit(
                    "UPDATE kv SET v = v * 10 + ? WHERE k = 'n'", (digit,), order=key
                )

        store.write(lambda tx: tx.execute("UPDATE kv SET v = 0 WHERE k = 'n'"))
        store.write(ordered)
        assert _get(store, "n") == 123
        store.write(lambda tx: tx.execute("UPDATE kv SET v = 10 WHERE k = 'n'"))

        def failing(tx: Tx) -> None:
            tx.execute("INSERT INTO kv VALUES ('lost', 1)")
            tx.execute_at_commit("INSERT INTO kv VALUES (?, ?)", ("n", 2))  # a duplicate key

        with pytest.raises(tether.StoreError):
            store.write(failing)
        assert _get(store, "lost") is None
        assert store.write(lambda tx: tx.execute("INSERT INTO kv VALUES ('after', 1)")) == 1
        assert _get(store, "after") == 1 and _get(store, "n") == 10
    finally:
        store.close()


def test_a_statement_run_later_comes_before_what_follows_and_fails_with_its_write(
    store_url: str,
) -> None:
    """``execute_later`` runs before anything the write runs after it (on PostgreSQL, sent
    with the write's next statement or its commit); if it fails, the error comes from there,
    nothing of the write is kept and the store goes on."""
    store = open_store(store_url)
    try:
        _setup(store)

        def later_then_read(tx: Tx) -> Row | None:
            tx.execute_later("INSERT INTO kv VALUES (?, ?)", ("a", 1))
            tx.execute_later("UPDATE kv SET v = v + ? WHERE k = ?", (10, "a"))
            return tx.one("SELECT v FROM kv WHERE k = ?", ("a",))  # sees both

        assert store.write(later_then_read) == (11,)
        store.write(lambda tx: tx.execute_later("UPDATE kv SET v = v * 2 WHERE k = 'a'"))
        assert _get(store, "a") == 22  # (sent with the commit alone)
        for _ in range(20):  # again and again: each connection prepares it once
            store.write(
                lambda tx: tx.execute_later("UPDATE kv SET v = v + ? WHERE k = ?", (1, "a"))
            )
        assert _get(store, "a") == 42

        def failing(tx: Tx) -> None:
            tx.execute("INSERT INTO kv VALUES ('lost', 1)")
            tx.execute_later("INSERT INTO kv VALUES (?, ?)", ("a", 2))  # a duplicate key

        with pytest.raises(tether.StoreError):
            store.write(failing)

        def failing_before_a_read(tx: Tx) -> None:
            tx.execute_later("INSERT INTO kv VALUES ('lost', 1)")
            tx.execute_later("INSERT INTO kv VALUES (?, ?)", ("a", 2))
            tx.one("SELECT v FROM kv WHERE k = 'a'")
            raise AssertionError("the read must not run")

        with pytest.raises(tether.StoreError):
            store.write(failing_before_a_read)
        assert _get(store, "lost") is None and _get(store, "a") == 42
        store.write(lambda tx: tx.execute("ANALYZE kv"))  # (PostgreSQL cannot prepare it)
        assert store.write(lambda tx: tx.execute("INSERT INTO kv VALUES ('after', 1)")) == 1
        assert _get(store, "after") == 1
    finally:
        store.close()


def test_a_session_that_lost_its_prepared_statements_prepares_them_again() -> None:
    """PostgreSQL: each connection prepares the statements it runs, once. If its session
    loses them (``DEALLOCATE ALL`` or ``DISCARD ALL``, from a pooler or a driver), the read
    or write that finds one missing runs again and prepares them afresh: nothing fails."""
    with fresh_schema() as url:
        store = PostgresStore(url, min_size=1, max_size=1)  # one connection: always that one
        try:
            _setup(store)
            store.write(lambda tx: tx.execute("INSERT INTO kv VALUES ('n', 0)"))
            bump = "UPDATE kv SET v = v + 1 WHERE k = ?"
            store.write(lambda tx: tx.execute_later(bump, ("n",)))
            assert _get(store, "n") == 1  # both statements prepared now
            store.write(lambda tx: tx.execute("DEALLOCATE ALL"))  # (in a transaction)
            store.write(lambda tx: tx.execute_later(bump, ("n",)))  # a write finds it gone
            store.read(lambda tx: tx.execute("DISCARD ALL"))  # (outside one)
            assert _get(store, "n") == 2  # a read finds it gone
            store.write(lambda tx: tx.execute_later(bump, ("n",)))
            assert _get(store, "n") == 3
        finally:
            store.close()


def test_several_reads_at_once_each_see_what_the_write_did_before(store_url: str) -> None:
    """``all_of`` returns each query's rows in order (on PostgreSQL in one round trip, with
    whatever the write still had to send), in a write and in a read."""
    store = open_store(store_url)
    try:
        _setup(store)
        queries: list[tuple[str, tuple[object, ...]]] = [
            ("SELECT k, v FROM kv ORDER BY k", ()),
            ("SELECT v FROM kv WHERE k = ?", ("b",)),
            ("SELECT v FROM kv WHERE k = ?", ("zz",)),
        ]

        def reads(tx: Tx) -> list[list[Row]]:
            tx.execute_later("INSERT INTO kv VALUES (?, ?)", ("a", 1))
            tx.execute_later("INSERT INTO kv VALUES (?, ?)", ("b", 2))
            return tx.all_of(queries)

        expected = [[("a", 1), ("b", 2)], [(2,)], []]
        assert store.write(reads) == expected
        assert store.read(lambda tx: tx.all_of(queries)) == expected
    finally:
        store.close()


def test_concurrent_writers_lose_nothing(store_url: str) -> None:
    store = open_store(store_url)
    try:
        _setup(store)
        store.write(lambda tx: tx.execute("INSERT INTO kv VALUES ('n', 0)"))

        def bump(tx: Tx) -> None:
            row = tx.one(
                f"SELECT v FROM kv WHERE k = 'n'{' FOR UPDATE' if tx.dialect == 'postgresql' else ''}"
            )
            assert row is not None
            tx.execute("UPDATE kv SET v = ? WHERE k = 'n'", (row[0] + 1,))

        threads = [
            threading.Thread(target=lambda: [store.write(bump) for _ in range(25)])
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _get(store, "n") == 200
    finally:
        store.close()


def test_changes_reach_listeners_and_other_processes_stores(store_url: str) -> None:
    first, second = open_store(store_url), open_store(store_url)
    try:
        _setup(first)
        heard: list[int] = []
        unsubscribe = first.subscribe(lambda: heard.append(1))
        seen = second.change_counter
        woke = threading.Event()

        def wait() -> None:
            second.wait_for_change(seen, 10)
            woke.set()

        waiter = threading.Thread(target=wait)
        waiter.start()
        first.write(lambda tx: tx.execute("INSERT INTO kv VALUES ('x', 1)"))
        waiter.join(15)
        assert woke.is_set() and second.change_counter != seen
        assert heard  # the writing store's own listeners hear its commits
        unsubscribe()
    finally:
        first.close()
        second.close()


def test_a_closed_store_refuses_work(store_url: str) -> None:
    store = open_store(store_url)
    store.close()
    with pytest.raises(tether.StoreError):
        store.read(lambda tx: tx.one("SELECT 1"))


def test_the_task_index_migration_indexes_tasks_already_open(store_url: str) -> None:
    with tether.connect(store_url) as client:
        intents = []
        for task in (
            tether.HumanTask(title="a", assignees=["alice"], groups=["ops"]),
            tether.HumanTask(title="b"),
        ):
            intent = client.create_intent("a.b.v1", "agent://x/y", human_task=task)
            intents.append(intent.intent_id)
        client.create_intent("a.b.v1", "agent://x/y")  # no task: not indexed

        def as_of_version_6(tx: Tx) -> None:  # the store as that release wrote it
            tx.execute("DROP TABLE task_assignees")
            tx.execute("DROP INDEX IF EXISTS intents_by_agent_id")  # (migration 11 dropped it)
            tx.execute("DROP INDEX intents_by_agent_feed")
            tx.execute("DROP INDEX IF EXISTS states_by_key")  # migration 9: PostgreSQL's only
            tx.execute("DROP INDEX intents_claimable")
            for index in (  # migration 11's, and the ones it replaced as they were
                "intents_of_agent",
                "intents_of_agent_by_status",
                "intents_of_parent",
                "intents_by_correlation",
                "intents_by_sender",
                "intents_by_type",
                "webhook_deliveries_by_time",
                "api_keys_live",
            ):
                tx.execute(f"DROP INDEX {index}")
            tx.execute("CREATE INDEX intents_by_agent ON intents (to_agent, status, intent_id)")
            tx.execute("CREATE INDEX intents_by_parent ON intents (parent_intent_id)")
            tx.execute("DELETE FROM tether_migrations WHERE version >= 7")

        client.store.write(as_of_version_6)
    store = open_store(store_url)  # applies migrations 7 and later again
    try:
        rows = store.read(lambda tx: tx.all("SELECT assignee FROM task_assignees ORDER BY 1"))
    finally:
        store.close()
    assert [r[0] for r in rows] == ["*", "alice", "group:ops"]
    with tether.connect(store_url, actor=tether.Principal.human("alice", groups=["ops"])) as alice:
        assert [i.intent_id for i in alice.list_tasks(mine=True)] == intents


def test_the_claimable_statuses_are_the_ones_the_claim_index_holds(store_url: str) -> None:
    spelled = CLAIMABLE.removeprefix("status IN (").removesuffix(")")
    assert sorted(s.value for s in RUNNABLE) == [v.strip(" '") for v in spelled.split(",")]
    store = open_store(store_url)  # the index as the migration made it
    try:
        if store.url.startswith("postgresql"):
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'intents_claimable'"
        else:
            query = "SELECT sql FROM sqlite_master WHERE name = 'intents_claimable'"
        found = store.read(lambda tx: tx.one(query))
    finally:
        store.close()
    assert found is not None
    if store_url.startswith("sqlite"):
        assert found[0].endswith(f"WHERE {CLAIMABLE}")  # SQLite needs it word for word
    else:  # PostgreSQL stores it normalized: status = ANY (ARRAY['ACKNOWLEDGED'::text, ...])
        listed = re.findall(r"'([A-Z_]+)'::text", found[0])
        assert listed == sorted(s.value for s in RUNNABLE)


def test_state_keys_go_by_code_point_whatever_the_collation(store_url: str) -> None:
    with tether.connect(store_url) as client:
        if client.store.url.startswith("postgresql"):
            # as in a database whose default collation follows a locale, where "a" < "A" < "b"
            # < "B": a prefix is no range of that order
            client.store.write(lambda tx: tx.execute(
                'ALTER TABLE states ALTER COLUMN state_key TYPE TEXT COLLATE "en-x-icu"'
            ))  # fmt: skip
            found = client.store.read(
                lambda tx: tx.one(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'states_by_key'"
                )
            )
            assert found is not None and 'COLLATE "C"' in found[0]
        intent = client.create_intent("a.b.v1", "agent://x/y")
        for key in ("a", "A", "ab", "B", "b"):
            client.put_state(intent.intent_id, key, expected_version=0, key=key)
        assert [e.key for e in client.list_state(intent.intent_id)] == ["A", "B", "a", "ab", "b"]
        assert [e.key for e in client.list_state(intent.intent_id, prefix="a")] == ["a", "ab"]
        assert [e.key for e in client.list_state(intent.intent_id, after="B")] == ["a", "ab", "b"]
        assert client.delete_state_prefix(intent.intent_id, "a") == 2
        assert [e.key for e in client.list_state(intent.intent_id)] == ["A", "B", "b"]


def test_a_notification_that_fails_after_its_commit_does_not_fail_the_write(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL sends the NOTIFY after the COMMIT: if the NOTIFY fails (the queue is full),
    the write is stored and reported done (other replicas catch up on it), never failed."""
    with fresh_schema() as url:
        store = PostgresStore(url)
        try:
            _setup(store)
            store.write(
                lambda tx: tx.execute(
                    "CREATE FUNCTION full_queue() RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION 'too many notifications in the NOTIFY queue' "
                    "USING ERRCODE = '54000'; END $$"
                )
            )
            notify_sql = store._notify_sql
            store._notify_sql = lambda tx, payload: "SELECT full_queue()"  # type: ignore[method-assign]
            assert store.write(lambda tx: tx.execute("INSERT INTO kv VALUES ('n', 1)")) == 1
            assert "NOTIFY failed" in caplog.text
            store._notify_sql = notify_sql  # type: ignore[method-assign]
            assert _get(store, "n") == 1
            assert store.write(lambda tx: tx.execute("UPDATE kv SET v = 2")) == 1
            assert _get(store, "n") == 2
        finally:
            store.close()


def test_a_write_that_goes_on_after_a_failed_statement_or_a_failed_commit_is_not_done() -> None:
    """PostgreSQL: a write that caught a failed statement is refused (PostgreSQL would
    answer its COMMIT with a rollback), and so is one whose COMMIT fails for a reason of its
    own (here a deferred trigger, with an error code pg_notify could raise too): neither is
    reported done, and neither is stored."""
    with fresh_schema() as url:
        store = PostgresStore(url)
        try:
            _setup(store)

            def goes_on(tx: Tx) -> str:
                tx.execute("INSERT INTO kv VALUES ('a', 1)")
                with pytest.raises(psycopg.errors.UniqueViolation):
                    tx.execute("INSERT INTO kv VALUES ('a', 2)")  # a duplicate key
                return "done"

            with pytest.raises(tether.StoreError, match="nothing was stored"):
                store.write(goes_on)
            assert _get(store, "a") is None
            store.write(
                lambda tx: tx.execute(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "IF NEW.k = 'bad' THEN RAISE EXCEPTION 'refused at commit' "
                    "USING ERRCODE = '22023'; END IF; RETURN NULL; END $$"
                )
            )
            store.write(
                lambda tx: tx.execute(
                    "CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON kv DEFERRABLE INITIALLY "
                    "DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
            # (a data error, 22023 as a bad NOTIFY's would be: the request's fault, so an
            # InvalidRequest, never a success)
            with pytest.raises(tether.InvalidRequest, match="refused at commit"):
                store.write(lambda tx: tx.execute("INSERT INTO kv VALUES ('bad', 1)"))
            assert _get(store, "bad") is None
            assert store.write(lambda tx: tx.execute("INSERT INTO kv VALUES ('ok', 1)")) == 1
        finally:
            store.close()


def test_statements_run_at_commit_lock_rows_in_one_order() -> None:
    """PostgreSQL: writers that bump the same two counters at commit, named in opposite
    orders, lock them in one order (by their order key) and never deadlock."""
    with fresh_schema() as url:
        store = PostgresStore(url)
        try:
            _setup(store)
            store.write(lambda tx: tx.execute("INSERT INTO kv VALUES ('x', 0), ('y', 0)"))

            runs: list[int] = []  # a write the store retried (after a deadlock) runs again

            def bump(first: str, second: str) -> None:
                for _ in range(150):

                    def both(tx: Tx) -> None:
                        runs.append(1)
                        for key in (first, second):
                            tx.execute_at_commit(
                                "UPDATE kv SET v = v + 1 WHERE k = ?", (key,), order=key
                            )
                        tx.touch("t")

                    store.write(both)

            threads = [
                threading.Thread(target=bump, args=pair) for pair in [("x", "y"), ("y", "x")] * 3
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(runs) == 900  # each write ran once: no deadlock, no retry
            assert _get(store, "x") == _get(store, "y") == 900
        finally:
            store.close()


def test_a_replica_hears_others_by_topic_and_skips_the_echo_of_its_own() -> None:
    """PostgreSQL: a commit wakes its own replica's waiters once (not again when its NOTIFY
    comes back), and another replica's waiters on the topics it names, well before the
    periodic catch-up. A replica of an older version, which sends bare topics, is heard too."""
    with fresh_schema() as url:
        first, second = PostgresStore(url), PostgresStore(url)
        try:
            _setup(first)

            def touch(tx: Tx) -> None:
                tx.execute("INSERT INTO kv VALUES ('n', 1) ON CONFLICT (k) DO NOTHING")
                tx.touch("topic-a")

            first.write(touch)
            assert eventually(lambda: second._topics.get("topic-a") == 1, 5)  # by topic, pushed
            time.sleep(0.3)  # the echo of first's own NOTIFY has come back by now
            assert first._topics.get("topic-a") == 1
            with psycopg.connect(url, autocommit=True) as conn:  # an older replica's payload
                conn.execute("SELECT pg_notify(%s, %s)", (first.channel, "topic-b,topic-c"))
            assert eventually(lambda: first._topics.get("topic-c") == 1, 5)
        finally:
            first.close()
            second.close()


def test_agents_kept_by_an_older_schema_are_carried_into_their_workspaces(store_url: str) -> None:
    """Migration 12 keys agents by (workspace, address): the rows of a store written before
    it keep their status, policy, generation and feed, each in its own workspace."""
    from tether import AgentStatus, Principal
    from tether.engine import Engine

    before = tuple(m for m in MIGRATIONS if m.version < 12)
    old = _open(store_url, before)
    try:
        engine = Engine(old)
        other = Principal.admin(workspace="other")
        engine.set_agent_status("agent://x/a", AgentStatus.KILLED, reason="old")
        engine.create_intent(
            tether.NewIntent(intent_type="refund.request.v1", to_agent="agent://x/b", payload={}),
            actor=other,
        )
    finally:
        old.close()
    with tether.connect(store_url) as client:
        assert client.store.schema_version == LATEST
        killed = client.get_agent("agent://x/a")
        assert (killed.status, killed.status_reason, killed.generation) == (
            AgentStatus.KILLED, "old", 1,
        )  # fmt: skip
        theirs = client.as_actor(other)
        assert theirs.get_agent("agent://x/b").status is AgentStatus.ACTIVE
        with pytest.raises(tether.NotFound):
            client.get_agent("agent://x/b")
        assert theirs.claim("agent://x/b") is not None  # its feed and work carried over
