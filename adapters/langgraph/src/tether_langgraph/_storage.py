"""The checkpointer's storage: numbered, write-once records per thread and namespace, kept as
intent state through tether's public client (in-process or over HTTP alike).

This module knows keys, versions and caches; it knows nothing of LangGraph's types. A record
is plain JSON holding one or more checkpoints (``{"cps": [entry, ...]}``, in the order they
were put); a checkpoint's place is its *address* ``(seq, index)``. An address stored inside a
record may say ``seq`` 0: "this record" (its number is known only once it is written).
:mod:`tether_langgraph._saver` builds and reads the entries.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tether import Client, VersionConflict

from . import _codec, _layout, _pending

STORE_AGENT = "agent://langgraph/checkpoints"
"""The address the storage intents are sent to. No worker serves it, so they are never
claimed; they only carry state."""

_RETRIES = 50

T = TypeVar("T")

Address = tuple[int, int]
"""Where a checkpoint is stored: (record number, index in the record)."""


def resolve(address: list[int] | tuple[int, int], seq: int) -> Address:
    """An address stored in record ``seq`` made absolute (``seq`` 0 means that record)."""
    return (address[0] or seq, address[1])


class StorageError(RuntimeError):
    """The store holds something this checkpointer cannot use."""


@dataclass
class Thread:
    """What this process knows about one thread; every field is a cache of the store."""

    thread_id: str
    intent_id: str
    lock: threading.RLock = field(default_factory=threading.RLock)
    """Held by every operation on the thread in this process. (Letting checkpoints and
    pending writes of one thread go on side by side measured slower: the store then commits
    them one after the other anyway, and caches miss.)"""
    epoch: str | None = None
    """The current epoch; a new one (a fresh id, never reused) empties the thread."""
    epoch_version: int = 0
    dead: str | None = None
    """The epoch the current one replaced (its records are deleted, or should be)."""
    named: bool = False
    """Whether the store can tell this thread's id from its keys (see ``_layout.id_key``)."""
    heads: dict[str, int] = field(default_factory=dict)
    """Per namespace: the highest record number known to exist."""
    seqs: dict[tuple[str, str], Address] = field(default_factory=dict)
    """(namespace, checkpoint id) -> where the checkpoint is stored."""
    namespaces: list[str] | None = None
    namespaces_version: int = 0
    writes: dict[str, tuple[int, list[list[Any]]]] = field(default_factory=dict)
    """Writes key -> (version, entries) as last read or written here."""
    waiting: dict[tuple[str, str], list[list[Any]]] = field(default_factory=dict)
    """(namespace, checkpoint id) -> writes not stored yet (see ``_pending``)."""
    waiting_checkpoints: dict[str, tuple[dict[str, Any], list[tuple[str, str]]]] = field(
        default_factory=dict
    )
    """Namespace -> a checkpoint entry (and its parts) not stored yet (see ``_pending``)."""

    def reset(self, epoch: str, version: int) -> None:
        self.epoch, self.epoch_version = epoch, version
        self.heads.clear()
        self.seqs.clear()
        self.namespaces = None
        self.namespaces_version = 0
        self.writes.clear()
        self.waiting.clear()
        self.waiting_checkpoints.clear()


class CheckpointStore:
    """Records of checkpoints and their pending writes, on tether storage intents."""

    def __init__(
        self,
        client: Client,
        *,
        namespace: str,
        agent: str | None,
        shards: int,
        cache_size: int,
    ) -> None:
        if shards < 1:
            raise ValueError("shards must be at least 1")
        self.client = client
        self.namespace = namespace
        self.agent = agent
        self.shards = shards
        self._intents: dict[int, str] = {}
        self._threads: dict[str, Thread] = {}
        self._lock = threading.Lock()
        self._records: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._cache_size = cache_size

    # -- threads and their storage intents ---------------------------------------------------

    def thread(self, thread_id: str) -> Thread:
        with self._lock:
            found = self._threads.get(thread_id)
        if found is not None:
            return found
        intent_id = self._intent_for(_layout.shard_of(thread_id, self.shards))
        with self._lock:
            return self._threads.setdefault(thread_id, Thread(thread_id, intent_id))

    def _intent_for(self, shard: int) -> str:
        with self._lock:
            known = self._intents.get(shard)
        if known is not None:
            return known
        intent_id = self._find_shard(shard)
        if intent_id is None:
            self.client.create_intent(
                _layout.INTENT_TYPE,
                STORE_AGENT,
                {"namespace": self.namespace, "shard": shard, "shards": self.shards},
                correlation_id=self._shard_id(shard),
                from_agent=self.agent,
                idempotency_key=self._shard_name(shard),
            )
            intent_id = self._find_shard(shard)
            assert intent_id is not None
        with self._lock:
            return self._intents.setdefault(shard, intent_id)

    def _shard_name(self, shard: int) -> str:
        return f"{_layout.SCHEMA}:{self.namespace}:{shard}/{self.shards}"

    def _shard_id(self, shard: int) -> str:
        """The shard's correlation id: a UUID (as AXP wants) derived from its name."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tether-langgraph:{self._shard_name(shard)}"))

    def _find_shard(self, shard: int) -> str | None:
        """The storage intent of a shard, found the same way by every principal (an
        idempotency key is scoped to who sends, so it cannot be the way to find it). Should
        two ever be created, everyone uses the older."""
        found = self.client.list_intents(
            to_agent=STORE_AGENT,
            intent_type=_layout.INTENT_TYPE,
            correlation_id=self._shard_id(shard),
            limit=100,
        ).items
        return min((i.intent_id for i in found), default=None)

    def thread_ids(self) -> list[str]:
        """The threads this process has touched."""
        with self._lock:
            return list(self._threads)

    def stored_threads(self) -> Iterator[str]:
        """Every thread of the namespace that has keys in the store (a deleted one too: its
        epoch record stays), storage intent after intent, found by listing keys 100 at a
        time and skipping the rest of each thread's: about one request per thread."""
        for shard in range(self.shards):
            with self._lock:
                intent_id = self._intents.get(shard)
            if intent_id is None:
                intent_id = self._find_shard(shard)
                if intent_id is None:
                    continue  # nothing was ever stored there
                with self._lock:
                    intent_id = self._intents.setdefault(shard, intent_id)
            after = ""
            while page := self.client.list_state(
                intent_id, prefix=f"{_layout.SCHEMA}/", after=after, limit=100
            ):
                segments = list(dict.fromkeys(_layout.thread_segment(e.key) for e in page))
                for segment in segments:
                    thread_id = self._thread_of(intent_id, segment)
                    if thread_id is not None:
                        yield thread_id
                after = _layout.past(segments[-1])

    def _thread_of(self, intent_id: str, segment: str) -> str | None:
        if segment.startswith("="):
            return _layout.readable_id(segment)
        if not segment.startswith("#"):
            return None  # blobs
        rec = self.client.get_state(intent_id, _layout.id_key(segment))
        # None: a thread last written before its keys named it (an older release)
        return str(rec.data["thread"]) if rec is not None else None

    def _name(self, thread: Thread) -> None:
        """Make sure the store can tell the thread's id (once per process and thread)."""
        if thread.named:
            return
        segment = _layout.part(thread.thread_id)
        if _layout.readable_id(segment) is None:
            with contextlib.suppress(VersionConflict):  # named already
                self.client.put_state(
                    thread.intent_id,
                    {"thread": thread.thread_id},
                    expected_version=0,
                    key=_layout.id_key(segment),
                )
        thread.named = True

    @contextmanager
    def locked(self, thread_id: str, *, fresh: bool = True) -> Iterator[Thread]:
        """The thread, locked in this process; ``fresh`` re-reads its epoch first (another
        process may have deleted or pruned it)."""
        thread = self.thread(thread_id)
        with thread.lock:
            if fresh or thread.epoch is None:
                self._load_epoch(thread)
            yield thread

    def read(self, thread_id: str, fn: Callable[[Thread], T]) -> T:
        """``fn(thread)``, locked in this process, with what it read of the thread checked.

        The epoch ``fn`` reads in may be replaced meanwhile, and the replaced epoch's records
        are then deleted, so ``fn`` could see some of them and miss others. So the epoch is
        read after ``fn``: if it is still the one ``fn`` used, it was current (epochs are
        never reused) and undeleted all along; otherwise ``fn`` runs again in the new one.
        A thread seen for the first time is tried in epoch "0" (never deleted nor pruned, as
        most are), which the check confirms: no more reads than reading the epoch first.
        """
        thread = self.thread(thread_id)
        with thread.lock:
            if thread.waiting or thread.waiting_checkpoints:
                self._load_epoch(thread)  # what waits is stored in a current epoch only
            for _ in range(_RETRIES):
                guessed = thread.epoch is None
                if guessed:
                    thread.epoch, thread.epoch_version = "0", 0
                epoch = thread.epoch
                try:
                    result = fn(thread)
                    self._load_epoch(thread)
                except BaseException:
                    if guessed:
                        thread.epoch = None  # unconfirmed: never to be written in
                    raise
                if thread.epoch == epoch:
                    return result
        raise StorageError(f"thread {thread_id!r} kept changing while it was read")

    def _load_epoch(self, thread: Thread) -> None:
        rec = self.client.get_state(thread.intent_id, _layout.epoch_key(thread.thread_id))
        epoch, version = (str(rec.data["epoch"]), rec.version) if rec is not None else ("0", 0)
        if epoch != thread.epoch or version != thread.epoch_version:
            thread.reset(epoch, version)
        thread.dead = rec.data.get("dead") if rec is not None else None

    def switch_epoch(
        self, thread: Thread, epoch: str, *, expected_version: int, replacing: str
    ) -> None:
        """Make ``epoch`` the thread's current one, replacing ``replacing``, if nobody switched
        it meanwhile (:class:`tether.VersionConflict` otherwise); then delete what the
        replaced epoch held (unreachable already)."""
        rec = self.client.put_state(
            thread.intent_id,
            {"epoch": epoch, "dead": replacing},
            expected_version=expected_version,
            key=_layout.epoch_key(thread.thread_id),
        )
        thread.reset(epoch, rec.version)
        thread.dead = replacing
        self.delete_epoch(thread, replacing)

    def delete_epoch(self, thread: Thread, epoch: str) -> None:
        """Delete an epoch's records: one that was replaced, or a fresh one never switched to
        (nobody reads either again)."""
        self.client.delete_state_prefix(
            thread.intent_id, _layout.epoch_prefix(thread.thread_id, epoch)
        )

    @staticmethod
    def new_epoch() -> str:
        return uuid.uuid4().hex[:16]

    def exists(self, thread: Thread) -> bool:
        """Whether the thread holds anything in its current epoch."""
        return bool(self.namespaces(thread)) or self.head(thread, "") > 0

    # -- namespaces --------------------------------------------------------------------------

    def namespaces(self, thread: Thread) -> list[str]:
        """The thread's namespaces other than the root one."""
        if thread.namespaces is None:
            assert thread.epoch is not None
            rec = self.client.get_state(
                thread.intent_id, _layout.namespaces_key(thread.thread_id, thread.epoch)
            )
            thread.namespaces = list(rec.data["ns"]) if rec is not None else []
            thread.namespaces_version = rec.version if rec is not None else 0
        return thread.namespaces

    def add_namespace(self, thread: Thread, checkpoint_ns: str) -> None:
        """Note a subgraph namespace so that delete, copy and prune find it later."""
        if checkpoint_ns == "":
            return
        for _ in range(_RETRIES):
            known = self.namespaces(thread)
            if checkpoint_ns in known:
                return
            assert thread.epoch is not None
            try:
                rec = self.client.put_state(
                    thread.intent_id,
                    {"ns": [*known, checkpoint_ns]},
                    expected_version=thread.namespaces_version,
                    key=_layout.namespaces_key(thread.thread_id, thread.epoch),
                )
            except VersionConflict:
                thread.namespaces = None
                continue
            thread.namespaces = [*known, checkpoint_ns]
            thread.namespaces_version = rec.version
            return
        raise StorageError(f"could not record namespace {checkpoint_ns!r}")

    # -- checkpoint records ------------------------------------------------------------------

    def record(self, thread: Thread, checkpoint_ns: str, seq: int) -> dict[str, Any] | None:
        """Record ``seq`` of the namespace (records never change, so they are cached)."""
        assert thread.epoch is not None
        key = _layout.checkpoint_key(thread.thread_id, thread.epoch, checkpoint_ns, seq)
        cache_key = (thread.intent_id, key)
        with self._lock:
            data = self._records.get(cache_key)
            if data is not None:
                self._records.move_to_end(cache_key)
        if data is None:
            rec = self.client.get_state(thread.intent_id, key)
            if rec is None:
                return None
            data = rec.data
            self._remember(cache_key, data)
        self._learn(thread, checkpoint_ns, seq, data)
        return data

    def _remember(self, cache_key: tuple[str, str], data: dict[str, Any]) -> None:
        with self._lock:
            self._records[cache_key] = data
            if len(self._records) > self._cache_size:
                self._records.popitem(last=False)

    @staticmethod
    def _learn(thread: Thread, checkpoint_ns: str, seq: int, data: dict[str, Any]) -> None:
        for index, entry in enumerate(data["cps"]):
            thread.seqs[(checkpoint_ns, entry["id"])] = (seq, index)
            if entry.get("parent") is not None and entry.get("pn") is not None:
                parent = resolve(entry["pn"], seq)
                thread.seqs.setdefault((checkpoint_ns, entry["parent"]), parent)
        if seq > thread.heads.get(checkpoint_ns, 0):
            thread.heads[checkpoint_ns] = seq

    def head(self, thread: Thread, checkpoint_ns: str) -> int:
        """The number of the newest record (0: none). Probes upward from what is known, so it
        sees records other processes added."""
        known = thread.heads.get(checkpoint_ns)
        if known is None:
            known = self._search_head(thread, checkpoint_ns)  # known + 1 was just missing
        else:
            while self.record(thread, checkpoint_ns, known + 1) is not None:
                known += 1
        thread.heads[checkpoint_ns] = known
        return known

    def _search_head(self, thread: Thread, checkpoint_ns: str) -> int:
        # Records are numbered without gaps, so doubling then bisecting finds the last one
        # in O(log n) reads.
        if self.record(thread, checkpoint_ns, 1) is None:
            return 0
        low, high = 1, 2
        while self.record(thread, checkpoint_ns, high) is not None:
            low, high = high, high * 2
        while high - low > 1:
            mid = (low + high) // 2
            if self.record(thread, checkpoint_ns, mid) is not None:
                low = mid
            else:
                high = mid
        return low

    def entry(self, thread: Thread, checkpoint_ns: str, address: Address) -> dict[str, Any] | None:
        data = self.record(thread, checkpoint_ns, address[0])
        if data is None or address[1] >= len(data["cps"]):
            return None
        found: dict[str, Any] = data["cps"][address[1]]
        return found

    def find(
        self, thread: Thread, checkpoint_ns: str, checkpoint_id: str
    ) -> tuple[Address, dict[str, Any]] | None:
        """Where a checkpoint id is stored: known ones at once, others by walking down."""
        address = thread.seqs.get((checkpoint_ns, checkpoint_id))
        if address is not None:
            entry = self.entry(thread, checkpoint_ns, address)
            if entry is not None and entry["id"] == checkpoint_id:
                return address, entry
        for seq in range(self.head(thread, checkpoint_ns), 0, -1):
            data = self.record(thread, checkpoint_ns, seq)
            for index, entry in enumerate(data["cps"] if data is not None else []):
                if entry["id"] == checkpoint_id:
                    return (seq, index), entry
        return None

    def next_after(
        self, thread: Thread, checkpoint_ns: str, address: Address
    ) -> tuple[Address, dict[str, Any]] | None:
        """The checkpoint put right after the one at ``address``, if stored."""
        seq, index = address
        data = self.record(thread, checkpoint_ns, seq)
        if data is not None and index + 1 < len(data["cps"]):
            return (seq, index + 1), data["cps"][index + 1]
        if seq >= thread.heads.get(checkpoint_ns, 0):
            return None  # the newest known: nothing after it (the head was just probed)
        following = self.record(thread, checkpoint_ns, seq + 1)
        return ((seq + 1, 0), following["cps"][0]) if following is not None else None

    def append(
        self,
        thread: Thread,
        checkpoint_ns: str,
        data: dict[str, Any],
        parts: list[tuple[str, str]],
    ) -> int:
        """Write a record at the next free number and return that number."""
        self._name(thread)
        self.write_parts(thread.intent_id, parts)
        self.add_namespace(thread, checkpoint_ns)
        assert thread.epoch is not None
        seq = thread.heads.get(checkpoint_ns)
        seq = (self.head(thread, checkpoint_ns) if seq is None else seq) + 1
        first = data["cps"][0]["id"]
        for _ in range(_RETRIES):
            key = _layout.checkpoint_key(thread.thread_id, thread.epoch, checkpoint_ns, seq)
            try:
                self.client.put_state(thread.intent_id, data, expected_version=0, key=key)
            except VersionConflict:
                # Taken: by another writer, or by this very write if a retried request
                # had already succeeded.
                taken = self.record(thread, checkpoint_ns, seq)
                if taken is not None and taken["cps"][0]["id"] == first:
                    return seq
                seq = self.head(thread, checkpoint_ns) + 1
                continue
            self._remember((thread.intent_id, key), data)
            self._learn(thread, checkpoint_ns, seq, data)
            for entry in data["cps"]:
                # Nothing was written for a checkpoint that did not exist a moment ago.
                writes_key = _layout.writes_key(
                    thread.thread_id, thread.epoch, checkpoint_ns, entry["id"]
                )
                thread.writes.setdefault(writes_key, (0, []))
            return seq
        raise StorageError(f"could not append a checkpoint to thread {thread.thread_id!r}")

    def write_parts(self, intent_id: str, parts: list[tuple[str, str]]) -> None:
        for key, text in parts:
            # parts are named by their content: one that exists already holds this text
            with contextlib.suppress(VersionConflict):
                self.client.put_state(intent_id, text, expected_version=0, key=key)

    def read_part(self, intent_id: str) -> Callable[[str], Any]:
        def fetch(key: str) -> Any:
            rec = self.client.get_state(intent_id, key)
            if rec is None:
                raise StorageError(f"a stored value lost its part {key}")
            return rec.data

        return fetch

    # -- pending writes ----------------------------------------------------------------------

    def writes(self, thread: Thread, checkpoint_ns: str, checkpoint_id: str) -> list[list[Any]]:
        """The pending writes of a checkpoint, as stored (read afresh)."""
        assert thread.epoch is not None
        key = _layout.writes_key(thread.thread_id, thread.epoch, checkpoint_ns, checkpoint_id)
        rec = self.client.get_state(thread.intent_id, key)
        version, entries = (rec.version, list(rec.data["w"])) if rec is not None else (0, [])
        thread.writes[key] = (version, entries)
        return entries

    def store_writes(
        self,
        thread: Thread,
        checkpoint_ns: str,
        checkpoint_id: str,
        entries: list[_pending.Entry],
        *,
        replace: bool = False,
    ) -> None:
        """Merge entries into the checkpoint's stored writes (see :func:`_pending.merge`)."""
        if entries:
            self.merge_writes(
                thread,
                checkpoint_ns,
                checkpoint_id,
                lambda current: _pending.merge(current, entries, replace=replace),
            )

    def merge_writes(
        self,
        thread: Thread,
        checkpoint_ns: str,
        checkpoint_id: str,
        merge: Callable[[list[_pending.Entry]], list[_pending.Entry] | None],
    ) -> None:
        """Apply ``merge`` (entries -> new entries, or None for no change) under
        compare-and-set, re-reading and re-applying on a conflict."""
        assert thread.epoch is not None
        key = _layout.writes_key(thread.thread_id, thread.epoch, checkpoint_ns, checkpoint_id)
        for _ in range(_RETRIES):
            cached = thread.writes.get(key)
            if cached is None:
                self.writes(thread, checkpoint_ns, checkpoint_id)
                cached = thread.writes[key]
            version, entries = cached
            new_entries = merge(entries)
            if new_entries is None:
                return
            self.write_parts(thread.intent_id, _codec.fit(e[3] for e in new_entries))
            try:
                rec = self.client.put_state(
                    thread.intent_id, {"w": new_entries}, expected_version=version, key=key
                )
            except VersionConflict:
                thread.writes.pop(key, None)
                continue
            thread.writes[key] = (rec.version, new_entries)
            return
        raise StorageError(f"could not store writes of checkpoint {checkpoint_id!r}")
