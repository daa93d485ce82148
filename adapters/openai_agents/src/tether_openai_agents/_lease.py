"""Keeping a lease alive while a run works outside a ``tether.Worker`` (which beats its own)."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

import tether

logger = logging.getLogger("tether_openai_agents")


class Heartbeat:
    """Extends ``lease`` every third of ``seconds`` from a thread, until the block ends.

    A thread, not a task: a tool body that blocks the event loop must not let the lease lapse.
    """

    def __init__(self, client: tether.Client, lease: tether.Lease, seconds: float) -> None:
        self.client = client
        self.lease = lease
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="tether-heartbeat")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.client.heartbeat(self.lease, lease_seconds=self.seconds)
            except tether.LeaseLost:
                logger.warning("lost the lease on intent %s", self.lease.intent_id)
                return
            except tether.TetherError:
                logger.warning("lease heartbeat failed; retrying", exc_info=True)
