"""The intent state machine: which status may follow which (DESIGN §3, AXP's table)."""

from __future__ import annotations

from ..errors import IllegalTransition, IntentTerminal
from ..model import TERMINAL, Status

S = Status
_ENDINGS = {S.FAILED, S.CANCELED, S.TIMED_OUT}

TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.CREATED: frozenset({S.SUBMITTED, S.COMPLETED} | _ENDINGS),
    S.SUBMITTED: frozenset({S.DELIVERED, S.IN_PROGRESS, S.WAITING, S.COMPLETED} | _ENDINGS),
    S.DELIVERED: frozenset({S.ACKNOWLEDGED, S.IN_PROGRESS, S.WAITING, S.COMPLETED} | _ENDINGS),
    S.ACKNOWLEDGED: frozenset({S.IN_PROGRESS, S.WAITING, S.COMPLETED} | _ENDINGS),
    S.IN_PROGRESS: frozenset({S.WAITING, S.COMPLETED} | _ENDINGS),
    # A waiting intent resumes first; it may not complete while a wait is open.
    S.WAITING: frozenset({S.IN_PROGRESS} | _ENDINGS),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELED: frozenset(),
    S.TIMED_OUT: frozenset(),
}
"""Legal transitions. Terminal statuses have none: a terminal intent never changes again."""


def check_transition(current: Status, target: Status, intent_id: str = "") -> None:
    """Raise a conflict error unless ``current -> target`` is legal."""
    if current in TERMINAL:
        raise IntentTerminal(
            f"intent {intent_id} is {current.value}; a terminal intent never changes",
            details={"intent_id": intent_id, "status": current.value, "requested": target.value},
        )
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(
            f"intent {intent_id} cannot go from {current.value} to {target.value}",
            details={"intent_id": intent_id, "status": current.value, "requested": target.value},
        )
