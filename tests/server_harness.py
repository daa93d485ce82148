"""A real tether server on loopback, in a thread of the test process (so tests can share its
clock), on a free port."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn
from tether.engine import Engine
from tether.server import create_app
from tether.server.serving import DrainingServer
from tether.settings import Settings


@contextlib.contextmanager
def running_server(
    engine: Engine, settings: Settings | None = None, *, tick: bool = False
) -> Iterator[str]:
    app = create_app(engine, settings or Settings(), tick=tick)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=2)  # fmt: skip
    server = DrainingServer(config, app.state.changes)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()  # long polls and streams answer at once, as on SIGTERM
        thread.join(10)
