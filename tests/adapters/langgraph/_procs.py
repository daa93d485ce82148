"""Worker processes for the tests that run graphs in real processes: a store they share with
the test (the store file, or a server on loopback in the test process), and how to start,
stop and read them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import tether
from tether import Client

from ...server_harness import running_server

ROOT = Path(__file__).resolve().parents[3]


def until(predicate: Callable[[], bool], seconds: float = 120, what: str = "") -> None:
    """Wait for ``predicate`` (a guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not the case after {seconds} s: {what}")
        time.sleep(0.05)


@contextmanager
def target(kind: str, db_url: str) -> Iterator[tuple[Client, dict[str, str]]]:
    """A client for the test, and the environment that points a worker at the same store:
    the store file itself (``local``), or a server on loopback (``http``: the workers talk
    HTTP with an admin key)."""
    with tether.connect(db_url) as local:
        if kind == "local":
            yield local, {"TETHER_DB": db_url}
            return
        with running_server(local.engine) as url:
            key = local.engine.create_key(tether.KeyRole.ADMIN, subject="ops")
            yield local, {"TETHER_URL": url, "TETHER_API_KEY": key.secret}


def spawn(module: str, env: dict[str, str], log: Path, **extra: str) -> subprocess.Popen[bytes]:
    """``python -m tests.adapters.langgraph.<module>``, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", f"tests.adapters.langgraph.{module}"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env, **extra},
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)
