"""The run state kept in tether: one versioned record per intent, written with compare-and-set.

The record is an envelope around the SDK's ``RunState.to_json()``::

    {"format": 1, "sdk": "0.24.0", "run_state": {... "$schemaVersion": "1.21" ...},
     "session_length": 4}

``run_state`` is ``None`` before the first suspension. The SDK reads its own older schema
versions, so a state parked by an older release resumes after an upgrade; the envelope's
``format`` is this adapter's, and readers accept it and older.

Approval decisions are never taken from the record: they are removed when it is written and
again when it is read (an edited record could carry some), and the runner applies the answers
held in tether's waits instead. The user's run context is not stored either; it is rebuilt for
each run from the intent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import tether
from agents import Agent, RunContextWrapper, RunState
from agents.version import __version__ as sdk_version

from .errors import StoredStateError

STATE_KEY = "openai-agents/run"
FORMAT = 1

# Where RunState JSON carries approval decisions (every schema version so far).
_APPROVAL_FIELDS: dict[str, Any] = {
    "approvals": {},
    "function_tool_approvals": [],
    "hosted_mcp_approvals": [],
}


@dataclass(frozen=True)
class Checkpoint:
    """What the record held when read (version 0: no record yet)."""

    version: int = 0
    run_state: dict[str, Any] | None = None
    session_length: int | None = None


def read(client: tether.Client, intent_id: str) -> Checkpoint:
    record = client.get_state(intent_id, STATE_KEY)
    if record is None:
        return Checkpoint()
    data = record.data
    if not isinstance(data, dict) or not isinstance(data.get("format"), int):
        raise StoredStateError(f"the run state of intent {intent_id} is not this adapter's")
    if data["format"] > FORMAT:
        raise StoredStateError(
            f"the run state of intent {intent_id} was written by a newer release "
            f"(format {data['format']}, this one reads up to {FORMAT}); upgrade this worker"
        )
    return Checkpoint(record.version, data.get("run_state"), data.get("session_length"))


def write(
    client: tether.Client,
    intent_id: str,
    after: Checkpoint,
    run_state: dict[str, Any] | None,
    session_length: int | None,
    lease: tether.Lease,
) -> Checkpoint:
    """Store a new checkpoint over ``after`` (a ``tether.VersionConflict`` if it moved)."""
    data = {
        "format": FORMAT,
        "sdk": sdk_version,
        "run_state": run_state,
        "session_length": session_length,
    }
    record = client.put_state(
        intent_id, data, expected_version=after.version, key=STATE_KEY, lease=lease
    )
    return Checkpoint(record.version, run_state, session_length)


def without_decisions(state_json: dict[str, Any]) -> dict[str, Any]:
    """The SDK's state JSON with every approval decision and the user's context removed."""
    cleaned = copy.deepcopy(state_json)
    context = cleaned.get("context")
    if isinstance(context, dict):
        for name, empty in _APPROVAL_FIELDS.items():
            if name in context:
                context[name] = copy.deepcopy(empty)
        if context.get("context") is not None:
            context["context"] = {}
    return cleaned


def dump(state: RunState[Any, Any]) -> dict[str, Any]:
    """A suspended run's state, ready to store."""
    return without_decisions(state.to_json(context_serializer=lambda _: {}))


async def load(agent: Agent[Any], state_json: dict[str, Any], context: Any) -> RunState[Any, Any]:
    """A stored run state, with no approval decisions in it, on the given run context."""
    return await RunState.from_json(
        agent, without_decisions(state_json), context_override=RunContextWrapper(context=context)
    )
