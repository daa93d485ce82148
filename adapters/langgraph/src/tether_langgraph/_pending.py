"""What waits in memory before it is stored, and how a task's writes are merged.

LangGraph hands the saver, for each superstep, the writes of each finished task
(``put_writes``) and then the checkpoint the superstep produced (``put``); a run starts with
an *input* checkpoint that the first step follows at once. Stored one by one that is several
commits per step. Instead a task's ordinary writes, and an input checkpoint, wait here for at
most ``delay`` seconds: the next checkpoint of the thread carries them in its own record, so
a step costs one commit. Writes that end a run (an interrupt, an error) are stored at once,
with whatever waits; so is anything still waiting when ``delay`` passes (a sibling task that
runs long), and everything before a read of the thread.

What a crash can therefore lose is bounded: the input checkpoint of a run whose first step
had not finished (the run starts over from its input), and a finished task whose superstep
had not ended and whose writes had waited less than ``delay`` (the task runs again on resume;
tether's journal keeps its tool calls from being repeated). A finished superstep is never
lost. ``delay=0`` stores everything at once.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

Entry = list[Any]
"""A stored write: ``[task_id, index, channel, slot, task_path]``."""
Entries = list[Entry]


def merge(current: list[Entry], new: list[Entry], *, replace: bool) -> list[Entry] | None:
    """``current`` with ``new`` added: an entry whose (task, index) is there already is kept,
    unless ``replace`` (the special writes: errors, interrupts). None when nothing changes."""
    index = {(e[0], e[1]): i for i, e in enumerate(current)}
    merged = list(current)
    changed = False
    for entry in new:
        at = index.get((entry[0], entry[1]))
        if at is None:
            index[(entry[0], entry[1])] = len(merged)
            merged.append(entry)
            changed = True
        elif replace:
            merged[at] = entry
            changed = True
    return merged if changed else None


def union(*sources: list[Entry]) -> list[Entry]:
    """Entries of several sources, the first source winning for a (task, index)."""
    seen: set[tuple[Any, Any]] = set()
    out: list[Entry] = []
    for source in sources:
        for entry in source:
            key = (entry[0], entry[1])
            if key not in seen:
                seen.add(key)
                out.append(entry)
    return out


class Flusher:
    """One daemon thread per saver that stores what waited ``delay`` (at most one timer per
    thread id; it wakes only when a timer is due)."""

    def __init__(self, flush: Callable[[str], None]) -> None:
        # A weak reference, so the saver (and its client) can be garbage-collected.
        self._flush = weakref.WeakMethod(flush)
        self._due: list[tuple[float, int, str]] = []
        self._scheduled: set[str] = set()
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, thread_id: str, delay: float) -> None:
        with self._cond:
            if thread_id in self._scheduled:
                return
            self._scheduled.add(thread_id)
            was_idle = not self._due
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), thread_id))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="tether-langgraph-writes", daemon=True
                )
                self._thread.start()
            if was_idle:  # deadlines only grow: a busy flusher already wakes early enough
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due or self._due[0][0] > time.monotonic():
                    timeout = self._due[0][0] - time.monotonic() if self._due else None
                    self._cond.wait(timeout)
                _, _, thread_id = heapq.heappop(self._due)
                self._scheduled.discard(thread_id)
            flush = self._flush()
            if flush is None:
                return
            try:
                flush(thread_id)
            except Exception:  # the next checkpoint or flush stores them instead
                import logging

                logging.getLogger("tether_langgraph").warning(
                    "could not store pending writes of thread %s yet", thread_id, exc_info=True
                )
            del flush
