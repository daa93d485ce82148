"""Shared pieces of the model: the base class and validated string types."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

SCHEMA_VERSION = 1
"""Version of every persisted shape this release writes. Readers accept this and older."""

_AGENT = re.compile(r"^agent://[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,2}$")
_INTENT_TYPE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+\.v[0-9]+$")


def agent_address(value: str) -> str:
    """``value`` if it is an agent address (``agent://workspace/name``), else ValueError."""
    if len(value) > 383 or not _AGENT.match(value):
        raise ValueError(
            "an agent address looks like agent://workspace/name (letters, digits, '.', '_', '-')"
        )
    return value


def _intent_type(value: str) -> str:
    if len(value) > 255 or not _INTENT_TYPE.match(value):
        raise ValueError("an intent type looks like refund.request.v1 (lowercase, dotted, .vN)")
    return value


AgentAddress = Annotated[str, AfterValidator(agent_address)]
IntentType = Annotated[str, AfterValidator(_intent_type)]
JSONObject = dict[str, Any]


class Model(BaseModel):
    """Base of tether's data types: strict about unknown fields, immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Persisted(Model):
    """A shape that is stored; it carries the schema version it was written with."""

    schema_version: int = SCHEMA_VERSION


def check_instant(value: datetime | None, name: str) -> None:
    """An input timestamp must carry a timezone and name an instant UTC can hold (a time
    near year 1 or 9999 with an offset may not): a ValueError, for a 422, otherwise."""
    if value is None:
        return
    if value.tzinfo is None:
        raise ValueError(f"{name} must carry a timezone")
    try:
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"{name} is out of range once in UTC") from None
