"""The one clock. Every timestamp tether stores comes from here, so tests can move time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock that moves only when told to; for tests of deadlines and timers.

    Example::

        clock = FrozenClock()
        client = tether.connect(db_url, clock=clock)
        clock.advance(seconds=3600)
        client.fire_due_timers()
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2030, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0.0) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now


def to_text(at: datetime) -> str:
    """Fixed-width UTC text that sorts like the instant it names."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: tether only stores aware timestamps")
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    # isoformat is several times faster than strftime, and this runs on every write
    return at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_text(text: str) -> datetime:
    """The instant :func:`to_text` wrote (``YYYY-MM-DDTHH:MM:SS.ffffffZ``); a ValueError for
    any other text."""
    # fromisoformat is C and many times faster than strptime; the shape check keeps it as
    # strict as the one format tether writes
    if len(text) != 27 or text[10] != "T" or text[19] != "." or text[26] != "Z":
        raise ValueError(f"not a tether timestamp: {text!r}")
    return datetime.fromisoformat(text[:26]).replace(tzinfo=UTC)
