"""``TetherSaver``: LangGraph's checkpointer interface, stored in tether.

A checkpoint entry holds the checkpoint (without its channel values), its metadata, and the
values of the channels that changed in it; an unchanged channel points at the entry that
holds its value (one hop, never a chain), so a long thread does not store every channel
again at every step. A run's input checkpoint and the pending writes of a step travel with
the next checkpoint (see :mod:`tether_langgraph._pending`): one commit per superstep.
Pending writes stored on their own are one record per checkpoint, merged under
compare-and-set. See :mod:`tether_langgraph._layout` for the keys.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import copy
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from tether import AsyncClient, Client, VersionConflict

from . import _codec, _layout, _pending
from ._codec import Slot
from ._pending import Entries, Flusher
from ._storage import Address, CheckpointStore, StorageError, Thread, resolve

_RETRIES = 20

Parts = list[tuple[str, str]]
"""Parts of large values to write before the record that refers to them (see ``_codec``)."""
Unstored = tuple[dict[str, Any], Parts]
"""A checkpoint entry and its parts, not written yet."""
Kept = dict[str, list[tuple[dict[str, Any], Entries]]]
"""Per namespace, the checkpoint entries a rewritten thread keeps, in order, with their
writes."""

RECORD_VERSION = 1
"""Version of the record shape this release writes; readers accept it and older ones."""


def _config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def _flush_at_exit(saver: weakref.ref[TetherSaver]) -> None:
    """Store what still waits when the interpreter exits normally (best effort: the store
    may be closed already)."""
    alive = saver()
    if alive is not None:
        with contextlib.suppress(Exception):
            alive.flush()


def _shift(address: list[int], offset: int) -> list[int]:
    """A stored address moved ``offset`` records on (one that means "this record" stays)."""
    return [address[0] + offset if address[0] else 0, address[1]]


def _target(config: RunnableConfig) -> tuple[str, str]:
    conf = config["configurable"]
    return str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))


class TetherSaver(BaseCheckpointSaver[int]):
    """A LangGraph checkpointer that keeps checkpoints in tether, in-process or over HTTP.

    It stores through tether's public client, so a graph checkpointed by one process resumes
    in any other process that reaches the same store or server. Run graphs with
    ``durability="sync"`` (the default of :class:`tether_langgraph.DurableGraph`): then a
    step that finished before a crash is never lost.

    Example::

        import tether
        from tether_langgraph import TetherSaver

        saver = TetherSaver(tether.connect())                 # or connect("http://...")
        graph = builder.compile(checkpointer=saver)
        graph.invoke(inputs, {"configurable": {"thread_id": "order-42"}}, durability="sync")

    Args:
        client: a tether client (sync or async; the async one's sync client is used in a
            worker thread, as the async client itself does).
        agent: the agent address that sends the storage intents (default: the client's
            principal). Any principal of the workspace finds and shares the same storage.
        namespace: separates independent checkpoint stores on one tether store.
        shards: how many storage intents threads are spread over (fixed per namespace).
        serde: LangGraph's serializer (default: its ``JsonPlusSerializer``).
        cache_size: how many immutable checkpoint records to keep in memory.
        write_delay: how long (seconds) a task's ordinary writes, and a run's input
            checkpoint, may wait to be stored with the next checkpoint in one commit (see
            :mod:`tether_langgraph._pending`); 0 stores each at once.

    Deleting or pruning a thread makes what it drops unreachable at once and then deletes its
    records from the store; parts of large values are kept (see :mod:`tether_langgraph._layout`).
    ``list(None)`` and ``delete_for_runs`` find the namespace's threads by listing the storage
    intents' keys.
    """

    def __init__(
        self,
        client: Client | AsyncClient,
        *,
        agent: str | None = None,
        namespace: str = "default",
        shards: int = 16,
        serde: SerializerProtocol | None = None,
        cache_size: int = 4096,
        write_delay: float = 0.02,
    ) -> None:
        super().__init__(serde=serde)
        sync = client.sync if isinstance(client, AsyncClient) else client
        self.client = sync
        self.write_delay = write_delay
        self.store = CheckpointStore(
            sync, namespace=namespace, agent=agent, shards=shards, cache_size=cache_size
        )
        self._flusher = Flusher(self._flush_due)
        atexit.register(_flush_at_exit, weakref.ref(self))

    # -- reading -----------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config`` (its ``checkpoint_id``, or the latest)."""
        thread_id, checkpoint_ns = _target(config)
        checkpoint_id = get_checkpoint_id(config)

        def read(thread: Thread) -> CheckpointTuple | None:
            self._store_waiting_checkpoints(thread)
            if checkpoint_id:
                found = self.store.find(thread, checkpoint_ns, checkpoint_id)
                if found is None:
                    return None
                return self._tuple(thread, checkpoint_ns, *found)
            seq = self.store.head(thread, checkpoint_ns)
            latest = self.store.record(thread, checkpoint_ns, seq) if seq else None
            if latest is None:
                return None
            index = len(latest["cps"]) - 1
            return self._tuple(thread, checkpoint_ns, (seq, index), latest["cps"][index])

        return self.store.read(thread_id, read)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """A thread's checkpoints, newest first (by namespace when ``config`` names none).

        Without ``config``: every thread's, thread after thread, as they are found by listing
        the storage intents' keys (lazily: ``limit`` stops the reading too).
        """
        if config is None:
            return self._list_every_thread(filter, before, limit)
        thread_id = str(config["configurable"]["thread_id"])
        wanted_ns = config["configurable"].get("checkpoint_ns")
        wanted_id = get_checkpoint_id(config)
        before_id = get_checkpoint_id(before) if before else None

        def read(thread: Thread) -> list[CheckpointTuple]:
            found: list[CheckpointTuple] = []
            self._store_waiting_checkpoints(thread)
            spaces = [wanted_ns] if wanted_ns is not None else ["", *self.store.namespaces(thread)]
            for checkpoint_ns in spaces:
                for seq in range(self.store.head(thread, checkpoint_ns), 0, -1):
                    data = self.store.record(thread, checkpoint_ns, seq)
                    for index in reversed(range(len(data["cps"]) if data is not None else 0)):
                        assert data is not None
                        entry = data["cps"][index]
                        if limit is not None and len(found) >= limit:
                            return found
                        if wanted_id and entry["id"] != wanted_id:
                            continue
                        if before_id and entry["id"] >= before_id:
                            continue
                        if filter:
                            metadata = self._load(thread, entry["md"])
                            if not all(metadata.get(k) == v for k, v in filter.items()):
                                continue
                        found.append(self._tuple(thread, checkpoint_ns, (seq, index), entry))
            return found

        return iter(self.store.read(thread_id, read))

    def _list_every_thread(
        self,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Iterator[CheckpointTuple]:
        left = limit
        for thread_id in self.store.stored_threads():
            if left is not None and left <= 0:
                return
            config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
            for item in self.list(config, filter=filter, before=before, limit=left):
                yield item
                if left is not None:
                    left -= 1

    def _load(self, thread: Thread, slot: Slot) -> Any:
        return _codec.decode(self.serde, slot, self.store.read_part(thread.intent_id))

    def _entries(
        self, thread: Thread, checkpoint_ns: str, address: Address, checkpoint_id: str
    ) -> Entries:
        """A checkpoint's writes: stored ones, those carried by the checkpoint put right after
        it, and those still waiting in this process."""
        carried: Entries = []
        child = self.store.next_after(thread, checkpoint_ns, address)
        if child is not None and child[1].get("parent") == checkpoint_id:
            carried = child[1].get("cw", [])
        stored = self.store.writes(thread, checkpoint_ns, checkpoint_id)
        waiting = thread.waiting.get((checkpoint_ns, checkpoint_id), [])
        return _pending.union(stored, carried, waiting)

    def _tuple(
        self, thread: Thread, checkpoint_ns: str, address: Address, entry: dict[str, Any]
    ) -> CheckpointTuple:
        checkpoint: Checkpoint = self._load(thread, entry["cp"])
        values = {ch: self._load(thread, slot) for ch, slot in entry["vals"].items()}
        for ch, ref in entry["refs"].items():
            home = self.store.entry(thread, checkpoint_ns, resolve(ref, address[0]))
            slot = home["vals"].get(ch) if home is not None else None
            if slot is not None:
                values[ch] = self._load(thread, slot)
        checkpoint["channel_values"] = values
        entries = self._entries(thread, checkpoint_ns, address, entry["id"])
        entries.sort(key=lambda e: writes_sort_key(e[4], e[0], e[1]))
        parent = entry.get("parent")
        return CheckpointTuple(
            config=_config(thread.thread_id, checkpoint_ns, entry["id"]),
            checkpoint=checkpoint,
            metadata=self._load(thread, entry["md"]),
            parent_config=_config(thread.thread_id, checkpoint_ns, parent) if parent else None,
            pending_writes=[(e[0], e[2], self._load(thread, e[3])) for e in entries],
        )

    # -- writing -----------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint; values of channels that did not change are referenced.

        An input checkpoint (what ``invoke`` writes before the first step) waits to be
        stored with the next checkpoint, in one commit (see :mod:`tether_langgraph._pending`).
        """
        thread_id, checkpoint_ns = _target(config)
        parent_id = get_checkpoint_id(config)
        full_metadata = get_checkpoint_metadata(config, metadata)
        with self.store.locked(thread_id, fresh=False) as thread:
            waiting = thread.waiting_checkpoints.pop(checkpoint_ns, None)
            together: Unstored | None = None
            parent: tuple[Address, dict[str, Any]] | None = None
            if waiting is not None and waiting[0]["id"] == parent_id:
                together, parent = waiting, ((0, 0), waiting[0])  # one record for both
            else:
                if waiting is not None:  # not followed by its child: stored on its own
                    self._append(thread, checkpoint_ns, [waiting])
                if parent_id:
                    parent = self.store.find(thread, checkpoint_ns, parent_id)
            entry, parts = self._entry(checkpoint, full_metadata, new_versions, parent_id, parent)
            entry["cw"] = thread.waiting.pop((checkpoint_ns, parent_id), []) if parent_id else []
            if entry["cw"]:
                parts += _codec.fit(e[3] for e in entry["cw"])
            if together is None and full_metadata.get("source") == "input" and self.write_delay > 0:
                thread.waiting_checkpoints[checkpoint_ns] = (entry, parts)
                self._flusher.schedule(thread_id, self.write_delay)
                return _config(thread_id, checkpoint_ns, checkpoint["id"])
            batch = [together, (entry, parts)] if together is not None else [(entry, parts)]
            self._append(thread, checkpoint_ns, batch)
            if entry["cw"] and not self._follows(thread, checkpoint_ns, parent, entry["id"]):
                # Readers look for carried writes right after their checkpoint only.
                assert parent_id is not None
                self._store(thread, (checkpoint_ns, parent_id), entry["cw"])
        return _config(thread_id, checkpoint_ns, checkpoint["id"])

    def _follows(
        self,
        thread: Thread,
        checkpoint_ns: str,
        parent: tuple[Address, dict[str, Any]] | None,
        checkpoint_id: str,
    ) -> bool:
        """Whether the checkpoint just appended is stored right after its parent."""
        if parent is None:
            return False
        if parent[0] == (0, 0):
            return True  # its parent waited and went into the same record, just before it
        following = self.store.next_after(thread, checkpoint_ns, parent[0])
        return following is not None and following[1]["id"] == checkpoint_id

    def _entry(
        self,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        parent_id: str | None,
        parent: tuple[Address, dict[str, Any]] | None,
    ) -> Unstored:
        """The stored form of a checkpoint, and the parts of its large values."""
        homes: dict[str, tuple[Any, list[int]]] = {}
        if parent is not None:
            (pseq, pindex), pentry = parent
            pvers = pentry["vers"]
            for ch in pentry["vals"]:
                homes[ch] = (pvers.get(ch), [pseq, pindex])
            for ch, ref in pentry["refs"].items():
                homes[ch] = (pvers.get(ch), list(resolve(ref, pseq)) if pseq else list(ref))
        values = checkpoint["channel_values"]
        inline: dict[str, Slot] = {}
        refs: dict[str, list[int]] = {}
        for ch, version in checkpoint["channel_versions"].items():
            home = homes.get(ch)
            if ch not in new_versions and home is not None and home[0] == version:
                refs[ch] = home[1]
            elif ch in values:
                inline[ch] = _codec.encode(self.serde, values[ch])
        stripped = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        entry: dict[str, Any] = {
            "id": checkpoint["id"],
            "parent": parent_id,
            "pn": list(parent[0]) if parent is not None else None,
            "cp": _codec.encode(self.serde, stripped),
            "md": _codec.encode(self.serde, metadata),
            "vers": dict(checkpoint["channel_versions"]),
            "vals": inline,
            "refs": refs,
        }
        return entry, _codec.fit([entry["cp"], entry["md"], *inline.values()])

    def _append(
        self,
        thread: Thread,
        checkpoint_ns: str,
        batch: Sequence[Unstored],
    ) -> int:
        parts = [part for _, entry_parts in batch for part in entry_parts]
        record = {"v": RECORD_VERSION, "cps": [entry for entry, _ in batch]}
        return self.store.append(thread, checkpoint_ns, record, parts)

    def _store_waiting_checkpoints(self, thread: Thread) -> None:
        while thread.waiting_checkpoints:
            checkpoint_ns, waiting = thread.waiting_checkpoints.popitem()
            self._append(thread, checkpoint_ns, [waiting])

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Take a task's writes against a checkpoint. A write already there under the same
        (task, index) is kept, except the special ones (errors, interrupts), which replace.

        Special writes are stored at once; ordinary ones travel with the next checkpoint or
        are stored after ``write_delay`` (see :mod:`tether_langgraph._pending`)."""
        thread_id, checkpoint_ns = _target(config)
        checkpoint_id = str(config["configurable"]["checkpoint_id"])
        entries: Entries = [
            [task_id, WRITES_IDX_MAP.get(channel, idx), channel, _codec.encode(self.serde, value),
             task_path]
            for idx, (channel, value) in enumerate(writes)
        ]  # fmt: skip
        special = any(channel in WRITES_IDX_MAP for channel, _ in writes)
        replace = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        with self.store.locked(thread_id, fresh=False) as thread:
            key = (checkpoint_ns, checkpoint_id)
            if special or self.write_delay <= 0:
                self._store_waiting_checkpoints(thread)
                self._store(thread, key, thread.waiting.pop(key, []))
                self.store.store_writes(thread, *key, entries, replace=replace)
                return
            merged = _pending.merge(thread.waiting.get(key, []), entries, replace=False)
            if merged is None:
                return
            thread.waiting[key] = merged
        self._flusher.schedule(thread_id, self.write_delay)

    def _store(self, thread: Thread, key: tuple[str, str], entries: Entries) -> None:
        self.store.store_writes(thread, key[0], key[1], entries)

    def flush(self, thread_id: str | None = None) -> None:
        """Store what still waits (of one thread, or of all), now."""
        targets = [thread_id] if thread_id is not None else self.store.thread_ids()
        for target in targets:
            with self.store.locked(target, fresh=False) as thread:
                self._store_waiting_checkpoints(thread)
                while thread.waiting:
                    key, entries = thread.waiting.popitem()
                    self._store(thread, key, entries)

    def _flush_due(self, thread_id: str) -> None:
        self.flush(thread_id)

    # -- whole threads -----------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of the thread: unreachable at once, then deleted
        from the store."""
        for _ in range(_RETRIES):
            with self.store.locked(str(thread_id)) as thread:
                thread.waiting.clear()
                thread.waiting_checkpoints.clear()
                if not self.store.exists(thread):
                    if thread.dead is not None:  # a deletion cut short is finished now
                        self.store.delete_epoch(thread, thread.dead)
                    return
                assert thread.epoch is not None
                try:
                    self.store.switch_epoch(
                        thread,
                        self.store.new_epoch(),
                        expected_version=thread.epoch_version,
                        replacing=thread.epoch,
                    )
                except VersionConflict:
                    continue  # switched by someone else meanwhile: look again
                return
        raise StorageError(f"could not delete thread {thread_id!r}")

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of one thread after those of another."""
        self.flush(str(source_thread_id))
        store = self.store

        def read(source: Thread) -> tuple[dict[str, list[Any]], dict[tuple[str, str], Entries]]:
            spaces = ["", *store.namespaces(source)]
            copied = {
                ns: [store.record(source, ns, seq) for seq in range(1, store.head(source, ns) + 1)]
                for ns in spaces
            }
            writes = {
                (ns, entry["id"]): store.writes(source, ns, entry["id"])
                for ns, records in copied.items()
                for data in records
                if data is not None
                for entry in data["cps"]
            }
            return copied, writes

        copied, writes = store.read(str(source_thread_id), read)
        source_intent = store.thread(str(source_thread_id)).intent_id
        with store.locked(str(target_thread_id)) as target:
            for checkpoint_ns, records in copied.items():
                offset = store.head(target, checkpoint_ns)
                for data in records:
                    if data is None:
                        continue
                    moved = copy.deepcopy(data)
                    for entry in moved["cps"]:
                        entry["refs"] = {
                            ch: _shift(ref, offset) for ch, ref in entry["refs"].items()
                        }
                        if entry.get("pn") is not None:
                            entry["pn"] = _shift(entry["pn"], offset)
                        slots = [entry["cp"], entry["md"], *entry["vals"].values()]
                        slots += [e[3] for e in entry.get("cw", [])]
                        self._copy_parts(source_intent, target.intent_id, slots)
                    store.append(target, checkpoint_ns, moved, [])
                    for entry in moved["cps"]:
                        entries = writes[(checkpoint_ns, entry["id"])]
                        self._copy_parts(source_intent, target.intent_id, [e[3] for e in entries])
                        store.store_writes(target, checkpoint_ns, entry["id"], entries)

    def _copy_parts(self, source: str, target: str, slots: Sequence[Slot]) -> None:
        if source == target:
            return
        fetch = self.store.read_part(source)
        for slot in slots:
            body = slot[1]
            if isinstance(body, dict):
                keys = [_layout.blob_key(body["h"], i) for i in range(body["n"])]
                self.store.write_parts(target, [(key, fetch(key)) for key in keys])

    def prune(
        self,
        thread_ids: Sequence[str],
        *,
        strategy: str = "keep_latest",
    ) -> None:
        """Keep only each namespace's latest checkpoint (with its writes), or delete all.

        The kept checkpoint still names its parent, which is gone: history before it is not
        available any more (as with LangGraph's own savers).
        """
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: keep_latest or delete")
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_id)
            else:
                self._keep_latest(str(thread_id))

    def _keep_latest(self, thread_id: str) -> None:
        self.flush(thread_id)
        for _ in range(_RETRIES):
            with self.store.locked(thread_id) as thread:
                kept: Kept = {}
                for checkpoint_ns in ["", *self.store.namespaces(thread)]:
                    seq = self.store.head(thread, checkpoint_ns)
                    data = self.store.record(thread, checkpoint_ns, seq) if seq else None
                    if data is None:
                        continue
                    index = len(data["cps"]) - 1
                    latest = data["cps"][index]
                    whole = self._moved(thread, checkpoint_ns, (seq, index), latest, {})
                    writes = self.store.writes(thread, checkpoint_ns, latest["id"])
                    kept[checkpoint_ns] = [(whole, writes)]
                if not kept or self._rewrite(thread, kept):
                    return
        raise StorageError(f"could not prune thread {thread_id!r}")

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints that runs made (their metadata's ``run_id`` is one of
        ``run_ids``), with their writes.

        This scans: tether keeps no index by run, so every checkpoint of every thread of the
        namespace is read (the threads are found by listing the storage intents' keys). A
        thread that holds such a checkpoint is rewritten without it into a fresh epoch, as
        ``prune`` does: a kept checkpoint whose parent is gone still names it, and values it
        shared with a deleted checkpoint are copied into it.
        """
        wanted = {str(run_id) for run_id in run_ids}
        if not wanted:
            return
        self.flush()
        for thread_id in self.store.stored_threads():
            self._delete_checkpoints(thread_id, lambda md: md.get("run_id") in wanted)

    def _delete_checkpoints(self, thread_id: str, doomed: Callable[[Any], bool]) -> None:
        for _ in range(_RETRIES):
            with self.store.locked(thread_id) as thread:
                self._store_waiting_checkpoints(thread)
                found = [
                    (checkpoint_ns, (seq, index), entry, doomed(self._load(thread, entry["md"])))
                    for checkpoint_ns in ["", *self.store.namespaces(thread)]
                    for seq in range(1, self.store.head(thread, checkpoint_ns) + 1)
                    for index, entry in enumerate(
                        (self.store.record(thread, checkpoint_ns, seq) or {"cps": []})["cps"]
                    )
                ]
                if not any(gone for *_, gone in found):
                    return
                kept: Kept = {checkpoint_ns: [] for checkpoint_ns, *_ in found}
                moved: dict[str, dict[Address, Address]] = {ns: {} for ns in kept}
                for checkpoint_ns, address, entry, gone in found:
                    if gone:
                        continue
                    here = moved[checkpoint_ns]
                    whole = self._moved(thread, checkpoint_ns, address, entry, here)
                    writes = self._entries(thread, checkpoint_ns, address, entry["id"])
                    kept[checkpoint_ns].append((whole, writes))
                    here[address] = (len(kept[checkpoint_ns]), 0)  # each in a record of its own
                if self._rewrite(thread, kept):
                    return
        raise StorageError(f"could not delete checkpoints of thread {thread_id!r}")

    def _moved(
        self,
        thread: Thread,
        checkpoint_ns: str,
        address: Address,
        entry: dict[str, Any],
        moved: dict[Address, Address],
    ) -> dict[str, Any]:
        """A checkpoint entry for a rewritten thread, where ``moved`` says where the kept
        checkpoints before it went: references to others become values of its own, and its
        writes are stored on their own (none carried)."""
        whole = copy.deepcopy(entry)
        whole["refs"] = {}
        for ch, ref in entry["refs"].items():
            home = resolve(ref, address[0])
            if home in moved:
                whole["refs"][ch] = list(moved[home])
                continue
            found = self.store.entry(thread, checkpoint_ns, home)
            if found is not None and ch in found["vals"]:
                whole["vals"][ch] = found["vals"][ch]
        parent = resolve(entry["pn"], address[0]) if entry.get("pn") is not None else None
        whole["pn"] = list(moved[parent]) if parent in moved else None
        whole["cw"] = []
        return whole

    def _rewrite(self, thread: Thread, kept: Kept) -> bool:
        """Store the kept checkpoints (each in a record of its own, in order) and their writes
        in a fresh epoch, then switch the thread to it: a crash in between leaves the thread
        as it was. False if another writer switched the thread first (the fresh epoch is
        deleted again); the thread must then be read afresh."""
        assert thread.epoch is not None
        replacing, version = thread.epoch, thread.epoch_version
        epoch = self.store.new_epoch()
        thread.reset(epoch, version)
        try:
            for checkpoint_ns, entries in kept.items():
                for whole, writes in entries:
                    parts = _codec.fit([whole["cp"], whole["md"], *whole["vals"].values()])
                    self._append(thread, checkpoint_ns, [(whole, parts)])
                    self.store.store_writes(thread, checkpoint_ns, whole["id"], writes)
        except BaseException:
            thread.epoch = None  # read afresh next time
            with contextlib.suppress(Exception):
                self.store.delete_epoch(thread, epoch)  # nobody else knows it
            raise
        try:
            self.store.switch_epoch(thread, epoch, expected_version=version, replacing=replacing)
        except VersionConflict:  # not switched
            thread.epoch = None
            self.store.delete_epoch(thread, epoch)
            return False
        except BaseException:  # switched or not: the epoch record says
            thread.epoch = None
            raise
        return True

    # -- async twins: the same work in a worker thread ---------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def aprune(
        self,
        thread_ids: Sequence[str],
        *,
        strategy: str = "keep_latest",
    ) -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)
