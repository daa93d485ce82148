"""A real tether server on loopback for these tests: ``tests/server_harness.py``'s, except that
it stops within a second even while workers' agent guards hold long-polls open."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn
from tether.engine import Engine
from tether.server import create_app
from tether.settings import Settings


@contextlib.contextmanager
def running_server(engine: Engine, *, tick: bool = False) -> Iterator[str]:
    app = create_app(engine, Settings(), tick=tick)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            access_log=False, timeout_graceful_shutdown=1)  # fmt: skip
    server = uvicorn.Server(config)
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
        server.should_exit = True
        thread.join(10)
