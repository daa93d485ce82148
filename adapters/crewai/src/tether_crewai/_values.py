"""Task outputs and run results as JSON, the form tether stores them in.

A stored task output carries a schema version; a reader accepts the versions it knows and
refuses newer ones (:class:`StoredStateError`), so a parked run survives an upgrade of the
agent's code and is never misread by an older worker.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from crewai import Task
from crewai.tasks.output_format import OutputFormat
from crewai.tasks.task_output import TaskOutput
from pydantic import BaseModel

from .errors import StoredStateError

OUTPUT_SCHEMA = 1


def to_json(value: Any) -> Any:
    """Any result as JSON: pydantic models and dataclasses as their fields, the rest as
    ``json`` renders it (``str()`` for what it cannot)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def dump_output(output: TaskOutput) -> dict[str, Any]:
    """A finished task's output, as the journal keeps it."""
    return {
        "schema": OUTPUT_SCHEMA,
        "name": output.name,
        "description": output.description,
        "expected_output": output.expected_output,
        "raw": output.raw,
        "json_dict": to_json(output.json_dict) if output.json_dict is not None else None,
        "pydantic": output.pydantic.model_dump(mode="json") if output.pydantic else None,
        "agent": output.agent,
        "output_format": output.output_format.value,
    }


def load_output(stored: dict[str, Any], task: Task) -> TaskOutput:
    """The journal's output of ``task`` as crewai's ``TaskOutput`` (a pydantic output is
    validated again with the task's current model)."""
    schema = stored.get("schema", 0)
    if not isinstance(schema, int) or schema > OUTPUT_SCHEMA:
        raise StoredStateError(
            f"a task output of schema {schema!r} was stored by a newer release of "
            f"tether-crewai (this one reads up to {OUTPUT_SCHEMA})"
        )
    pydantic = None
    if stored.get("pydantic") is not None and task.output_pydantic is not None:
        pydantic = task.output_pydantic.model_validate(stored["pydantic"])
    return TaskOutput(
        name=stored.get("name"),
        description=stored.get("description") or task.description,
        expected_output=stored.get("expected_output"),
        raw=stored.get("raw") or "",
        json_dict=stored.get("json_dict"),
        pydantic=pydantic,
        agent=stored.get("agent") or "",
        output_format=OutputFormat(stored.get("output_format") or OutputFormat.RAW.value),
    )


def note_output(task: Task, agent: str, text: str) -> TaskOutput:
    """The output of a task that did not run (a person said to skip it): a note that the
    tasks after it see as their context."""
    return TaskOutput(
        name=task.name,
        description=task.description,
        expected_output=task.expected_output,
        raw=text,
        agent=agent,
        output_format=OutputFormat.RAW,
    )
