"""Waits: what an intent waits for, and how each wait ended."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import Field, field_validator, model_validator

from .base import Model, Persisted, check_instant
from .status import WaitingReason

MAX_SECONDS = 366 * 86400
"""The longest duration tether accepts for a timeout or an extension, in seconds."""

TIMEOUT = "timeout"
"""The outcome of a wait whose deadline passed. Never the same as a rejection."""


class WaitKind(StrEnum):
    HUMAN = "human"
    TOOL = "tool"
    AGENT = "agent"
    TIME = "time"

    @property
    def reason(self) -> WaitingReason:
        return _REASONS[self]


_REASONS = {
    WaitKind.HUMAN: WaitingReason.WAITING_FOR_HUMAN,
    WaitKind.TOOL: WaitingReason.WAITING_FOR_TOOL,
    WaitKind.AGENT: WaitingReason.WAITING_FOR_AGENT,
    WaitKind.TIME: WaitingReason.WAITING_FOR_TIME,
}


class WaitStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"


class TaskType(StrEnum):
    """AXP's human task types."""

    APPROVAL = "approval"
    REVIEW = "review"
    CLARIFICATION = "clarification"
    PROVIDE_DATA = "provide_data"
    ATTACH_FILE = "attach_file"
    MANUAL_ACTION = "manual_action"
    CONFIRMATION = "confirmation"
    VALIDATE_REAL_WORLD = "validate_real_world"
    VALIDATE_OUTPUT = "validate_output"
    ASSIGNMENT = "assignment"
    DELEGATION = "delegation"
    REROUTE = "reroute"
    OVERRIDE = "override"
    ESCALATE = "escalate"


class HumanTask(Model):
    """What a person is asked to do (AXP ``HumanTaskSpec``, plus groups).

    Example::

        HumanTask(
            title="Refund 120 EUR to order 42?",
            allowed_outcomes=["approved", "rejected"],
            required_comment=True,
            assignees=["alice@example.com"],
            form_schema={"type": "object", "properties": {"amount": {"type": "number"}}},
        )
    """

    title: Annotated[str, Field(min_length=1, max_length=255)]
    description: Annotated[str, Field(max_length=2000)] | None = None
    task_type: TaskType = TaskType.APPROVAL
    allowed_outcomes: Annotated[list[str], Field(min_length=1, max_length=20)] = [
        "approved",
        "rejected",
    ]
    required_comment: bool = False
    evidence_required: bool = False
    assignees: Annotated[list[str], Field(max_length=20)] = []
    groups: Annotated[list[str], Field(max_length=20)] = []
    form_schema: dict[str, Any] | None = None
    remind_after_seconds: (
        Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)] | None
    ) = None
    """Remind the assignees this long after the task opens (an ``intent.reminder`` event)..."""
    remind_interval_seconds: (
        Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)] | None
    ) = None
    """...and again at this interval (default: ``remind_after_seconds``)..."""
    max_reminders: Annotated[int, Field(ge=0, le=100)] = 3
    """...at most this many times; then, with ``escalate_to``, the task is handed to that
    person or group (``group:name``) and an ``intent.escalated`` event is recorded."""
    escalate_to: Annotated[str, Field(min_length=1, max_length=255)] | None = None

    @field_validator("allowed_outcomes")
    @classmethod
    def _outcomes(cls, value: list[str]) -> list[str]:
        if TIMEOUT in value:
            raise ValueError(f"'{TIMEOUT}' is reserved for waits whose deadline passed")
        if len(set(value)) != len(value) or any(not v for v in value):
            raise ValueError("allowed outcomes must be distinct, non-empty strings")
        return value

    @field_validator("form_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                Draft202012Validator.check_schema(value)
            except SchemaError as exc:
                raise ValueError(f"form_schema is not a valid JSON Schema: {exc.message}") from exc
        return value


class OnTimeout(Model):
    """What follows when a wait's deadline passes.

    ``resume`` hands the intent back to its agent with the outcome ``timeout``;
    ``fail`` ends the intent as FAILED; ``default`` resumes with ``default_outcome``
    (the wait still records that it timed out).
    """

    action: Literal["resume", "fail", "default"] = "resume"
    default_outcome: str | None = None

    @model_validator(mode="after")
    def _check(self) -> OnTimeout:
        if (self.action == "default") != (self.default_outcome is not None):
            raise ValueError("default_outcome is required with action 'default', and only then")
        return self


class WaitSpec(Model):
    """What to wait for. Exactly one of the kind-specific fields is set (see the kinds)."""

    kind: WaitKind
    key: Annotated[str | None, Field(max_length=255)] = None
    deadline_at: datetime | None = None
    on_timeout: OnTimeout = OnTimeout()
    human_task: HumanTask | None = None
    tool_name: Annotated[str, Field(max_length=255)] | None = None
    heartbeat_timeout_seconds: (
        Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)] | None
    ) = None
    child_intent_id: str | None = None
    fire_at: datetime | None = None

    @model_validator(mode="after")
    def _check(self) -> WaitSpec:
        required = {
            WaitKind.HUMAN: "human_task",
            WaitKind.TOOL: "tool_name",
            WaitKind.AGENT: "child_intent_id",
            WaitKind.TIME: "fire_at",
        }
        for kind, name in required.items():
            present = getattr(self, name) is not None
            if kind is self.kind and not present:
                raise ValueError(f"a {kind.value} wait needs {name}")
            if kind is not self.kind and present:
                raise ValueError(
                    f"{name} belongs to a {kind.value} wait, not a {self.kind.value} one"
                )
        if self.heartbeat_timeout_seconds is not None and self.kind is not WaitKind.TOOL:
            raise ValueError("heartbeat_timeout_seconds belongs to a tool wait")
        for name in ("deadline_at", "fire_at"):
            check_instant(getattr(self, name), name)
        default = self.on_timeout.default_outcome
        task = self.human_task
        if default is not None and task is not None and default not in task.allowed_outcomes:
            raise ValueError("default_outcome must be one of the task's allowed outcomes")
        return self


class Wait(Persisted):
    """A wait on an intent, opened once and resolved at most once."""

    wait_id: str
    intent_id: str
    key: str
    kind: WaitKind
    status: WaitStatus
    opened_at: datetime
    deadline_at: datetime | None = None
    on_timeout: OnTimeout = OnTimeout()
    human_task: HumanTask | None = None
    tool_name: str | None = None
    heartbeat_timeout_seconds: float | None = None
    child_intent_id: str | None = None
    fire_at: datetime | None = None
    callback_token: str | None = Field(
        default=None, description="For tool waits: the secret the tool posts its result with."
    )
    resolved_at: datetime | None = None
    outcome: str | None = None
    result: Any = None
    comment: str | None = None
    resolved_by: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status is WaitStatus.OPEN

    @property
    def timed_out(self) -> bool:
        return self.status is WaitStatus.TIMED_OUT
