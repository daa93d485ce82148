"""Who acts: an agent, a person, an admin or tether itself."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property

from .base import Model


class PrincipalKind(StrEnum):
    AGENT = "agent"
    HUMAN = "human"
    ADMIN = "admin"
    SYSTEM = "system"


class Principal(Model):
    """The identity behind a request, recorded as the ``actor`` of every event it causes.

    Example::

        alice = Principal.human("alice@example.com", groups=["finance"])
        client.respond(intent_id, outcome="approved", actor=alice)
    """

    kind: PrincipalKind
    name: str
    groups: tuple[str, ...] = ()
    workspace: str = "default"

    @classmethod
    def human(
        cls, name: str, *, groups: list[str] | tuple[str, ...] = (), workspace: str = "default"
    ) -> Principal:
        return cls(kind=PrincipalKind.HUMAN, name=name, groups=tuple(groups), workspace=workspace)

    @classmethod
    def agent(cls, address: str, *, workspace: str = "default") -> Principal:
        return cls(kind=PrincipalKind.AGENT, name=address, workspace=workspace)

    @classmethod
    def admin(cls, name: str = "admin", *, workspace: str = "default") -> Principal:
        return cls(kind=PrincipalKind.ADMIN, name=name, workspace=workspace)

    @classmethod
    def system(cls, name: str = "tether") -> Principal:
        return cls(kind=PrincipalKind.SYSTEM, name=name)

    @cached_property
    def actor(self) -> str:
        """How this principal appears in the audit trail, e.g. ``human:alice``."""
        return f"{self.kind.value}:{self.name}"[:255]
