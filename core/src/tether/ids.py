"""The one ID format: UUIDv7 strings (RFC 9562), time-ordered so lists page by id."""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """A new UUIDv7 as a string, increasing within this process even inside one millisecond
    (RFC 9562's 12-bit counter in ``rand_a``), so ids made one after another sort in order."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _counter = ms, secrets.randbelow(0x800)  # room to count up
        else:
            _counter += 1
            if _counter > 0xFFF:  # 2048+ ids in one millisecond: borrow the next one
                _last_ms, _counter = _last_ms + 1, 0
        ms, counter = _last_ms, _counter
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
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
