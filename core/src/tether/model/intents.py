"""Intents: a unit of agent work with a lifecycle, addressed to an agent."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from .base import AgentAddress, IntentType, Model, Persisted, check_instant
from .status import Status, WaitingReason
from .waits import HumanTask, Wait


class ErrorInfo(Model):
    """Why an intent failed (AXP ``intent.error.v1``, simplified)."""

    code: Annotated[str, Field(pattern=r"^[a-z0-9_:.\-]{3,128}$")] = "failed"
    message: str = ""
    retryable: bool = False
    details: dict[str, Any] = {}


class NewIntent(Model):
    """What an agent submits.

    Example::

        NewIntent(
            intent_type="refund.request.v1",
            to_agent="agent://demo/refunds",
            payload={"order": 42, "amount": 120},
        )
    """

    intent_type: IntentType
    to_agent: AgentAddress
    payload: dict[str, Any] = {}
    correlation_id: str | None = None
    from_agent: AgentAddress | None = None
    reply_to: AgentAddress | None = None
    deadline_at: datetime | None = None
    human_task: HumanTask | None = None
    parent_intent_id: str | None = None
    metadata: dict[str, str] = {}

    @field_validator("deadline_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        check_instant(value, "deadline_at")
        return value


class PendingWith(Model):
    """Who the intent waits on (AXP read model)."""

    type: Literal["agent", "human", "internal"]
    ref: str | None = None
    name: str | None = None


class LeaseInfo(Model):
    owner: str
    expires_at: datetime


class Intent(Persisted):
    """The read model of an intent (AXP ``{ok, intent}``), plus tether's fields."""

    intent_id: str
    workspace: str = "default"
    intent_type: str
    correlation_id: str
    from_agent: str | None = None
    to_agent: str
    reply_to: str | None = None
    parent_intent_id: str | None = None
    payload: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    status: Status
    waiting_reason: WaitingReason | None = None
    seq: int
    created_at: datetime
    updated_at: datetime
    deadline_at: datetime | None = None
    result: Any = None
    error: ErrorInfo | None = None
    wait: Wait | None = Field(default=None, description="The open wait, if the intent is WAITING.")
    lease: LeaseInfo | None = None

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Intent:
        """Parse an intent as the server sends it (computed and unknown fields dropped)."""
        return cls.model_validate({k: v for k, v in data.items() if k in cls.model_fields})

    @computed_field  # type: ignore[prop-decorator]
    @property
    def human_task(self) -> HumanTask | None:
        """The open wait's human task (AXP read model)."""
        return self.wait.human_task if self.wait is not None else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def pending_with(self) -> PendingWith | None:
        """Who the intent waits on (AXP read model)."""
        if self.wait is None:
            return None
        if self.wait.human_task is not None:
            names = self.wait.human_task.assignees + self.wait.human_task.groups
            return PendingWith(
                type="human", ref=", ".join(names) or None, name=self.wait.human_task.title
            )
        if self.wait.child_intent_id is not None:
            return PendingWith(type="agent", ref=self.wait.child_intent_id)
        return PendingWith(type="internal", ref=self.wait.kind.value)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back to get the next one."""

    model_config = ConfigDict(frozen=True)

    items: list[T]
    next_cursor: str | None = None
