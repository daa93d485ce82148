"""Chaos for the CrewAI adapter: a steady load of crew runs through the adapter's worker, two
worker processes on one SQLite store, and the worker processes SIGKILLed at random moments at
each boundary of a run: before its wait opens, while it waits, inside a tool call, just after
its resume was claimed. A person approves the runs that wait.

Afterwards every run has completed, every acknowledged create and approval is there, every
side effect was applied exactly once (the external system dedups by idempotency key, the tool
call's journal key, and a tool ran again only when the process that ran it before was
SIGKILLed), and every audit chain verifies. The test prints its counts.

``TETHER_CHAOS_SECONDS`` sets how long the kills go on (default 15 s, the short form in
``make test``; ``make chaos`` runs 300). Once it has passed, the kills go on only until each
boundary has had one. The worker processes are forked from a process that imported crewai
once (``_chaos_app``), so a killed worker is replaced at once rather than after crewai's
seconds of imports.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import tether
from tether import Principal, Status

from ._chaos_app import AGENT, GATED, PLAIN, effects_db

ROOT = Path(__file__).resolve().parents[3]
SECONDS = float(os.environ.get("TETHER_CHAOS_SECONDS", "15"))
BOUNDARIES = ("before-wait", "waiting", "tool", "resumed")
EDITOR = Principal.human("editor@example.com", groups=["editors"])


class Fleet:
    """Two worker processes, forked by ``_chaos_app``'s server, and the ones SIGKILLed."""

    def __init__(self, db: str, workdir: Path) -> None:
        self.workdir = workdir
        home = workdir / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
        env.update(HOME=str(home), TETHER_TEST_NET_LOG=str(workdir / "network.log"))
        self.server = subprocess.Popen(
            [sys.executable, "-m", "tests.adapters.crewai._chaos_app", db, str(workdir)],
            cwd=ROOT, env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=(workdir / "server.log").open("w"), start_new_session=True,
        )  # fmt: skip
        self.killed: set[int] = set()
        self.exits: dict[int, int] = {}
        try:
            assert self._read() == "ready"
            self.workers = [self._ask("spawn") for _ in range(2)]
        except BaseException:
            self.close()
            raise

    def _read(self) -> str:
        assert self.server.stdout is not None
        line = self.server.stdout.readline()
        if not line:
            raise AssertionError("the worker server died: " + (self.workdir / "server.log")
                                 .read_text()[-3000:])  # fmt: skip
        return line.strip()

    def _ask(self, command: str) -> int:
        assert self.server.stdin is not None
        self.server.stdin.write(command + "\n")
        self.server.stdin.flush()
        return int(self._read())

    def phase(self, pid: int) -> str:
        with suppress(FileNotFoundError):
            return (self.workdir / f"phase-{pid}").read_text()
        return ""

    def find(self, boundary: str, seconds: float) -> int | None:
        """A worker at ``boundary``, if one gets there within ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for pid in self.workers:
                if self.phase(pid) == boundary:
                    return pid
            time.sleep(0.005)
        return None

    def kill(self, pid: int) -> str:
        """SIGKILL the worker, put a new one in its place; returns where it was."""
        where = self.phase(pid) or "starting"
        os.kill(pid, signal.SIGKILL)
        self.killed.add(pid)
        assert self._ask(f"reap {pid}") == -signal.SIGKILL
        self.workers[self.workers.index(pid)] = self._ask("spawn")
        return where

    def stop(self) -> None:
        """SIGTERM the workers (each ends the run it is on) and the server."""
        assert self.server.stdin is not None
        self.server.stdin.write("stop\n")
        self.server.stdin.flush()
        while (line := self._read()) != "stopped":
            pid, code = line.split()
            self.exits[int(pid)] = int(code)
        self.server.wait(30)

    def close(self) -> None:
        if self.server.poll() is None:  # the test failed before stop(): end the server's group
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait(30)


@contextmanager
def running(fn: Callable[[threading.Event], None]) -> Iterator[threading.Event]:
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn(stop)
        except BaseException as exc:
            errors.append(exc)
            raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(60)
    assert not errors, errors


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 600)
def test_chaos(tmp_path: Path) -> None:
    seed = os.environ.get("TETHER_CHAOS_SEED", str(uuid.uuid4()))
    rng = random.Random(seed)
    effects_db(tmp_path / "effects.db")
    db = f"sqlite:///{tmp_path / 'tether.db'}"
    client = tether.connect(db)  # the producer and the editor, in this process
    editor = client.as_actor(EDITOR)
    created: dict[str, str] = {}  # acknowledged creates: intent id -> intent type
    approved: list[str] = []  # acknowledged approvals
    kills: Counter[str] = Counter()
    fleet = Fleet(db, tmp_path)

    def produce(stop: threading.Event) -> None:
        """A run every 0.3 s, with at most 6 unfinished at a time; every other one gated."""
        unfinished: set[str] = set()
        while not stop.is_set():
            unfinished = {i for i in unfinished if not client.get_intent(i).status.terminal}
            if len(unfinished) < 6:
                n = len(created)
                kind = GATED if n % 2 == 0 else PLAIN
                intent = client.create_intent(
                    kind, AGENT, {"inputs": {"topic": f"durable agents {n}"}},
                    idempotency_key=f"run-{n}",
                )  # fmt: skip
                created[intent.intent_id] = kind
                unfinished.add(intent.intent_id)
            stop.wait(0.3)

    def approve(stop: threading.Event) -> None:
        while not stop.is_set():
            for task in editor.list_tasks(limit=50):
                with suppress(tether.Conflict):
                    editor.approve(task.intent_id, comment="ship it")
                    approved.append(task.intent_id)
            stop.wait(0.1)

    try:
        with running(approve):
            with running(produce):
                deadline = time.monotonic() + SECONDS
                while True:
                    time.sleep(rng.uniform(0.2, 1.0))
                    # once the time is up, go on (a minute at most) only for the boundaries
                    # that have had no kill yet
                    overtime = time.monotonic() >= deadline
                    missing = [b for b in BOUNDARIES if b not in kills]
                    if overtime and (not missing or time.monotonic() > deadline + 60):
                        break
                    victim = fleet.find(rng.choice(missing if overtime else BOUNDARIES), 3.0)
                    if victim is None and not overtime:
                        victim = rng.choice(fleet.workers)
                    if victim is not None:
                        kills[fleet.kill(victim)] += 1
            # the load and the kills stop; what was submitted must reach its end
            until = time.monotonic() + 240
            pending = set(created)
            while pending and time.monotonic() < until:
                pending = {i for i in pending if not client.get_intent(i).status.terminal}
                time.sleep(0.2)
        fleet.stop()
        stuck = {i: client.get_intent(i).status.value for i in pending}
        assert not stuck, f"runs that never ended: {stuck}"

        # every boundary had its kill; no worker died but by SIGKILL
        assert set(BOUNDARIES) <= set(kills), kills
        assert fleet.exits and set(fleet.exits.values()) == {0}, fleet.exits

        # every acknowledged create completed; every acknowledged approval is on its run
        intents = {i: client.get_intent(i) for i in created}
        assert {i.status for i in intents.values()} == {Status.COMPLETED}
        gated = {i for i, kind in created.items() if kind == GATED}
        assert sorted(approved) == sorted(gated)  # each gated run waited, and was approved once
        for intent_id, intent in intents.items():
            result = intent.result
            assert result["status"] == "completed"
            assert result["raw"] == "published at https://example.com/posts/1"
            if intent_id in gated:
                [wait] = client.list_waits(intent_id)
                assert (wait.key, wait.outcome, wait.comment) == (
                    "crew/task/2/approval", "approved", "ship it")  # fmt: skip
                assert result["decisions"]["crew/task/2/approval"]["outcome"] == "approved"
            else:
                assert client.list_waits(intent_id) == [] and result["decisions"] == {}

        # every tool call on a journal applied exactly once, and nothing else applied
        tool_calls = {f"{i}:{s.key}": s for i in created for s in client.list_steps(i)
                      if "/tool/" in s.key}  # fmt: skip
        assert Counter(key.split("/")[3] for key in tool_calls) == {
            "search": len(created),
            "fact_check": len(created),
            "publish": len(created),
        }
        with sqlite3.connect(tmp_path / "effects.db") as effects:
            applied = {k for (k,) in effects.execute("SELECT key FROM applied")}
            executions = effects.execute("SELECT key, pid, run FROM executions ORDER BY rowid")
            runs: dict[str, list[tuple[int, str]]] = {}
            for key, pid, run in executions.fetchall():
                runs.setdefault(key, []).append((pid, run))
        assert applied == set(tool_calls) == set(runs)
        # a tool ran again only where the process that ran it was SIGKILLed before its record
        # committed: the journal kept the last execution, and each one before it was by a
        # killed process. Any other repeat is a duplicate.
        again = {k: r for k, r in runs.items() if len(r) > 1}
        duplicates = {
            key: r for key, r in runs.items()
            if not tool_calls[key].result["result"].endswith(f"(execution {r[-1][1]})")
            or not {pid for pid, _ in r[:-1]} <= fleet.killed
        }  # fmt: skip
        assert not duplicates, duplicates

        report = client.verify_audit()
        assert report.ok, report.problems
        log = tmp_path / "network.log"
        assert not log.exists() or log.read_text() == "", log.read_text()

        counts = {
            "runs": len(created),
            "gated": len(gated),
            "kills": sum(kills.values()),
            **{f"kills_{where}": n for where, n in sorted(kills.items())},
            "re_executed_after_sigkill": len(again),
            "losses": 3 * len(created) - len(applied),  # each run makes three tool calls
            "duplicates": len(duplicates),
        }
        print(f"\ncrewai chaos (seed {seed}):", ", ".join(f"{k} {v}" for k, v in counts.items()))
    finally:
        fleet.close()
        client.close()
