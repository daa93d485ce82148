"""Waiting, in tests, for something another thread or process makes true."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(check: Callable[[], bool], seconds: float, interval: float = 0.01) -> bool:
    """Whether ``check`` comes true within ``seconds`` (polled every ``interval``)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
