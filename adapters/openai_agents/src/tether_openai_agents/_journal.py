"""The intent's steps journal as one segment of a run sees it.

Keys: ``model:<digest of the question>`` for a model turn, ``tool:<name>:<call id>`` for a tool
call. Every model turn is written as soon as the model answers, before any call it makes runs,
with its usage (the agent's spend) in the same write. So a run taken over after a crash gets
the same calls with the same call ids: a tool body killed midway runs again under the same step
key (the idempotency key its external call carries), never as a new call.

A tool's result is not written on its own: it rides with the next write of the segment (the
next model turn, or the segment's end, also when the run stops), so a tool call costs about
one commit. Its call id is on record already, so a crash before that write only runs the body
again under the same key. Such a turn is stored as
``{"tether_turn": 2, "response": ..., "results": {key: result}}``; results written at a
segment's end as a step ``results:<first key>``.

Releases before this one wrote a turn that called tools inside the first of their results
(under ``"turn"``); such journals are still read.
"""

from __future__ import annotations

from typing import Any

import tether

RESULTS = "results:"
"""Key prefix of the step that writes the tool results still held when a segment ends."""


class Journal:
    """The recorded steps, read once when the segment begins, and those it records."""

    def __init__(self, steps: list[tether.Step]) -> None:
        self.entries: dict[str, Any] = {}
        for step in steps:
            self.written(step.key, step.result)

    def get(self, key: str) -> Any | None:
        """What is on record under ``key``."""
        return self.entries.get(key)

    def written(self, key: str, result: Any) -> None:
        if key.startswith(RESULTS) and isinstance(result, dict):  # held results, flushed
            for held_key, held in result.items():
                self.entries.setdefault(held_key, held)
            return
        if isinstance(result, dict) and result.get("tether_turn") == 2:
            self.entries[key] = result["response"]
            for held_key, held in result["results"].items():
                self.entries.setdefault(held_key, held)
            return
        self.entries[key] = result
        turn = result.get("turn") if isinstance(result, dict) else None
        if isinstance(turn, dict):  # a turn an older release wrote with a tool's result
            self.entries.setdefault(turn["key"], turn["response"])
