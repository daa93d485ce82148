"""Agents and their policy: the mesh (kill switch, pause, spend caps, tool scope, limits)."""

from __future__ import annotations

import fnmatch
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from .base import Model, Persisted


class AgentStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    KILLED = "killed"


class Health(StrEnum):
    """Derived from heartbeats: ``active`` if the last one is recent, ``stale`` if not,
    ``unknown`` if the agent never sent one."""

    ACTIVE = "active"
    STALE = "stale"
    UNKNOWN = "unknown"


class BreachAction(StrEnum):
    BLOCK = "block"
    REQUIRE_APPROVAL = "require_approval"


Usd = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=10**9)]
Pattern = Annotated[str, Field(min_length=1, max_length=255)]


class CostPolicy(Model):
    """Spend caps per UTC hour and day (AXP's cost policy).

    On breach, ``block`` refuses the agent's new intents with 429 and ``Retry-After`` until
    the window ends; ``require_approval`` opens a human task on the intent whose reported
    spend crossed the cap, and that intent goes on only if a person approves.
    """

    max_cost_per_hour_usd: Usd | None = None
    max_cost_per_day_usd: Usd | None = None
    action_on_breach: BreachAction = BreachAction.BLOCK
    approver_groups: list[Pattern] = Field(default_factory=list, max_length=50)


class LimitPolicy(Model):
    """How many intents the agent may be sent per UTC hour and day (429 beyond)."""

    max_intents_per_hour: Count | None = None
    max_intents_per_day: Count | None = None


class ToolPolicy(Model):
    """Which tools the agent may call: ``allow`` (None: every tool) minus ``deny``.

    Names match shell-style wildcards (``search_*``, ``payments.*``); deny wins.
    """

    allow: list[Pattern] | None = Field(default=None, max_length=500)
    deny: list[Pattern] = Field(default_factory=list, max_length=500)

    def allows(self, tool: str) -> bool:
        if any(fnmatch.fnmatchcase(tool, p) for p in self.deny):
            return False
        return self.allow is None or any(fnmatch.fnmatchcase(tool, p) for p in self.allow)


class SendMode(StrEnum):
    OPEN = "open"
    ALLOWLIST = "allowlist"
    DENYLIST = "denylist"


class SendPolicy(Model):
    """Who may send the agent intents (AXP's send policy). ``senders`` are agent addresses
    or patterns (``agent://ws/*``, ``*``); a sender that is not an agent is matched by its
    actor name (``human:alice``, ``admin:ops``)."""

    mode: SendMode = SendMode.OPEN
    senders: list[Pattern] = Field(default_factory=list, max_length=500)

    def allows(self, sender: str) -> bool:
        if self.mode is SendMode.OPEN:
            return True
        listed = any(fnmatch.fnmatchcase(sender, p) for p in self.senders)
        return listed if self.mode is SendMode.ALLOWLIST else not listed


class AgentPolicy(Model):
    """An agent's whole policy. Each change makes a new generation (see :class:`Agent`)."""

    cost: CostPolicy = Field(default_factory=CostPolicy)
    limits: LimitPolicy = Field(default_factory=LimitPolicy)
    tools: ToolPolicy = Field(default_factory=ToolPolicy)
    send: SendPolicy = Field(default_factory=SendPolicy)


class SpendWindow(Model):
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    turns: int = 0


class Spend(Model):
    """An agent's spend in the current UTC hour and day."""

    hour: SpendWindow = Field(default_factory=SpendWindow)
    day: SpendWindow = Field(default_factory=SpendWindow)


class Agent(Persisted):
    """An agent exists once it is used (sent an intent, or sends one) or registered.

    ``generation`` grows by one with every change of status or policy; a writer passes the
    generation it read and gets 409 ``stale_generation`` if someone changed it meanwhile.
    """

    address: str
    workspace: str = "default"
    status: AgentStatus = AgentStatus.ACTIVE
    status_reason: str | None = None
    health: Health = Health.UNKNOWN
    last_heartbeat_at: datetime | None = None
    generation: int = 0
    policy: AgentPolicy = Field(default_factory=AgentPolicy)
    spend: Spend = Field(default_factory=Spend)
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class MeshEvent(Model):
    """One entry of the mesh's audit: a status or policy change, a heartbeat's health change,
    or a denial (an intent refused, a tool refused)."""

    event_id: int
    agent: str
    event_type: str
    actor: str
    at: datetime
    details: dict[str, Any] = Field(default_factory=dict)


class Usage(Model):
    """One model turn's usage, reported by the agent and recorded on its intent."""

    intent_id: str
    agent: str
    model: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    at: datetime


class TurnUsage(Model):
    """One model turn's usage, to record with the step that holds the turn (one write)."""

    model: Annotated[str, Field(max_length=255)] | None = None
    tokens_in: Annotated[int, Field(ge=0, le=10**12)] = 0
    tokens_out: Annotated[int, Field(ge=0, le=10**12)] = 0
    cost_usd: Usd = 0.0


class UsageReport(Model):
    """What :meth:`Client.report_usage` returns: the intent's and the agent's totals."""

    intent: SpendWindow
    agent: Spend
    approval_wait_id: str | None = None
    """Set when this report crossed a ``require_approval`` cap: the intent now waits."""
