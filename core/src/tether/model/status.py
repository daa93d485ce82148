"""AXP's status names and waiting reasons."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where an intent is in its lifecycle (AXP ``intent.lifecycle.v1``)."""

    CREATED = "CREATED"
    SUBMITTED = "SUBMITTED"
    DELIVERED = "DELIVERED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    IN_PROGRESS = "IN_PROGRESS"
    WAITING = "WAITING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL: frozenset[Status] = frozenset(
    {Status.COMPLETED, Status.FAILED, Status.CANCELED, Status.TIMED_OUT}
)


class WaitingReason(StrEnum):
    """What a WAITING intent waits for; present exactly when the status is WAITING."""

    WAITING_FOR_HUMAN = "WAITING_FOR_HUMAN"
    WAITING_FOR_TOOL = "WAITING_FOR_TOOL"
    WAITING_FOR_AGENT = "WAITING_FOR_AGENT"
    WAITING_FOR_TIME = "WAITING_FOR_TIME"
