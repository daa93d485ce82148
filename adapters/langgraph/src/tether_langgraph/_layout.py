"""Where the checkpointer keeps things: state keys on tether's storage intents.

tether stores opaque, versioned state on an intent under a key, written with compare-and-set;
keys can be listed and deleted by prefix. Reads never list: every key a read needs is
computed.

- a thread's keys all start with ``lg1/<thread>/`` (the thread id itself when it is short and
  plain, a hash of it otherwise, with an ``id`` record naming the thread so that listing
  finds it);
- a thread's checkpoints in one namespace are numbered 1, 2, 3, ... in the order they were
  put; each is written once (``expected_version=0``) at the next free number, so "the latest"
  is found by probing upward and the history by walking down;
- a thread's *epoch* (a fresh id each time, never reused) is switched to delete or prune it:
  readers only look at keys of the current epoch (``lg1/<thread>/<epoch>/``), so older
  records become unreachable at once; the replaced epoch's keys are then deleted by prefix
  (its id stays in the epoch record, so that a deletion cut short can be done again);
- pending writes of a checkpoint live in one record per checkpoint, merged under
  compare-and-set;
- values too large for one request are split into content-addressed parts
  (``lg1/b/<digest>/<n>``), shared by every thread of the storage intent and never deleted
  (nothing tells whether another thread's record still refers to one).

Threads are spread over a fixed number of storage intents (shards) so that no single intent
row takes every write of every graph (PostgreSQL locks the intent row on each write).
"""

from __future__ import annotations

import hashlib
import re

SCHEMA = "lg1"
"""Prefix of every key this layout writes; a new layout would use a new prefix."""

INTENT_TYPE = "langgraph.checkpoints.v1"
"""The intent type of the storage intents."""

_SAFE = re.compile(r"^[A-Za-z0-9._:|@+-]{1,80}$")


def _digest(text: str, size: int = 32) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def part(text: str) -> str:
    """A key segment for arbitrary text: readable when short and plain, hashed otherwise
    (``=`` and ``#`` keep the two forms from ever colliding)."""
    return f"={text}" if _SAFE.match(text) else f"#{_digest(text)}"


def ns_part(checkpoint_ns: str) -> str:
    return "-" if checkpoint_ns == "" else part(checkpoint_ns)


def shard_of(thread_id: str, shards: int) -> int:
    """The storage intent a thread lives on: stable across processes and releases."""
    return int(_digest(thread_id, 8), 16) % shards


def thread_prefix(thread_id: str) -> str:
    """What every key of the thread starts with (blobs aside)."""
    return f"{SCHEMA}/{part(thread_id)}/"


def id_key(segment: str) -> str:
    """The record naming the thread of a ``#hash`` segment (see :func:`thread_segment`)."""
    return f"{SCHEMA}/{segment}/id"


def thread_segment(key: str) -> str:
    """The second segment of a key: ``=id`` or ``#hash`` of a thread, or ``b`` (blobs)."""
    return key[len(SCHEMA) + 1 :].split("/", 1)[0]


def readable_id(segment: str) -> str | None:
    """The thread id a key segment spells out (None: a hash, or not a thread's)."""
    return segment[1:] if segment.startswith("=") else None


def past(segment: str) -> str:
    """A key after every key under ``lg1/<segment>/`` (whose keys are ASCII) and before the
    next segment's: listing after it skips the segment."""
    return f"{SCHEMA}/{segment}/\U0010ffff"


def epoch_key(thread_id: str) -> str:
    return f"{SCHEMA}/{part(thread_id)}/epoch"


def epoch_prefix(thread_id: str, epoch: str) -> str:
    """What every key of one epoch of the thread starts with."""
    return f"{SCHEMA}/{part(thread_id)}/{epoch}/"


def namespaces_key(thread_id: str, epoch: str) -> str:
    """The thread's namespaces other than the root one (subgraphs), in first-use order."""
    return f"{SCHEMA}/{part(thread_id)}/{epoch}/ns"


def checkpoint_key(thread_id: str, epoch: str, checkpoint_ns: str, seq: int) -> str:
    return f"{SCHEMA}/{part(thread_id)}/{epoch}/c/{ns_part(checkpoint_ns)}/{seq}"


def writes_key(thread_id: str, epoch: str, checkpoint_ns: str, checkpoint_id: str) -> str:
    return f"{SCHEMA}/{part(thread_id)}/{epoch}/w/{ns_part(checkpoint_ns)}/{part(checkpoint_id)}"


def blob_key(digest: str, index: int) -> str:
    """One part of a large value, addressed by the value's content (so rewriting it after a
    retry or a copy is harmless)."""
    return f"{SCHEMA}/b/{digest}/{index}"


def blob_digest(text: str) -> str:
    return _digest(text, 40)
