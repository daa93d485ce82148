"""Real processes, killed with SIGKILL: while the run waits, and in the middle of a tool call.
Each ends with the run complete and every tool body finished exactly once.

The processes run ``_app.py``: ``python -m tests.adapters.openai_agents._app start`` (submit a
run, run it until it waits, exit) and ``python -m tether worker ..._app:worker``. Their tool
bodies append to an effects file, which is what the tests count.
"""

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

import pytest
import tether
from tether import KeyRole, Principal, Status

from ...server_harness import running_server
from ._app import ADDRESS, SLOW

ROOT = Path(__file__).resolve().parents[3]
WORKER = "tests.adapters.openai_agents._app:worker"


@dataclass
class Store:
    """Where the processes meet: the store's URL (a file, or a server on loopback) and the
    test's own client on it."""

    client: tether.Client
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture(params=["sqlite", "http"])
def store(request: pytest.FixtureRequest, db_url: str) -> Iterator[Store]:
    with tether.connect(db_url) as local:
        if request.param == "sqlite":
            yield Store(local, ["--db", db_url], {"TETHER_DB": db_url})
            return
        with running_server(local.engine) as url:
            # Workers use an admin key: tether.Worker registers its agent and fires timers,
            # which an agent key may not do over HTTP. Process A uses the agent's own key.
            admin = local.engine.create_key(KeyRole.ADMIN, subject="ops").secret
            agent = local.engine.create_key(KeyRole.AGENT, agent=ADDRESS).secret
            yield Store(local, ["--url", url, "--api-key", admin],
                        {"TETHER_URL": url, "TETHER_API_KEY": agent})  # fmt: skip


class Process:
    """A child process whose output is collected (and shown if the test fails)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env={**os.environ, "OPENAI_AGENTS_DISABLE_TRACING": "1",
                                           **env},
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(30) == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self._reader.join(5)

    def output(self) -> str:
        return "\n".join(self.lines)


def _until(what: Callable[[], bool], *procs: Process, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        if time.monotonic() > deadline:
            logs = "\n---\n".join(p.output() for p in procs)
            raise AssertionError(f"timed out; the processes said:\n{logs}")
        time.sleep(0.05)


@contextlib.contextmanager
def worker(store: Store, effects: Path, **env: str) -> Iterator[Process]:
    proc = Process(["-m", "tether", "worker", WORKER, *store.args],
                   {"TETHER_TEST_EFFECTS": str(effects), **env})  # fmt: skip
    try:
        yield proc
    finally:
        proc.stop()


def _effects(path: Path) -> list[str]:
    return path.read_text().split("\n")[:-1] if path.exists() else []


@pytest.mark.slow
def test_a_run_outlives_its_process_and_a_worker_killed_while_it_waits(
    store: Store, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.log"
    # process A submits the payment run, runs it until the payment waits for a person, exits
    start = Process(["-m", "tests.adapters.openai_agents._app", "start", "-", "invoice-42"],
                    {"TETHER_TEST_EFFECTS": str(effects), **store.env})  # fmt: skip
    assert start.proc.wait(120) == 0, start.output()
    start.stop()
    intent_id, status = start.lines[-1].split()
    assert status == "WAITING" and _effects(effects) == ["lookup:42"]

    # a worker comes up while the run waits, and is killed there
    with worker(store, effects) as doomed:
        _until(lambda: any(line.startswith("worker for") for line in doomed.lines), doomed)
        doomed.kill()
    assert store.client.get_intent(intent_id).status is Status.WAITING

    store.client.as_actor(Principal.human("alice@example.com")).approve(intent_id, comment="ok")
    with worker(store, effects) as rescuer:
        _until(lambda: store.client.get_intent(intent_id).status is Status.COMPLETED, rescuer)

    done = store.client.get_intent(intent_id)
    assert done.result == "final: invoice 42: 32000 EUR to ACME | paid 32000 EUR to ACME"
    assert _effects(effects) == ["lookup:42", "pay:32000:ACME"]
    assert store.client.verify_audit(intent_id).ok


@pytest.mark.slow
def test_a_worker_killed_inside_a_tool_is_taken_over_and_each_tool_finishes_once(
    store: Store, tmp_path: Path
) -> None:
    effects, hold = tmp_path / "effects.log", tmp_path / "hold"
    hold.touch()  # the notify tool blocks while this file exists
    intent = store.client.create_intent(SLOW, ADDRESS, {"input": "Pay invoice 42 and tell finance"})
    with worker(store, effects, TETHER_TEST_LEASE="2", TETHER_TEST_HOLD=str(hold)) as doomed:
        _until(lambda: "notify-start" in _effects(effects), doomed)
        doomed.kill()  # inside the notify tool, after lookup_invoice finished
    assert store.client.get_intent(intent.intent_id).status is Status.IN_PROGRESS

    hold.unlink()
    with worker(store, effects, TETHER_TEST_LEASE="2") as rescuer:
        _until(lambda: store.client.get_intent(intent.intent_id).status is Status.COMPLETED,
               rescuer)  # fmt: skip

    done = store.client.get_intent(intent.intent_id)
    assert done.result == "final: invoice 42: 32000 EUR to ACME | finance notified"
    # lookup_invoice finished before the kill: the rescuer replayed it from the journal (with the
    # same call id, which only the journaled model turn could give it: the scripted model makes
    # new ids each time it is asked); notify died midway and ran again, to its end once.
    assert _effects(effects) == [
        "lookup:42",
        "notify-start",
        "notify-start",
        "notify:invoice 42 paid",
    ]
    claimed = [e for e in store.client.list_events(intent.intent_id)
               if e.event_type == "intent.claimed"]  # fmt: skip
    assert claimed, "the rescuer took the run over after the lease lapsed"
