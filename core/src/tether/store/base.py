"""The store interface. The engine runs its logic as functions of a transaction (``Tx``);
a dialect decides how those transactions reach the database and how writes are made durable.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol, TypeVar

from .bridge import bridged

T = TypeVar("T")
logger = logging.getLogger("tether.store")

Row = tuple[Any, ...]

AGENT_CHANGES = "agents"
"""The topic of a change to an agent's status or policy (what an agent's guard watches)."""

KEY_CHANGES = "keys"
"""The topic of an API key being created or revoked (what a server's key cache watches)."""

WEBHOOK_CHANGES = "webhooks"
"""The topic of a webhook subscription being created or revoked (what a server's webhook
dispatcher watches while no subscription is live)."""


def work_for(agent: str) -> str:
    """The topic of an agent's intents becoming claimable (what an idle worker waits on)."""
    return f"work {agent}"


class Tx(Protocol):
    """One transaction: SQL with ``?`` placeholders, portable across dialects."""

    dialect: str
    memo: dict[Any, Any]
    """What this transaction has read already and may read again (it dies with it)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; return the number of rows changed."""
        ...

    def execute_later(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement whose row count the write does not need, before anything the
        write runs after it. A dialect may send it with the write's next statement or its
        commit, in one round trip: an error it raises then comes from that later call (or
        the commit), and rolls the write back as any error does. A check the write needs
        must fail the statement itself."""
        ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    def all(self, sql: str, params: Sequence[Any] = (), *, replan: bool = False) -> list[Row]:
        """All rows. ``replan``: plan the statement for these values each time. PostgreSQL
        otherwise comes to run a prepared statement's generic plan, which cannot tell a
        rare value from a common one (a list of an idle agent's intents walked the whole
        workspace): for lists whose best index depends on the values."""
        ...

    def all_of(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        """The rows of each query, in order: several reads, each a statement of its own, that
        a dialect may send in one round trip."""
        ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this transaction is durably committed (never if it is not)."""
        ...

    def execute_at_commit(self, sql: str, params: Sequence[Any] = (), *, order: str = "") -> None:
        """Run a statement among the transaction's last (its row count is not reported). A
        dialect may send them with the commit in one round trip, so the row locks they take
        are held only while the commit itself lasts: meant for a counter many writers bump.
        They run by ``order``, then as registered: name the row a statement locks, so any
        two transactions lock such rows in the same order and never deadlock on them."""
        ...

    def touch(self, topic: str) -> None:
        """Say that this transaction changes ``topic`` (see :meth:`Store.topic_counter`), so
        whoever waits on that topic alone wakes once it commits, here and in other replicas."""
        ...


class TxState:
    """What a dialect's transaction keeps besides its connection: the callbacks to run once
    it commits, the change topics it touched, and its memo (see :class:`Tx`)."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []
        self.topics: set[str] = set()
        self.memo: dict[Any, Any] = {}
        self.at_commit: list[tuple[str, str, Sequence[Any]]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)

    def touch(self, topic: str) -> None:
        self.topics.add(topic)

    def execute_at_commit(self, sql: str, params: Sequence[Any] = (), *, order: str = "") -> None:
        self.at_commit.append((order, sql, params))

    def last_statements(self) -> list[tuple[str, Sequence[Any]]]:
        """The statements given to :meth:`execute_at_commit`, in the order they run."""
        if not self.at_commit:  # most writes (every write's path calls this)
            return []
        ordered = sorted(self.at_commit, key=lambda entry: entry[0])  # stable
        return [(sql, params) for _, sql, params in ordered]


class Store(abc.ABC):
    """A durable home for intents. One interface, one class per dialect.

    ``write(fn)`` runs ``fn(tx)`` in a transaction and returns only once the transaction is
    durable. If ``fn`` raises, its changes are rolled back and the exception propagates; other
    writes grouped into the same commit are not affected.
    """

    url: str
    embedded = False
    """Whether the store is local to this process (reads do no network round trip, and a
    write waits only for its commit future): the server then runs engine calls on its event
    loop (:mod:`tether.store.bridge`) instead of in worker threads."""

    @abc.abstractmethod
    def write(self, fn: Callable[[Tx], T]) -> T: ...

    @abc.abstractmethod
    def read(self, fn: Callable[[Tx], T]) -> T: ...

    # -- change notification, shared by the dialects ----------------------------------------

    _poll_seconds: float = 1.0

    def _init_changes(self) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._topic_conds: dict[str, threading.Condition] = {}
        """Waiters on one topic wait here, so a commit that did not touch it wakes none of
        them (a process with many guards would otherwise wake them all on every commit)."""
        self._counter = 0
        self._unknown = 0  # changes whose topics are unknown (another process's, a catch-up)
        self._topics: dict[str, int] = {}
        self._listeners: list[Callable[[], None]] = []

    def _notify(self, topics: Collection[str] | None = ()) -> None:
        """Something changed: wake waiters and tell listeners. ``topics`` are the topics the
        change touched; ``None`` when it is not known which (every topic moves)."""
        with self._cond:
            self._counter += 1
            if topics is None:
                self._unknown += 1
                waking = list(self._topic_conds.values())
            else:
                for topic in topics:
                    self._topics[topic] = self._topics.get(topic, 0) + 1
                waking = [c for t in topics if (c := self._topic_conds.get(t)) is not None]
            self._cond.notify_all()
            for cond in waking:
                cond.notify_all()
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a listener's failure must not stop the store's thread
                logger.exception("store listener failed")

    def _poll_external(self) -> bool:
        """Whether another process changed the store (dialects that can tell cheaply)."""
        return False

    @property
    def change_counter(self) -> int:
        return self._counter

    def topic_counter(self, topic: str) -> int:
        """Moves with every change that touched ``topic`` (and every change of unknown
        topics), so a waiter on one topic is not woken by every other commit."""
        return self._topics.get(topic, 0) + self._unknown

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` after every change this process learns of (from the thread that
        committed it, or the store's listener: keep it short, and do not write or close the
        store from it); return a function that unsubscribes it."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def wait_for_change(self, seen: int, timeout: float, *, topic: str | None = None) -> int:
        """Block until a change newer than ``seen`` may exist (or ``timeout``); return the
        current change counter (of ``topic`` alone, when given: see :meth:`topic_counter`).
        Wake-ups may be spurious; callers re-read. Never from an event loop (a bridged call):
        it would stop the loop; the server waits on its change feed instead."""
        if bridged():
            raise RuntimeError("wait_for_change() would block the event loop")

        def current() -> int:
            return self._counter if topic is None else self.topic_counter(topic)

        deadline = time.monotonic() + timeout
        with self._cond:
            cond = self._cond
            if topic is not None:
                cond = self._topic_conds.setdefault(topic, threading.Condition(self._lock))
            while current() == seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                cond.wait(min(remaining, self._poll_seconds))
                if current() == seen and self._poll_external():
                    self._counter += 1
                    self._unknown += 1
            return current()

    @property
    @abc.abstractmethod
    def schema_version(self) -> int: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
