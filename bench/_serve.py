"""A ``tether serve`` subprocess on loopback for the benchmarks that measure over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], patience: float, name: str) -> None:
    """Until ``url``/health answers 200; an error if the process exits or time runs out."""
    deadline = time.monotonic() + patience
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.05)


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def tether_serve(
    db_url: str,
    *,
    log: Path | None = None,
    cwd: Path | None = None,
    patience: float = 60.0,
) -> Iterator[Served]:
    """``tether serve`` on ``db_url`` (development mode unless the store has keys; the
    per-key rate limit off, since a benchmark's load comes from one key), up when the block
    begins and stopped (terminate, then kill) when it ends. Its output goes to ``log``."""
    port = free_port()
    with ExitStack() as stack:
        out = stack.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
        process = subprocess.Popen(
            [sys.executable, "-m", "tether", "serve", "--db", db_url, "--port", str(port)],
            cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "TETHER_RATE_LIMIT": "0"},
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, process, patience, f"tether serve{f' (see {log})' if log else ''}")
            yield Served(url, process)
        finally:
            process.terminate()  # SIGTERM: long polls answer at once and the server exits
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
