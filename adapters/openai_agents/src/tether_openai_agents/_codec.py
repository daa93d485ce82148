"""JSON forms of what the journal keeps (model responses, tool outputs) and the digests that
key it. Everything here is a pure function, so a resumed process derives the same keys."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from agents import ModelResponse, ToolOutputFileContent, ToolOutputImage, ToolOutputText
from agents.usage import deserialize_usage, serialize_usage
from openai.types.responses import ResponseOutputItem
from pydantic import BaseModel, TypeAdapter, ValidationError

JOURNAL_FORMAT = 1
"""Version of the journal entries this release writes; readers accept it and older."""


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback: pydantic models as their JSON form, sets as lists, else text."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def canonical(value: Any) -> str:
    """One text per JSON value: sorted keys, no spaces, models dumped."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=json_default
    )


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def parse_arguments(arguments: str) -> Any:
    """A tool call's arguments as the model sent them (JSON text), parsed when they parse."""
    try:
        return json.loads(arguments) if arguments else {}
    except ValueError:
        return arguments


def arguments_digest(arguments: str) -> str:
    """Short digest of a call's arguments, independent of key order and spacing."""
    return digest(parse_arguments(arguments))[:16]


def model_call_key(
    system_instructions: str | None,
    input: str | Sequence[Any],
    tools: Sequence[Any],
    output_schema: Any,
    handoffs: Sequence[Any],
    previous_response_id: str | None,
    conversation_id: str | None,
) -> str:
    """The journal key of a model turn: a digest of everything the model is asked.

    A run resumed from the same stored state asks the same question, so it finds the recorded
    answer; a new question (new input, a tool result) has a new key.
    """
    asked = {
        "instructions": system_instructions,
        "input": input,
        "tools": [getattr(t, "name", type(t).__name__) for t in tools],
        "output": output_schema.name() if output_schema is not None else None,
        "handoffs": [getattr(h, "tool_name", "") for h in handoffs],
        "previous_response_id": previous_response_id,
        "conversation_id": conversation_id,
    }
    return f"model:{digest(asked)[:32]}"


@functools.cache
def _output_items() -> TypeAdapter[Any]:
    return TypeAdapter(ResponseOutputItem)


def encode_response(response: ModelResponse) -> dict[str, Any]:
    return {
        "format": JOURNAL_FORMAT,
        "output": [
            json_default(item) if not isinstance(item, dict) else item for item in response.output
        ],
        "usage": serialize_usage(response.usage),
        "response_id": response.response_id,
        "request_id": response.request_id,
    }


def _output_item(data: Any) -> Any:
    try:
        return _output_items().validate_python(data)
    except ValidationError:
        return data  # an item type this openai release does not know: the SDK takes dicts too


def decode_response(data: dict[str, Any]) -> ModelResponse:
    return ModelResponse(
        output=[_output_item(item) for item in data["output"]],
        usage=deserialize_usage(data.get("usage") or {}),
        response_id=data.get("response_id"),
        request_id=data.get("request_id"),
    )


def _structured(value: Any) -> bool:
    """Whether the SDK sends ``value`` to the model as structured output (its ``ToolOutput*``
    types, their dict forms with a ``type``, or a list of them) rather than as ``str(value)``."""
    if isinstance(value, ToolOutputText | ToolOutputImage | ToolOutputFileContent):
        return True
    if isinstance(value, dict):
        return "type" in value
    if isinstance(value, list | tuple):
        return bool(value) and all(_structured(item) for item in value)
    return False


def _json_form(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_json_form(item) for item in value]
    return value


def encode_output(value: Any, *, schema: bool = False) -> dict[str, Any]:
    """A tool's output as it is journaled, so that a replay gives the model the same input
    (the next turn's journal key is a digest of it): text as text; the SDK's structured
    outputs, or any output of a tool with an output schema (``schema``), in their JSON form
    (which the SDK renders as it renders the value); any other value as JSON only if it
    renders as the value did (``str``), else as the text the model was shown (a tuple or a
    pydantic model would come back as a list or a dict and read differently)."""
    if isinstance(value, str):
        return {"json": value}
    if schema or _structured(value):
        return {"json": _json_form(value)}
    try:
        back = json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return {"text": str(value)}
    return {"json": back} if str(back) == str(value) else {"text": str(value)}


def decode_output(data: dict[str, Any]) -> Any:
    return data["json"] if "json" in data else data.get("text")


def render_result(value: Any) -> str:
    """A posted result as the model sees it: text stays text, anything else is JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _short(text: str, limit: int) -> str:
    # Keys have a length limit; a long id is replaced by its digest, never cut (a cut could
    # make two ids one key).
    return text if len(text) <= limit else "sha256-" + digest(text)[:40]


def approval_key(call_id: str, arguments: str) -> str:
    """The key of the human wait for one call: its id and its arguments, so an answer given
    for some arguments never approves other ones under the same call id."""
    return f"approval:{_short(call_id, 200)}:{arguments_digest(arguments)}"


def external_key(call_id: str, arguments: str) -> str:
    """The key of the tool wait for one long external call."""
    return f"external:{_short(call_id, 200)}:{arguments_digest(arguments)}"


def tool_step_key(tool_name: str, call_id: str) -> str:
    """The journal key of a tool call's result."""
    return f"tool:{_short(tool_name, 200)}:{_short(call_id, 200)}"
