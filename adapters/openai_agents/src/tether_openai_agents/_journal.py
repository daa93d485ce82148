"""The intent's steps journal as one segment of a run sees it.

Keys: ``model:<digest of the question>`` for a model turn, ``tool:<name>:<call id>`` for a tool
call. A model turn that calls journaled tools is written *with the first of those results*
(inside that tool step, under ``"turn"``), not on its own: one durable write per tool call
instead of two. Nothing is lost by the wait: a turn has no effect of its own, and until one of
its calls has finished, a run resumed after a crash may just as well ask the model again (the
calls that had not finished run again either way). Every other turn (a final answer, a
handoff, calls that only wait for a person) is written at once, or when the segment stops.
A turn's usage (the agent's spend) is reported by the same write that records the turn.
"""

from __future__ import annotations

from typing import Any

import tether
from tether import TurnUsage


class Journal:
    """The recorded steps (read once when the segment begins) and the turns not yet written."""

    def __init__(self, steps: list[tether.Step]) -> None:
        self.entries: dict[str, Any] = {}
        for step in steps:
            self.entries[step.key] = step.result
            turn = step.result.get("turn") if isinstance(step.result, dict) else None
            if isinstance(turn, dict):
                self.entries.setdefault(turn["key"], turn["response"])
        self.unwritten: dict[str, Any] = {}
        """Model turns held back to ride with a tool result, by key."""
        self._turn_of_call: dict[str, str] = {}
        self._usage: dict[str, TurnUsage] = {}

    def get(self, key: str) -> Any | None:
        """What is on record (or held back) under ``key``."""
        found = self.entries.get(key)
        return found if found is not None else self.unwritten.get(key)

    def hold_turn(
        self, key: str, response: Any, call_ids: list[str], usage: TurnUsage | None = None
    ) -> None:
        """Keep a model turn back until the first of its calls records its result."""
        self.unwritten[key] = response
        if usage is not None:
            self._usage[key] = usage
        for call_id in call_ids:
            self._turn_of_call[call_id] = key

    def take_turn_for(self, call_id: str) -> dict[str, Any] | None:
        """The held-back turn that made ``call_id``, to be written with its result (once)."""
        key = self._turn_of_call.pop(call_id, None)
        if key is None or key not in self.unwritten:
            return None
        return {"key": key, "response": self.unwritten.pop(key)}

    def take_usage(self, key: str) -> TurnUsage | None:
        """The held-back turn's usage, reported with the write that holds the turn (once)."""
        return self._usage.pop(key, None)

    def written(self, key: str, result: Any) -> None:
        self.entries[key] = result
        turn = result.get("turn") if isinstance(result, dict) else None
        if isinstance(turn, dict):
            self.entries[turn["key"]] = turn["response"]

    def take_unwritten(self) -> dict[str, Any]:
        """Every held-back turn (the segment stops: they are written on their own)."""
        held, self.unwritten = self.unwritten, {}
        self._turn_of_call.clear()
        return held
