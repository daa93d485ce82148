"""Who is calling: ``x-api-key`` or ``Authorization: Bearer``, checked against hashed keys.

A store with no live key is in development mode: requests act as the local admin, and
``tether serve`` refuses to bind beyond loopback in that mode. Once any key exists, every
request but ``/health`` needs a valid one (401 otherwise).

The answers are remembered between requests by a :class:`KeyCache` (one per app), so a
request with a known key costs no store read.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from fastapi import Request

from ..engine import Engine
from ..errors import Forbidden, Unauthorized
from ..model import ApiKey, Principal, PrincipalKind
from ..store import KEY_CHANGES
from .deps import engine_call


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return None


KEY_CACHE_SECONDS = 1.0
"""How long a remembered answer is trusted at most (see :class:`KeyCache`)."""

KEY_CACHE_ENTRIES = 4096


class KeyCache:
    """The keys this server has checked, and whether the store has any, remembered in memory.

    Without it every request is a store read (and, in development mode, so is asking whether
    any key exists). An answer is reused while both hold:

    * The store's :data:`~tether.store.KEY_CHANGES` counter has not moved since it was read.
      Creating or revoking a key touches that topic, so a change made through this process
      is seen by the very next request, and one made through another PostgreSQL replica or
      the CLI as soon as its NOTIFY (which names the topic) arrives. A change whose topics
      are unknown (another process's commit noticed on SQLite, a PostgreSQL catch-up) moves
      every topic's counter, so it clears the cache too.
    * It is younger than ``max_age`` seconds. On SQLite another process's commit is noticed
      only when something polls the file's ``data_version`` (the change feed does, but only
      while it is idle, so under load perhaps not for long), and a PostgreSQL NOTIFY can be
      lost; so an answer is read again once it is that old, whatever the counter says. A key
      revoked with ``tether keys revoke`` in another process stops working within
      ``max_age``, and a key created there ends development mode within it.

    Only a key that authenticated is remembered: an unknown or revoked one is looked up in
    the store on every request, so a key created a moment ago works at once (and a flood of
    bogus keys cannot fill the cache). Entries are keyed by the SHA-256 of the presented
    string, not by the string: what the cache holds would not authenticate anyone if it were
    read out of the process's memory. It is bounded (``max_entries``; the oldest goes first).

    Lookups are lock-free (one dict read); fills, which may run on worker threads, take a lock.
    ``reads`` counts the store reads made, for tests and diagnostics.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_age: float | None = None,
        max_entries: int = KEY_CACHE_ENTRIES,
    ) -> None:
        self.engine = engine
        self.max_age = KEY_CACHE_SECONDS if max_age is None else max_age
        self.max_entries = max_entries
        self.reads = 0
        self._store = engine.store
        self._keys: dict[bytes, tuple[int, float, ApiKey, Principal]] = {}
        self._any: tuple[int, float, bool] | None = None
        self._lock = threading.Lock()

    def _counter(self) -> int:
        return self._store.topic_counter(KEY_CHANGES)

    def _fresh(self, counter: int, at: float) -> bool:
        """Whether an answer read at counter ``counter`` and time ``at`` is still trusted."""
        return counter == self._counter() and time.monotonic() - at < self.max_age

    @staticmethod
    def _id(presented: str) -> bytes:
        return hashlib.sha256(presented.encode()).digest()

    def cached(self, presented: str) -> tuple[ApiKey, Principal] | None:
        """The remembered answer for ``presented``, if it is still to be trusted; no I/O."""
        entry = self._keys.get(self._id(presented))
        if entry is None:
            return None
        counter, at, key, who = entry
        if not self._fresh(counter, at):
            return None
        return key, who

    def load(self, presented: str) -> tuple[ApiKey, Principal] | None:
        """Authenticate ``presented`` with a store read, and remember it if it is live."""
        counter = self._counter()  # before the read: a change committed after it moves this
        at = time.monotonic()
        found = self.engine.authenticate(presented)
        ident = self._id(presented)
        who = found.principal if found is not None else None
        with self._lock:
            self.reads += 1
            self._keys.pop(ident, None)  # (re-)inserted last: the dict's order is the age order
            if found is None or who is None:
                return None
            if len(self._keys) >= self.max_entries:
                del self._keys[next(iter(self._keys))]
            self._keys[ident] = (counter, at, found, who)
        return found, who

    def cached_has_keys(self) -> bool | None:
        """Whether the store has a live key, if the remembered answer is to be trusted."""
        entry = self._any
        if entry is None:
            return None
        counter, at, any_live = entry
        if not self._fresh(counter, at):
            return None
        return any_live

    def load_has_keys(self) -> bool:
        counter = self._counter()
        at = time.monotonic()
        any_live = self.engine.has_keys()
        with self._lock:
            self.reads += 1
            self._any = (counter, at, any_live)
        return any_live


async def principal(request: Request) -> Principal:
    cache: KeyCache = request.app.state.keys
    key = presented_key(request)
    if key is None:
        any_live = cache.cached_has_keys()
        if any_live is None:
            any_live = await engine_call(request, cache.load_has_keys)
        if any_live:
            raise Unauthorized("an API key is required (x-api-key or Authorization: Bearer)",
                               code="missing_api_key")  # fmt: skip
        who = Principal.admin("local")
        request.app.state.limiter.check("anonymous")
        return who
    found = cache.cached(key)
    if found is None:
        found = await engine_call(request, cache.load, key)
        if found is None:
            raise Unauthorized(
                "the API key is not valid (unknown or revoked)", code="invalid_api_key"
            )
    api_key, who = found
    request.app.state.limiter.check(api_key.key_id)
    request.state.key = api_key
    return who


def require(*kinds: PrincipalKind) -> Callable[..., object]:
    """A dependency: the caller, if its kind is one of ``kinds``; 403 otherwise.

    It authenticates itself (it calls :func:`principal` rather than depending on it): one
    dependency less for FastAPI to solve on every request. No route has two of these, so
    the rate limiter still counts each request once."""
    allowed = frozenset(kinds)

    async def check(request: Request) -> Principal:
        who = await principal(request)
        if who.kind not in allowed:
            raise Forbidden(
                f"a {who.kind.value} key cannot do this",
                code="wrong_role",
                details={"allowed": [k.value for k in kinds]},
            )
        return who

    return check


ANYONE = (PrincipalKind.ADMIN, PrincipalKind.AGENT, PrincipalKind.HUMAN)
AGENTS = (PrincipalKind.ADMIN, PrincipalKind.AGENT)
ADMINS = (PrincipalKind.ADMIN,)
