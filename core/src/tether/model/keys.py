"""API keys: who a request is, for the HTTP server."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from .base import Model
from .principals import Principal


class KeyRole(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"
    """Bound to one agent address; acts as that agent."""
    APPROVER = "approver"
    """Bound to a person (``subject``) and their groups; answers human tasks."""


class ApiKey(Model):
    """A key as stored (hashed): its id, role, binding and workspace. Never the secret."""

    key_id: str
    role: KeyRole
    agent: str | None = None
    subject: str | None = None
    groups: list[str] = []
    workspace: str = "default"
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def principal(self) -> Principal:
        if self.role is KeyRole.AGENT:
            assert self.agent is not None
            return Principal.agent(self.agent, workspace=self.workspace)
        if self.role is KeyRole.APPROVER:
            assert self.subject is not None
            return Principal.human(self.subject, groups=self.groups, workspace=self.workspace)
        return Principal.admin(self.subject or f"key:{self.key_id}", workspace=self.workspace)


class NewKey(Model):
    """A key just created: ``secret`` is shown once and never stored."""

    key: ApiKey
    secret: str
