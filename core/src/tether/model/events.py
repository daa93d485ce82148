"""Events: the per-intent, hash-chained audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .base import Persisted
from .status import Status, WaitingReason


class Event(Persisted):
    """One change of an intent. ``seq`` starts at 1 and has no gaps.

    ``hash`` is ``sha256(previous hash + canonical JSON of the event)``; see
    :func:`tether.engine.audit.event_hash`.
    """

    intent_id: str
    seq: int
    event_type: str
    status: Status
    waiting_reason: WaitingReason | None = None
    actor: str
    at: datetime
    details: dict[str, Any] = {}
    hash: str

    @property
    def terminal(self) -> bool:
        return self.status.terminal


class ChainReport(Persisted):
    """The result of verifying audit chains."""

    intents_checked: int
    events_checked: int
    ok: bool
    problems: list[str] = []
