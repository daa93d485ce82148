"""Agents: addresses that intents are sent to and that do the work."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from .base import Persisted


class AgentStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    KILLED = "killed"


class Agent(Persisted):
    """An agent exists once it is used (sent an intent, or sends one) or registered."""

    address: str
    workspace: str = "default"
    status: AgentStatus = AgentStatus.ACTIVE
    created_at: datetime
    updated_at: datetime
