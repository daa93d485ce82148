"""What agents keep on an intent while they work: journal steps, opaque state, leases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .base import Model, Persisted
from .intents import Intent
from .waits import Wait


class Step(Persisted):
    """A journal entry: the recorded result of one tool call or model turn.

    A finished step is returned on resume and never executed again.
    """

    intent_id: str
    key: str
    result: Any = None
    recorded_at: datetime


class StateRecord(Persisted):
    """Versioned opaque state (a framework checkpoint); written with compare-and-set."""

    intent_id: str
    key: str
    version: int
    data: Any = None
    updated_at: datetime


class StateEntry(Model):
    """One key of an intent's state, as listed: its version and when it was last written,
    without its data."""

    key: str
    version: int
    updated_at: datetime


class Lease(Model):
    """A worker's exclusive, expiring right to continue an intent."""

    intent_id: str
    owner: str
    token: str
    expires_at: datetime


class Claim(Model):
    """What a worker gets when it claims an intent: the intent, its lease, and why."""

    intent: Intent
    lease: Lease
    resumed: bool
    """True when the intent comes back after a wait (``last_wait`` says how it ended)."""
    last_wait: Wait | None = None
    steps: list[Step] | None = None
    """Claimed with ``journal=True``: the intent's steps journal as the claim found it."""
    waits: list[Wait] | None = None
    """Claimed with ``journal=True``: the intent's waits (open and ended), oldest first."""


class FeedItem(Model):
    """An entry of an agent's work feed (AXP's agent stream item): an intent addressed to
    the agent changed status. ``seq`` is the agent's feed position; pass it back as ``since``."""

    intent_id: str
    seq: int
    intent_seq: int
    event_type: str
    status: str
    waiting_reason: str | None = None
    intent_type: str
    at: datetime
