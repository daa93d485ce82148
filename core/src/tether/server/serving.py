"""Running the app under uvicorn, as ``tether serve`` does, with a shutdown that drains."""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI

from .changes import ChangeFeed

GRACEFUL_SECONDS = 3
"""How long a shutdown waits for the requests in flight (long polls and streams end at once)."""


class DrainingServer(uvicorn.Server):
    """uvicorn's server, which on SIGTERM or SIGINT also drains the app's change feed: long
    polls answer with what they have and streams end with ``stream.timeout``, so their
    clients reconnect (to another replica, or to this one restarted) instead of being cut off
    when the graceful period ends."""

    def __init__(self, config: uvicorn.Config, feed: ChangeFeed) -> None:
        super().__init__(config)
        self.feed = feed

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.feed.drain()
        super().handle_exit(sig, frame)

    def stop(self) -> None:
        """Shut down as on SIGTERM, from any thread (for a server run in a thread)."""
        self.feed.drain()
        self.should_exit = True


def run(app: FastAPI, *, host: str, port: int, log_level: str = "warning") -> None:
    """Serve ``app`` until SIGTERM or SIGINT (no access log: /metrics counts requests)."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            timeout_graceful_shutdown=GRACEFUL_SECONDS)  # fmt: skip
    DrainingServer(config, app.state.changes).run()
