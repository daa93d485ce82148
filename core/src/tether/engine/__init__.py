"""The engine: the state machine, waits and timers, idempotency, the audit chain, leases."""

from .engine import Engine
from .lifecycle import TRANSITIONS, check_transition

__all__ = ["TRANSITIONS", "Engine", "check_transition"]
