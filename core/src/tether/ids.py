"""The one ID format: UUIDv7 strings (RFC 9562), time-ordered so lists page by id."""

from __future__ import annotations

import os
import secrets
import time
import uuid


def new_id() -> str:
    """A new UUIDv7 as a string."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def new_token(prefix: str) -> str:
    """A random secret with a readable prefix, e.g. ``tk_...``."""
    return f"{prefix}_{secrets.token_urlsafe(24)}"


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True
