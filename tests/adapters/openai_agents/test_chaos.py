"""Chaos for the adapter: a steady load of agent runs on three worker processes (``tether worker``
on ``_chaos_app.py``, each opening one SQLite store file), while the workers are SIGKILLed at
random moments and a person approves the runs that wait.

The workload mixes runs that call tools one after another, runs whose payment waits for a
person, and runs that call two tools in one turn; tool bodies are slow enough that kills land
inside them, on both sides of their external call. So kills fall before a wait opens, while a
run waits, inside a tool call, and just after a resumed run is claimed.

Afterwards every run completed with its output, every acknowledged create and approval is
there, every tool call's effect was applied exactly once (the external system dedups by the
call's step key, ``<intent id>:tool:<name>:<call id>``; a call reaches it twice only when the
process that made it first was SIGKILLed), no effect was applied for a call the run does not
know, and every audit chain verifies. The run prints its counts.

``TETHER_CHAOS_SECONDS`` sets how long the load runs (default 15 s; ``make chaos`` runs 300).
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
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

import pytest
import tether
from tether import Principal, Status
from tether_openai_agents.testing import journal

from ._chaos_app import AGENT, EXPECTED, KINDS, TOOLS, effects_db

ROOT = Path(__file__).resolve().parents[3]
WORKER = "tests.adapters.openai_agents._chaos_app:worker"
SECONDS = float(os.environ.get("TETHER_CHAOS_SECONDS", "15"))
WORKERS = 3
IN_FLIGHT = 8
"""Runs the producer keeps unfinished at once: a steady load that the workers keep up with."""


class Fleet:
    """Worker processes on one store file; each incarnation logs to its own file."""

    def __init__(self, db_url: str, effects: Path, logs: Path) -> None:
        self.db_url, self.effects, self.logs = db_url, effects, logs
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.killed: set[int] = set()
        self._spawned = 0

    def spawn(self, n: int) -> None:
        log = self.logs / f"worker-{self._spawned}.log"
        self._spawned += 1
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tether", "worker", WORKER, "--db", self.db_url],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "CHAOS_EFFECTS": str(self.effects),
                     "OPENAI_AGENTS_DISABLE_TRACING": "1"},
            )  # fmt: skip
        if n < len(self.procs):
            self.procs[n] = (proc, log)
        else:
            self.procs.append((proc, log))

    def ready(self) -> list[int]:
        """The workers that are up (they said so) and still running."""
        return [n for n, (proc, log) in enumerate(self.procs)
                if proc.poll() is None and b"worker for" in log.read_bytes()]  # fmt: skip

    def kill_one(self, rng: random.Random) -> int | None:
        """SIGKILL a random running worker and start another in its place; its pid."""
        ready = self.ready()
        if not ready:
            return None
        n = rng.choice(ready)
        proc = self.procs[n][0]
        self.killed.add(proc.pid)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
        self.spawn(n)
        return proc.pid

    def stop(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)

    def tails(self) -> str:
        """The end of every worker's log, for a failure message."""
        parts = []
        for log in sorted(self.logs.glob("worker-*.log")):
            lines = log.read_text(errors="replace").splitlines()
            parts.append(f"--- {log.name}\n" + "\n".join(lines[-15:]))
        return "\n".join(parts)


@contextmanager
def running(fn: object, *args: object) -> Iterator[threading.Event]:
    stop = threading.Event()
    errors: list[BaseException] = []

    def body() -> None:
        try:
            fn(*args, stop)  # type: ignore[operator]
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(60)
    if errors:
        raise errors[0]


def _inside_a_tool(effects: Path, pid: int) -> bool:
    """Did the killed process die inside a tool body (started, not ended)?"""
    with closing(sqlite3.connect(effects, timeout=60)) as db:
        phases = Counter(db.execute("SELECT phase FROM calls WHERE pid = ?", (pid,)))
    return phases[("start",)] > phases[("end",)]


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 420)
def test_chaos(tmp_path: Path) -> None:
    seed = os.environ.get("TETHER_CHAOS_SEED", str(uuid.uuid4()))
    rng = random.Random(seed)
    effects = tmp_path / "effects.db"
    effects_db(str(effects))
    logs = tmp_path / "logs"
    logs.mkdir()
    db_url = f"sqlite:///{tmp_path / 'tether.db'}"
    counts = {"kills": 0, "kills_inside_a_tool_call": 0}
    acked: dict[str, str] = {}  # intent id -> kind: every create that returned
    approved: dict[str, str] = {}  # intent id -> wait id: every approval that returned

    client = tether.connect(db_url)  # the producer, the person and the checks, in-process
    alice = client.as_actor(Principal.human("alice@example.com"))
    fleet = Fleet(db_url, effects, logs)
    print(f"\nchaos seed {seed}")  # TETHER_CHAOS_SEED picks the same kills and runs again

    def produce(stop: threading.Event) -> None:
        pick = random.Random(f"{seed}:produce")
        unfinished: set[str] = set()
        n = 0
        while not stop.is_set():
            unfinished = {i for i in unfinished if not client.get_intent(i).status.terminal}
            while len(unfinished) < IN_FLIGHT and not stop.is_set():
                kind = pick.choice(KINDS)
                intent = client.create_intent(
                    kind, AGENT, {"input": f"Handle order {n}"}, idempotency_key=f"order-{n}"
                )
                acked[intent.intent_id] = kind
                unfinished.add(intent.intent_id)
                n += 1
            stop.wait(0.1)

    def approve(stop: threading.Event) -> None:
        while not stop.is_set():
            for task in alice.list_tasks(limit=50):
                assert task.wait is not None
                with suppress(tether.Conflict):
                    alice.approve(task.intent_id, comment="ok")
                    approved[task.intent_id] = task.wait.wait_id
            stop.wait(0.2)

    pending: set[str] = set()
    try:
        for n in range(WORKERS):
            fleet.spawn(n)
        up_by = time.monotonic() + 120
        while len(fleet.ready()) < WORKERS:  # the load starts once the workers are up
            assert time.monotonic() < up_by, f"the workers did not start\n{fleet.tails()}"
            time.sleep(0.1)
        with running(approve):
            with running(produce):
                deadline = time.monotonic() + SECONDS
                while time.monotonic() < deadline:
                    time.sleep(rng.uniform(0.5, 2.0))
                    pid = fleet.kill_one(rng)
                    if pid is not None:
                        counts["kills"] += 1
                        counts["kills_inside_a_tool_call"] += _inside_a_tool(effects, pid)
            # the load stops; every run still going must reach its end
            pending = set(acked)
            give_up = time.monotonic() + 300
            while pending and time.monotonic() < give_up:
                pending = {i for i in pending if not client.get_intent(i).status.terminal}
                time.sleep(0.2)
        stuck = {i: client.get_intent(i).status.value for i in pending}
        assert not stuck, f"runs that never ended: {stuck}\n{fleet.tails()}"
        _check(client, effects, fleet, acked, approved, counts)
    finally:
        fleet.stop()
        alice.close()
        client.close()


def _check(
    client: tether.Client,
    effects: Path,
    fleet: Fleet,
    acked: dict[str, str],
    approved: dict[str, str],
    counts: dict[str, int],
) -> None:
    assert acked, "the producer created no run"
    assert counts["kills"], "no worker was killed"
    # every run completed, with its kind's output
    for intent_id, kind in acked.items():
        intent = client.get_intent(intent_id)
        assert intent.status is Status.COMPLETED, (intent_id, intent.error, fleet.tails())
        assert intent.result == EXPECTED[kind], intent_id

    # every acknowledged approval is on record, as given
    for intent_id, wait_id in approved.items():
        [wait] = [w for w in client.list_waits(intent_id) if w.wait_id == wait_id]
        assert wait.outcome == "approved" and wait.resolved_by == "human:alice@example.com"
    needs_a_person = {i for i, kind in acked.items() if "pay" in TOOLS[kind]}
    assert set(approved) == needs_a_person  # each run that needed a person was answered
    for intent_id in needs_a_person:  # and asked once, whatever the kills
        assert len(client.list_waits(intent_id)) == 1, intent_id

    # each run's journal holds one call of each of its tools: the calls the run knows
    known: dict[str, tuple[str, str]] = {}  # idempotency key -> (intent id, tool)
    for intent_id, kind in acked.items():
        calls = [key for key in journal(client, intent_id) if key.startswith("tool:")]
        assert sorted(key.split(":")[1] for key in calls) == sorted(TOOLS[kind]), intent_id
        known.update({f"{intent_id}:{key}": (intent_id, key.split(":")[1]) for key in calls})

    with closing(sqlite3.connect(effects, timeout=60)) as db:
        applied = {key: (i, tool) for key, i, tool in db.execute("SELECT * FROM applied")}
        executions = db.execute("SELECT key, pid FROM executions ORDER BY rowid").fetchall()
    losses = set(known) - set(applied)
    # an effect applied for a call the run does not know is a second effect of one call of
    # the script (made under another call id): the external system could not dedup it
    unknown = set(applied) - set(known)
    per_tool = Counter(applied.values())
    twice = {call: n for call, n in per_tool.items() if n > 1}
    pids: dict[str, list[int]] = {}
    for key, pid in executions:
        pids.setdefault(key, []).append(pid)
    again = {key: p for key, p in pids.items() if len(p) > 1}
    # a call reaches the external system again only if the process that made it was
    # SIGKILLed before its result was recorded; any other repeat is a duplicate
    repeated = {key: p for key, p in again.items() if not set(p[:-1]) <= fleet.killed}
    assert not losses, sorted(losses)
    assert not unknown and not twice, {"unknown calls": sorted(unknown), "applied twice": twice}
    assert not repeated, repeated

    report = client.verify_audit()
    assert report.ok, report.problems

    kinds = Counter(acked.values())
    summary = {
        "runs": len(acked),
        **{kind.split(".")[1]: kinds[kind] for kind in KINDS},
        "approvals": len(approved),
        **counts,
        "re_executed_after_sigkill": len(again),
        "losses": len(losses),
        "duplicates": len(unknown) + len(twice) + len(repeated),
    }
    print("\nopenai-agents chaos:", ", ".join(f"{k} {v}" for k, v in summary.items()))
