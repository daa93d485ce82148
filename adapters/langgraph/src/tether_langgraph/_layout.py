"""Where the checkpointer keeps things: state keys on tether's storage intents.

tether stores opaque, versioned state on an intent under a key, written with compare-and-set,
and offers no way to list keys. So every key here is computed, never discovered:

- a thread's checkpoints in one namespace are numbered 1, 2, 3, ... in the order they were
  put; each is written once (``expected_version=0``) at the next free number, so "the latest"
  is found by probing upward and the history by walking down;
- a thread's *epoch* (a fresh id each time) is switched to delete or prune it: readers
  only look at keys of the current epoch, so older records become unreachable at once
  (they stay stored: tether has no way to delete state yet);
- pending writes of a checkpoint live in one record per checkpoint, merged under
  compare-and-set;
- values too large for one request are split into content-addressed parts.

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


def epoch_key(thread_id: str) -> str:
    return f"{SCHEMA}/{part(thread_id)}/epoch"


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
