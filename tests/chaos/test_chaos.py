"""Chaos: a steady load on two ``tether serve`` replicas over one PostgreSQL, while worker
processes are SIGKILLed at random moments (before a wait opens, while waiting, inside a long
call, just after a claim), replicas are SIGKILLed and restarted, and PostgreSQL restarts.

Afterwards every intent has reached its end, every acknowledged create is there, every side
effect was applied exactly once (the external system dedups by idempotency key, and a step is
executed again only when the process that ran it before was SIGKILLed before recording it),
and every audit chain verifies. The run prints its counts.

The short form runs in ``make test`` (``TETHER_CHAOS_SECONDS``, default 20 s, one PostgreSQL
restart); ``make chaos`` runs the long form (300 s, PostgreSQL restarted every 5-40 s).
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
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest
import tether
from tether import Status

from ..core.server.conftest import free_port, new_key
from ..pg import fresh_schema
from ._app import AGENT, effects_db

ROOT = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("TETHER_CHAOS_SECONDS", "20"))
LONG = SECONDS >= 120


def pg(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
                   check=True, capture_output=True, timeout=120)  # fmt: skip


class Replica:
    """A ``tether serve`` on a fixed port, so it can be killed and started again in place."""

    def __init__(self, db_url: str) -> None:
        self.db_url, self.port = db_url, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tether", "serve", "--db", self.db_url, "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "TETHER_RATE_LIMIT": "0"},
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("a replica did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)


class Fleet:
    """Worker processes, each talking to one replica over HTTP with the agent's key."""

    def __init__(self, replicas: list[Replica], key: str, effects: Path) -> None:
        self.replicas, self.key, self.effects = replicas, key, effects
        self.procs: list[subprocess.Popen[bytes]] = []
        self.killed: set[int] = set()

    def spawn(self, n: int) -> None:
        replica = self.replicas[n % len(self.replicas)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "tether", "worker", "tests.chaos._app:worker",
             "--url", replica.url, "--api-key", self.key],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "CHAOS_EFFECTS": str(self.effects)},
        )  # fmt: skip
        if n < len(self.procs):
            self.procs[n] = proc
        else:
            self.procs.append(proc)

    def kill_one(self, rng: random.Random) -> None:
        n = rng.randrange(len(self.procs))
        self.killed.add(self.procs[n].pid)
        self.procs[n].send_signal(signal.SIGKILL)
        self.procs[n].wait(30)
        self.spawn(n)

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def retrying(fn: object, stop: threading.Event, *args: object, **kwargs: object) -> object:
    """Call through outages (a replica or PostgreSQL away) until it answers."""
    while True:
        try:
            return fn(*args, **kwargs)  # type: ignore[operator]
        except tether.TetherError as exc:
            if exc.status < 500 or stop.is_set():
                raise
            time.sleep(0.2)


@contextmanager
def running(fn: object, *args: object) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=fn, args=(*args, stop), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(60)


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 600)
def test_chaos(tmp_path: Path) -> None:
    rng = random.Random(os.environ.get("TETHER_CHAOS_SEED", str(uuid.uuid4())))
    effects = tmp_path / "effects.db"
    effects_db(str(effects))
    counts = {"intents": 0, "worker_kills": 0, "replica_kills": 0, "pg_restarts": 0}
    acked: list[str] = []
    with fresh_schema() as db_url:
        agent_key = new_key(db_url, "--role", "agent", "--agent", AGENT)
        replicas = [Replica(db_url) for _ in range(2)]
        for r in replicas:
            r.start()
        fleet = Fleet(replicas, agent_key, effects)
        for n in range(3):
            fleet.spawn(n)
        client = tether.connect(db_url)  # the producer and the approvers, in-process
        alice = client.as_actor(tether.Principal.human("alice"))

        def produce(stop: threading.Event) -> None:
            n = 0
            while not stop.is_set():
                key = f"order-{n}"
                intent = retrying(
                    client.create_intent, stop, "chaos.order.v1", AGENT,
                    {"approval": n % 3 == 0, "work_seconds": rng.choice([0.01, 0.05, 0.3])},
                    idempotency_key=key,
                )  # fmt: skip
                acked.append(intent.intent_id)  # type: ignore[attr-defined]
                n += 1
                stop.wait(0.05)

        def approve(stop: threading.Event) -> None:
            while not stop.is_set():
                try:
                    for task in alice.list_tasks(limit=50):
                        with suppress(tether.Conflict):
                            alice.approve(task.intent_id)
                except tether.TetherError:
                    pass  # an outage: try again shortly
                stop.wait(0.2)

        try:
            with running(approve):
                with running(produce):
                    deadline = time.monotonic() + SECONDS
                    next_pg = time.monotonic() + (rng.uniform(5, 40) if LONG else SECONDS / 2)
                    while time.monotonic() < deadline:
                        time.sleep(rng.uniform(0.3, 1.5))
                        if time.monotonic() >= next_pg:
                            pg("restart")
                            counts["pg_restarts"] += 1
                            next_pg = time.monotonic() + (rng.uniform(5, 40) if LONG else 1e9)
                        elif rng.random() < 0.75:
                            fleet.kill_one(rng)
                            counts["worker_kills"] += 1
                        else:
                            replica = rng.choice(replicas)
                            replica.kill()
                            counts["replica_kills"] += 1
                            time.sleep(rng.uniform(0.1, 1.0))
                            replica.start()
                # the load stops; everything still running must reach its end
                wait_until = time.monotonic() + 240
                pending = set(acked)
                while pending and time.monotonic() < wait_until:
                    time.sleep(0.5)
                    for intent_id in list(pending):
                        try:
                            if client.get_intent(intent_id).status.terminal:
                                pending.discard(intent_id)
                        except tether.TetherError:
                            break
            counts["intents"] = len(acked)
            stuck = {i: client.get_intent(i).status.value for i in pending}
            assert not stuck, f"intents that never ended: {stuck}"
            statuses = {client.get_intent(i).status for i in acked}
            assert statuses == {Status.COMPLETED}
            with sqlite3.connect(effects) as db:
                applied = {k for (k,) in db.execute("SELECT key FROM applied")}
                runs = db.execute("SELECT key, pid FROM executions ORDER BY rowid").fetchall()
            expected = {f"{i}:{s}" for i in acked for s in ("reserve", "ship")}
            assert applied == expected  # each side effect applied once, none missing
            by_key: dict[str, list[int]] = {}
            for key, pid in runs:
                by_key.setdefault(key, []).append(pid)
            again = {k: pids for k, pids in by_key.items() if len(pids) > 1}
            # a step runs again only if the process that ran it was SIGKILLed before its
            # record committed; any other repeat is a duplicate
            duplicates = [k for k, pids in again.items() if not set(pids[:-1]) <= fleet.killed]
            assert not duplicates, {k: again[k] for k in duplicates}
            report = client.verify_audit()
            assert report.ok, report.problems
            counts["re_executed_after_sigkill"] = len(again)
            counts["losses"] = len(expected - applied)
            counts["duplicates"] = len(duplicates)
            print("\nchaos:", ", ".join(f"{k} {v}" for k, v in counts.items()))
        finally:
            fleet.stop()
            for r in replicas:
                r.kill()
            client.close()
