"""The store interface. The engine runs its logic as functions of a transaction (``Tx``);
a dialect decides how those transactions reach the database and how writes are made durable.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

Row = tuple[Any, ...]


class Tx(Protocol):
    """One transaction: SQL with ``?`` placeholders, portable across dialects."""

    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; return the number of rows changed."""
        ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this transaction is durably committed (never if it is not)."""
        ...


class Store(abc.ABC):
    """A durable home for intents. One interface, one class per dialect.

    ``write(fn)`` runs ``fn(tx)`` in a transaction and returns only once the transaction is
    durable. If ``fn`` raises, its changes are rolled back and the exception propagates; other
    writes grouped into the same commit are not affected.
    """

    url: str

    @abc.abstractmethod
    def write(self, fn: Callable[[Tx], T]) -> T: ...

    @abc.abstractmethod
    def read(self, fn: Callable[[Tx], T]) -> T: ...

    @abc.abstractmethod
    def wait_for_change(self, seen: int, timeout: float) -> int:
        """Block until a change newer than ``seen`` may exist (or ``timeout``); return the
        current change counter. Wake-ups may be spurious; callers re-read."""

    @property
    @abc.abstractmethod
    def change_counter(self) -> int: ...

    @abc.abstractmethod
    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (from the store's own thread, so keep it short) after every
        durable commit of this process; return a function that unsubscribes it."""

    @property
    @abc.abstractmethod
    def schema_version(self) -> int: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
