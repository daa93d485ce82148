"""Real processes for the tests that need them: a store they meet at (a SQLite file, or a
``tether serve`` on loopback), child processes whose output is kept, and waiting for them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import tether
from tether import KeyRole

from ...server_harness import running_server

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Store:
    """Where the processes meet: the test's own client on the store, the arguments a
    ``tether worker`` gets (an admin's), and the environment of an agent's own process."""

    client: tether.Client
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def open_store(kind: str, db_url: str, agent: str) -> Iterator[Store]:
    """``sqlite``: every process opens the file; ``http``: a server on loopback, workers with
    an admin key (a worker registers its agent and fires timers, which an agent key may not do
    over HTTP), the agent's own process with the agent's key."""
    with tether.connect(db_url) as local:
        if kind == "sqlite":
            yield Store(local, ["--db", db_url], {"TETHER_DB": db_url})
            return
        with running_server(local.engine) as url:
            admin = local.engine.create_key(KeyRole.ADMIN, subject="ops").secret
            own = local.engine.create_key(KeyRole.AGENT, agent=agent).secret
            yield Store(local, ["--url", url, "--api-key", admin],
                        {"TETHER_URL": url, "TETHER_API_KEY": own})  # fmt: skip


class Process:
    """A child process whose output is collected (and shown when a wait for it times out)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OPENAI_AGENTS_DISABLE_TRACING": "1", **env},
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def finish(self, seconds: float = 180) -> int:
        """Wait for the process to exit; its exit code."""
        code = self.proc.wait(seconds)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """SIGKILL: the process dies wherever it is."""
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(30) == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._reader.join(5)

    def output(self) -> str:
        return "\n".join(self.lines)


def until(what: Callable[[], bool], *procs: Process, seconds: float = 120) -> None:
    """Wait until ``what()`` holds; after ``seconds``, fail with what the processes said."""
    deadline = time.monotonic() + seconds
    while not what():
        if time.monotonic() > deadline:
            logs = "\n---\n".join(p.output() for p in procs)
            raise AssertionError(f"timed out; the processes said:\n{logs}")
        time.sleep(0.05)


@contextlib.contextmanager
def worker(target: str, store: Store, env: dict[str, str]) -> Iterator[Process]:
    """``tether worker target`` on the store, up (it said so) when the block begins."""
    proc = Process(["-m", "tether", "worker", target, *store.args], env)
    try:
        until(lambda: any(line.startswith("worker for") for line in proc.lines), proc)
        yield proc
    finally:
        proc.stop()


def effect_lines(path: Path) -> list[str]:
    return path.read_text().split("\n")[:-1] if path.exists() else []
