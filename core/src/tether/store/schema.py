"""The schema, as an ordered list of migrations, one place for every dialect.

A store records each applied migration in ``tether_migrations``. Opening a store applies the
missing ones in order, each in its own transaction, so a newer tether opens an older store.
A store whose schema is newer than this release knows is refused, never guessed at.

Timestamps are stored as fixed-width UTC text (``2030-01-01T00:00:00.000000Z``), which sorts
like the instants it names in every dialect.
"""

from __future__ import annotations

from dataclasses import dataclass

_DIALECT_WORDS = {
    # rowid order without AUTOINCREMENT's extra table write on every insert; tables keyed by
    # (intent, ...) are clustered on that key, one B-tree instead of a table and an index
    "sqlite": {
        "autoinc": "INTEGER PRIMARY KEY",
        "without_rowid": " WITHOUT ROWID",
        "json_elements": "json_each(w.assignees) AS j",
    },
    "postgresql": {
        "autoinc": "BIGSERIAL PRIMARY KEY",
        "without_rowid": "",
        "json_elements": "jsonb_array_elements_text(w.assignees::jsonb) AS j(value)",
    },
}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    only: str | None = None
    """The one dialect the statements are for; the others record the version and run none."""

    def sql(self, dialect: str) -> list[str]:
        if self.only is not None and dialect != self.only:
            return []
        words = _DIALECT_WORDS[dialect]
        return [s.format(**words) for s in self.statements]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "intents, events, waits, timers, journal, state, idempotency, agents",
        (
            "CREATE TABLE tether_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """CREATE TABLE intents (
                intent_id TEXT PRIMARY KEY,
                workspace TEXT NOT NULL,
                intent_type TEXT NOT NULL,
                correlation_id TEXT NOT NULL,
                from_agent TEXT,
                to_agent TEXT NOT NULL,
                reply_to TEXT,
                parent_intent_id TEXT,
                payload TEXT NOT NULL,
                metadata TEXT NOT NULL,
                status TEXT NOT NULL,
                waiting_reason TEXT,
                wait_id TEXT,
                seq INTEGER NOT NULL,
                head_hash TEXT NOT NULL,
                result TEXT,
                error TEXT,
                deadline_at TEXT,
                lease_owner TEXT,
                lease_token TEXT,
                lease_expires_at TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                schema_version INTEGER NOT NULL
            )""",
            "CREATE INDEX intents_by_workspace ON intents (workspace, intent_id)",
            "CREATE INDEX intents_by_status ON intents (workspace, status, intent_id)",
            "CREATE INDEX intents_by_agent ON intents (to_agent, status, intent_id)",
            "CREATE INDEX intents_by_parent ON intents (parent_intent_id)",
            """CREATE TABLE events (
                intent_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                event_type TEXT NOT NULL,
                status TEXT NOT NULL,
                waiting_reason TEXT,
                actor TEXT NOT NULL,
                at TEXT NOT NULL,
                details TEXT NOT NULL,
                hash TEXT NOT NULL,
                schema_version INTEGER NOT NULL,
                PRIMARY KEY (intent_id, seq)
            ){without_rowid}""",
            """CREATE TABLE waits (
                wait_id TEXT PRIMARY KEY,
                intent_id TEXT NOT NULL,
                wait_key TEXT NOT NULL,
                kind TEXT NOT NULL,
                status TEXT NOT NULL,
                spec TEXT NOT NULL,
                child_intent_id TEXT,
                assignees TEXT NOT NULL,
                opened_at TEXT NOT NULL,
                deadline_at TEXT,
                resolved_at TEXT,
                outcome TEXT,
                result TEXT,
                comment TEXT,
                resolved_by TEXT,
                schema_version INTEGER NOT NULL,
                UNIQUE (intent_id, wait_key)
            )""",
            "CREATE INDEX waits_open ON waits (status, kind, opened_at)",
            "CREATE INDEX waits_by_child ON waits (child_intent_id)",
            """CREATE TABLE timers (
                timer_id {autoinc},
                kind TEXT NOT NULL,
                intent_id TEXT NOT NULL,
                wait_id TEXT,
                due_at TEXT NOT NULL,
                status TEXT NOT NULL,
                fired_at TEXT
            )""",
            "CREATE INDEX timers_due ON timers (status, due_at)",
            "CREATE INDEX timers_by_intent ON timers (intent_id, status)",
            """CREATE TABLE steps (
                intent_id TEXT NOT NULL,
                step_key TEXT NOT NULL,
                result TEXT NOT NULL,
                recorded_at TEXT NOT NULL,
                schema_version INTEGER NOT NULL,
                PRIMARY KEY (intent_id, step_key)
            ){without_rowid}""",
            """CREATE TABLE states (
                intent_id TEXT NOT NULL,
                state_key TEXT NOT NULL,
                version INTEGER NOT NULL,
                data TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                schema_version INTEGER NOT NULL,
                PRIMARY KEY (intent_id, state_key)
            ){without_rowid}""",
            """CREATE TABLE idempotency (
                scope TEXT NOT NULL,
                idem_key TEXT NOT NULL,
                request_hash TEXT NOT NULL,
                response TEXT NOT NULL,
                created_at TEXT NOT NULL,
                PRIMARY KEY (scope, idem_key)
            )""",
            """CREATE TABLE agents (
                address TEXT PRIMARY KEY,
                workspace TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                schema_version INTEGER NOT NULL
            )""",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        2,
        "api keys",
        (
            """CREATE TABLE api_keys (
                key_id TEXT PRIMARY KEY,
                key_hash TEXT NOT NULL,
                role TEXT NOT NULL,
                agent TEXT,
                subject TEXT,
                groups TEXT NOT NULL,
                workspace TEXT NOT NULL,
                created_at TEXT NOT NULL,
                revoked_at TEXT
            )""",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        3,
        "agent work feeds",
        (
            "ALTER TABLE agents ADD COLUMN feed_seq INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE intents ADD COLUMN feed_seq INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX intents_by_feed ON intents (to_agent, feed_seq)",
        ),
    ),
)
MIGRATIONS += (
    Migration(
        4,
        "webhook subscriptions and the delivery outbox",
        (
            """CREATE TABLE webhook_subscriptions (
                subscription_id TEXT PRIMARY KEY,
                workspace TEXT NOT NULL,
                owner TEXT NOT NULL,
                callback_url TEXT NOT NULL,
                event_types TEXT NOT NULL,
                secret TEXT NOT NULL,
                description TEXT,
                created_at TEXT NOT NULL,
                revoked_at TEXT
            )""",
            "CREATE INDEX webhook_subscriptions_live ON webhook_subscriptions (workspace, revoked_at)",
            """CREATE TABLE webhook_deliveries (
                delivery_id TEXT PRIMARY KEY,
                subscription_id TEXT NOT NULL,
                intent_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                event_type TEXT NOT NULL,
                payload TEXT NOT NULL,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                next_attempt_at TEXT NOT NULL,
                last_status INTEGER,
                last_error TEXT,
                created_at TEXT NOT NULL,
                delivered_at TEXT
            )""",
            "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)",
            "CREATE INDEX webhook_deliveries_order ON webhook_deliveries (subscription_id, intent_id, seq)",
        ),
    ),
)
MIGRATIONS += (
    Migration(
        5,
        "inbox change feed",
        (
            "CREATE INDEX intents_by_update ON intents (workspace, updated_at, intent_id)",
            "CREATE INDEX intents_by_reply_to ON intents (reply_to, updated_at, intent_id)",
        ),
    ),
)
MIGRATIONS += (
    Migration(
        6,
        "mesh: agent status, policy, heartbeats, usage and the mesh audit",
        (
            "ALTER TABLE agents ADD COLUMN generation INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE agents ADD COLUMN policy TEXT",
            "ALTER TABLE agents ADD COLUMN status_reason TEXT",
            "ALTER TABLE agents ADD COLUMN heartbeat_at TEXT",
            "ALTER TABLE agents ADD COLUMN metrics TEXT",
            """CREATE TABLE usage (
                usage_id TEXT PRIMARY KEY,
                intent_id TEXT NOT NULL,
                agent TEXT NOT NULL,
                workspace TEXT NOT NULL,
                at TEXT NOT NULL,
                model TEXT,
                tokens_in INTEGER NOT NULL,
                tokens_out INTEGER NOT NULL,
                cost_micros INTEGER NOT NULL
            )""",
            "CREATE INDEX usage_by_agent ON usage (agent, at)",
            "CREATE INDEX usage_by_intent ON usage (intent_id, at)",
            """CREATE TABLE mesh_events (
                event_id {autoinc},
                workspace TEXT NOT NULL,
                agent TEXT NOT NULL,
                event_type TEXT NOT NULL,
                actor TEXT NOT NULL,
                at TEXT NOT NULL,
                details TEXT NOT NULL
            )""",
            "CREATE INDEX mesh_events_by_agent ON mesh_events (agent, event_id)",
            "CREATE INDEX intents_by_agent_created ON intents (to_agent, created_at)",
        ),
    ),
)
MIGRATIONS += (
    Migration(
        7,
        "who may answer each open human task, indexed for the inbox",
        (
            """CREATE TABLE task_assignees (
                workspace TEXT NOT NULL,
                assignee TEXT NOT NULL,
                opened_at TEXT NOT NULL,
                wait_id TEXT NOT NULL,
                PRIMARY KEY (workspace, assignee, opened_at, wait_id)
            ){without_rowid}""",
            "CREATE INDEX task_assignees_by_wait ON task_assignees (wait_id)",
            """INSERT INTO task_assignees (workspace, assignee, opened_at, wait_id)
                SELECT i.workspace, j.value, w.opened_at, w.wait_id
                FROM waits w JOIN intents i ON i.intent_id = w.intent_id, {json_elements}
                WHERE w.status = 'open' AND w.kind = 'human'""",
            """INSERT INTO task_assignees (workspace, assignee, opened_at, wait_id)
                SELECT i.workspace, '*', w.opened_at, w.wait_id
                FROM waits w JOIN intents i ON i.intent_id = w.intent_id
                WHERE w.status = 'open' AND w.kind = 'human' AND w.assignees = '[]'""",
        ),
    ),
)
MIGRATIONS += (
    Migration(
        8,
        "an agent's intents and its feed, indexed for agents with many ended intents",
        (
            "CREATE INDEX intents_by_agent_id ON intents (to_agent, intent_id)",
            "CREATE INDEX intents_by_agent_feed ON intents (to_agent, status, feed_seq)",
        ),
    ),
)
MIGRATIONS += (
    Migration(
        9,
        "state keys in code point order on PostgreSQL, for listing and deleting by prefix",
        # State keys are compared COLLATE "C" there (the database's collation may follow a
        # locale, where a prefix is no range); SQLite's primary key is in that order already.
        ('CREATE INDEX states_by_key ON states (intent_id, state_key COLLATE "C")',),
        only="postgresql",
    ),
)

CLAIMABLE = "status IN ('ACKNOWLEDGED', 'DELIVERED', 'IN_PROGRESS', 'SUBMITTED')"
"""The statuses a worker may claim in, as the claim's query spells them: the condition of the
partial index ``intents_claimable``, word for word (SQLite matches a partial index only on its
condition as written; PostgreSQL's generic plan, only on literals). A test checks the stored
index against it: changing it takes a migration that rebuilds the index."""

MIGRATIONS += (
    Migration(
        10,
        "an agent's claimable intents, indexed apart from its ended ones",
        # A claim takes the oldest claimable intent of an agent. Without this index it walked
        # the agent's intents in id order past every ended one (20 ms at 30,000 of them): with
        # no statistics SQLite prefers the index that gives the order, and so does
        # PostgreSQL's generic plan for a prepared statement. This index holds only the rows
        # a claim can take, in the order it takes them.
        (
            "CREATE INDEX intents_claimable ON intents (to_agent, workspace, intent_id) "
            "WHERE status IN ('ACKNOWLEDGED', 'DELIVERED', 'IN_PROGRESS', 'SUBMITTED')",
        ),
    ),
)
MIGRATIONS += (
    Migration(
        11,
        "indexes for the lists and lookups that walked history",
        # Each of these read rows by the thousand to return a few, and more as history grew
        # (see docs/decisions.md, Store): an agent's intents (with the workspace, which every
        # list filters on, so no planner prefers the workspace's index), a parent's children
        # in id order, lists by correlation id, sender and type, a subscription's delivery
        # log and its replay by time, and the live keys. The indexes they replace are dropped
        # last: on PostgreSQL a DROP INDEX locks the table against reads until the commit.
        (
            "CREATE INDEX intents_of_agent ON intents (to_agent, workspace, intent_id)",
            "CREATE INDEX intents_of_agent_by_status ON intents "
            "(to_agent, workspace, status, intent_id)",
            "CREATE INDEX intents_of_parent ON intents (parent_intent_id, intent_id)",
            "CREATE INDEX intents_by_correlation ON intents (workspace, correlation_id, intent_id)",
            "CREATE INDEX intents_by_sender ON intents (workspace, from_agent, intent_id)",
            "CREATE INDEX intents_by_type ON intents (workspace, intent_type, intent_id)",
            "CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries "
            "(subscription_id, created_at, intent_id, seq, delivery_id)",
            "CREATE INDEX api_keys_live ON api_keys (key_id) WHERE revoked_at IS NULL",
            "DROP INDEX intents_by_agent_id",
            "DROP INDEX intents_by_agent",
            "DROP INDEX intents_by_parent",
        ),
    ),
)
MIGRATIONS += (
    Migration(
        12,
        "agents per workspace",
        # An agent was keyed by its address alone, so whichever workspace used an address
        # first owned it: another workspace could then neither see nor stop its own agent of
        # that address, and its kill or pause stopped the first one's claims. Each workspace
        # now has its own agents; the table is rebuilt with the key (workspace, address).
        (
            """CREATE TABLE agents_of_workspaces (
                address TEXT NOT NULL,
                workspace TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                schema_version INTEGER NOT NULL,
                feed_seq INTEGER NOT NULL DEFAULT 0,
                generation INTEGER NOT NULL DEFAULT 0,
                policy TEXT,
                status_reason TEXT,
                heartbeat_at TEXT,
                metrics TEXT,
                PRIMARY KEY (workspace, address)
            )""",
            "INSERT INTO agents_of_workspaces (address, workspace, status, created_at, "
            "updated_at, schema_version, feed_seq, generation, policy, status_reason, "
            "heartbeat_at, metrics) SELECT address, workspace, status, created_at, updated_at, "
            "schema_version, feed_seq, generation, policy, status_reason, heartbeat_at, metrics "
            "FROM agents",
            "DROP TABLE agents",
            "ALTER TABLE agents_of_workspaces RENAME TO agents",
        ),
    ),
)

LATEST = MIGRATIONS[-1].version
