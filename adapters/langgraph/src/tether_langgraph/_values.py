"""Graph inputs and outputs as JSON for an intent's payload and result.

An intent's payload and result are JSON. A graph's input and final state may hold LangChain
messages, pydantic models or dataclasses: an input that JSON cannot hold travels in
LangGraph's own serialization (``input_typed``); a result is turned into plain JSON by
:func:`to_json`, which is meant for people and other agents to read, not to resume from (the
checkpoint is what a run resumes from).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel

_serde = JsonPlusSerializer()


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def pack_input(value: Any) -> dict[str, Any]:
    """The payload fields that carry a graph input."""
    if _is_json(value):
        return {"input": value}
    kind, data = _serde.dumps_typed(value)
    return {"input_typed": [kind, base64.b64encode(data).decode("ascii")]}


def unpack_input(payload: dict[str, Any]) -> Any:
    if "input_typed" in payload:
        kind, text = payload["input_typed"]
        return _serde.loads_typed((kind, base64.b64decode(text)))
    return payload.get("input")


def to_json(value: Any) -> Any:
    """A JSON rendering of a graph's output: models and dataclasses as their fields,
    messages as their dicts, anything else unknown as its ``repr``."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, BaseModel):
        return to_json(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    return repr(value)
