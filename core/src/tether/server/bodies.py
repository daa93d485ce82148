"""Request and response bodies of the HTTP API (AXP's shapes where AXP defines them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..model import (
    ApiKey,
    ChainReport,
    Claim,
    ErrorInfo,
    Event,
    Intent,
    KeyRole,
    Lease,
    NewIntent,
    OnTimeout,
    StateEntry,
    StateRecord,
    Status,
    Step,
    TurnUsage,
    Wait,
)
from ..model.base import check_instant
from ..model.waits import MAX_SECONDS

MAX_SEQ = 2**62
"""Upper bound of sequence numbers and versions in requests (they are 64-bit in storage)."""

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateIntent(NewIntent):
    """AXP's create request: ``correlation_id`` is required and a UUID; AXP's reminder fields
    apply to the ``human_task``."""

    correlation_id: Annotated[str, Field(pattern=UUID_PATTERN)]
    remind_after_seconds: Annotated[float, Field(gt=0, le=MAX_SECONDS)] | None = None
    remind_interval_seconds: Annotated[float, Field(gt=0, le=MAX_SECONDS)] | None = None
    max_reminders: Annotated[int, Field(ge=0, le=100)] | None = None
    escalate_to: Annotated[str, Field(min_length=1, max_length=255)] | None = None

    def to_new_intent(self) -> NewIntent:
        reminders = {
            k: v
            for k in (
                "remind_after_seconds",
                "remind_interval_seconds",
                "max_reminders",
                "escalate_to",
            )
            if (v := getattr(self, k)) is not None
        }
        task = self.human_task
        if reminders and task is None:
            raise ValueError("reminder fields apply to a human_task")
        if task is not None and reminders:
            task = task.model_copy(update=reminders)
        fields = self.model_dump(exclude={*reminders, "remind_after_seconds", "remind_interval_seconds",
                                          "max_reminders", "escalate_to", "human_task"})  # fmt: skip
        return NewIntent(**fields, human_task=task)


class Created(Body):
    ok: bool = True
    intent_id: str
    status: Status
    created_at: str
    intent: Intent


class IntentOut(Body):
    ok: bool = True
    intent: Intent


class IntentList(Body):
    ok: bool = True
    intents: list[Intent]
    next_cursor: str | None = None


class EventList(Body):
    ok: bool = True
    events: list[Event]


class TaskResult(BaseModel):
    """AXP's human ``task_result``: an outcome, a comment, and the form's fields at top level."""

    model_config = ConfigDict(extra="allow")

    outcome: Annotated[str, Field(min_length=1, max_length=255)]
    comment: Annotated[str, Field(max_length=2000)] | None = None


class Resume(Body):
    """Continue a waiting intent: AXP's ``task_result`` for a person, or tether's fields."""

    task_result: TaskResult | None = None
    approve_current_step: bool | None = None
    reason: Annotated[str, Field(max_length=2000)] | None = None
    actor: str | None = None
    outcome: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    result: Any = None
    comment: Annotated[str, Field(max_length=2000)] | None = None
    wait_id: str | None = None


class Resolve(Body):
    status: Literal[Status.COMPLETED, Status.FAILED, Status.CANCELED]
    result: Any = None
    error: ErrorInfo | Annotated[str, Field(max_length=2000)] | None = None
    reason: Annotated[str, Field(max_length=2000)] | None = None
    actor: str | None = None


class CompletionDelivery(Body):
    """AXP's completion delivery: with ``reply_to``, the ended intent is a thread (same id) in
    that agent's inbox."""

    delivered: bool
    reason: str | None = None
    reply_to: str | None = None
    thread_id: str | None = None


class Resolved(Body):
    ok: bool = True
    intent: Intent
    event: Event | None = None
    completion_delivery: CompletionDelivery


class Start(Body):
    owner: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    lease_seconds: Annotated[float, Field(gt=0, le=86400)] = 60.0
    lease_token: str | None = None


class LeaseOut(Body):
    ok: bool = True
    lease: Lease


class WaitOut(Body):
    ok: bool = True
    wait: Wait


class WaitList(Body):
    ok: bool = True
    waits: list[Wait]


class Child(Body):
    child: NewIntent
    key: Annotated[str, Field(max_length=255)] | None = None
    deadline_at: datetime | None = None
    on_timeout: OnTimeout = OnTimeout()

    @field_validator("deadline_at")
    @classmethod
    def _instant(cls, value: datetime | None) -> datetime | None:
        check_instant(value, "deadline_at")
        return value


class ChildOut(Body):
    ok: bool = True
    intent: Intent
    wait: Wait


class Respond(Body):
    outcome: Annotated[str, Field(min_length=1, max_length=255)]
    comment: Annotated[str, Field(max_length=2000)] | None = None
    data: dict[str, Any] | None = None
    wait_id: str | None = None


class Callback(Body):
    result: Any = None
    error: Annotated[str, Field(max_length=2000)] | None = None


class Heartbeat(Body):
    extend_seconds: Annotated[float, Field(gt=0, le=MAX_SECONDS)] | None = None


class Task(Body):
    """AXP's ``/v1/me/tasks`` item, plus the whole intent."""

    intent_id: str
    intent_type: str
    status: Status
    from_agent: str | None = None
    assigned_at: str
    due_at: str | None = None
    human_task: dict[str, Any]
    intent: Intent


class TaskList(Body):
    ok: bool = True
    tasks: list[Task]


class Fired(Body):
    ok: bool = True
    fired: int


class RecordStep(Body):
    key: Annotated[str, Field(min_length=1, max_length=512)]
    result: Any = None
    usage: TurnUsage | None = None
    """The model turn this step holds: its usage is reported in the same transaction."""


class StepOut(Body):
    ok: bool = True
    step: Step | None


class StepList(Body):
    ok: bool = True
    steps: list[Step]


class PutState(Body):
    key: Annotated[str, Field(min_length=1, max_length=255)] = "default"
    data: Any = None
    expected_version: Annotated[int, Field(ge=0, le=MAX_SEQ)]


class StateOut(Body):
    ok: bool = True
    state: StateRecord | None


class StateKeys(Body):
    ok: bool = True
    keys: list[StateEntry]


class Deleted(Body):
    ok: bool = True
    deleted: int


class ClaimNext(Body):
    agent: str
    owner: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    lease_seconds: Annotated[float, Field(gt=0, le=86400)] = 30.0
    intent_types: list[str] | None = None
    start: bool = False
    """Also begin work on it (IN_PROGRESS) in the same transaction."""
    journal: bool = False
    """Also return its steps journal and its waits (``claim.steps``, ``claim.waits``)."""
    wait_seconds: Annotated[float, Field(ge=0, le=60)] = 0
    """With nothing to claim, a long poll: answer as soon as an intent of the agent becomes
    claimable, or with no claim after this many seconds."""


class ClaimOne(Body):
    owner: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    lease_seconds: Annotated[float, Field(gt=0, le=86400)] = 30.0


class ClaimOut(Body):
    ok: bool = True
    claim: Claim | None


class LeaseRenew(Body):
    token: str
    lease_seconds: Annotated[float, Field(gt=0, le=86400)] = 30.0


class LeaseRelease(Body):
    token: str


class Ok(Body):
    ok: bool = True


class Report(Body):
    ok: bool = True
    report: ChainReport


class CreateKey(Body):
    role: KeyRole
    agent: str | None = None
    subject: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    groups: list[Annotated[str, Field(min_length=1, max_length=255)]] = []
    workspace: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class KeyCreated(Body):
    ok: bool = True
    key: str
    key_id: str
    api_key: ApiKey


class KeyList(Body):
    ok: bool = True
    keys: list[ApiKey]


class Health(Body):
    ok: bool = True
    status: str = "ok"
    version: str
    schema_version: int


class Capabilities(Body):
    ok: bool = True
    capabilities: list[str]
    supported_intent_types: list[str]
