"""Chaos through the LangGraph adapter: a steady load of graph runs on worker processes that
share one SQLite store file, while workers are SIGKILLed at random moments and replaced.

The workload (``_chaos_app.py``) has journaled steps, a slow tool call beside a quick one, and
a person's approval for a third of the runs (given by the test), so random kills strike at
every boundary: just after a claim (of a new run, of a run resumed by an answer, of a run
taken over from a dead worker), inside a node, during a tool call, before a wait opens, while
runs wait. Each kill is counted by the boundary its worker was at.

Afterwards every run has completed, every acknowledged create and answer is there, every
side effect was applied exactly once (the external system dedups by idempotency key, the
call's journal key; a call is made again only when the process that made it before was
SIGKILLed before it was recorded, and never under another key), and every audit chain
verifies. The test prints its counts.

``TETHER_CHAOS_SECONDS`` sets how long the load and the kills last: 15 s by default (make
test), 300 in ``make chaos``. ``TETHER_CHAOS_SEED`` seeds the random choices (the
workload, and which worker is killed when).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import tether
from langchain_core.messages import HumanMessage
from tether import Principal, Status
from tether_langgraph import DurableGraph

from . import _external
from ._chaos_app import AGENT, build
from ._procs import spawn, stop

SECONDS = float(os.environ.get("TETHER_CHAOS_SECONDS", "15"))
WORKERS = 3
LEASE = 3.0
BACKLOG = 20  # the producer waits while this many runs are queued or running
QUEUED = [Status.SUBMITTED, Status.DELIVERED, Status.IN_PROGRESS]
LABELS = {"prepare", "charge", "notify", "ship"}  # the side effects of every run, once each


class Fleet:
    """The worker processes; a killed one is replaced at once."""

    def __init__(self, env: dict[str, str], log: Path, phases: Path) -> None:
        self.env, self.log, self.phases = env, log, phases
        self.procs: list[subprocess.Popen[bytes]] = []
        self.killed: set[int] = set()

    def spawn(self, n: int) -> None:
        proc = spawn("_chaos_app", self.env, self.log)
        if n < len(self.procs):
            self.procs[n] = proc
        else:
            self.procs.append(proc)

    def kill_one(self, rng: random.Random) -> str | None:
        """SIGKILL a worker that has started (None if none has yet); what it was doing."""
        started = [n for n, p in enumerate(self.procs) if (self.phases / str(p.pid)).exists()]
        if not started:
            return None
        n = rng.choice(started)
        proc = self.procs[n]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        self.killed.add(proc.pid)
        self.spawn(n)
        return (self.phases / str(proc.pid)).read_text()

    def stop(self) -> None:
        for proc in self.procs:
            stop(proc)


def boundary(phase: str, durable: DurableGraph) -> str:
    """The boundary a worker was at, from its phase (see ``_chaos_app.phase``), told apart
    further by the store where the phase alone cannot say: the killed worker left it so."""
    if phase == "idle":
        return "idle, its runs waiting"
    claim_where, intent_id = phase.split(" ")
    claim, where = claim_where.split("/", 1)
    if where == "claimed":
        return {
            "answer": "just after a resume was claimed",
            "new": "just after a new run was claimed",
        }.get(claim, "just after a takeover was claimed")
    if claim == "answer" and where in ("asking", "node:approve"):
        return "resumed, in the node that waited"
    if where == "asking":
        if durable.client.list_waits(intent_id):
            return "as the wait opened"
        state = durable.graph.get_state({"configurable": {"thread_id": intent_id}})
        if state.interrupts:
            return "before a wait opens (the node interrupted)"
        return "before a wait opens (the node is asking)"
    if where.startswith("tool:"):
        return "during a tool call"
    if where == "ending":
        return "as a run ended or began waiting"
    return f"in a node ({where.removeprefix('node:')})"


@contextmanager
def running(fn: Callable[[threading.Event], None]) -> Iterator[None]:
    """``fn(halt)`` in a thread until the block ends; its error, if any, is raised then."""
    halt = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn(halt)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        halt.set()
        thread.join(60)
    if errors:
        raise errors[0]


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 600)
def test_chaos(db_url: str, tmp_path: Path) -> None:
    seed = os.environ.get("TETHER_CHAOS_SEED", str(uuid.uuid4()))
    rng = random.Random(seed)
    effects, phases = tmp_path / "effects.db", tmp_path / "phases"
    _external.create(effects)
    phases.mkdir()
    client = tether.connect(db_url)  # the store exists before the workers open it
    alice = client.as_actor(Principal.human("alice"))
    env = {"TETHER_DB": db_url, "EFFECTS": str(effects), "PHASES": str(phases),
           "LEASE": str(LEASE)}  # fmt: skip
    fleet = Fleet(env, tmp_path / "workers.log", phases)
    durable = build(client)
    acked: dict[str, bool] = {}  # intent id -> asks for approval; each create acknowledged
    approved: list[str] = []  # each approval acknowledged
    kills: Counter[str] = Counter()

    def produce(halt: threading.Event) -> None:
        load = random.Random(f"{seed}/load")
        n = 0
        while not halt.is_set():
            queued = client.list_intents(to_agent=AGENT, status=QUEUED, limit=BACKLOG).items
            if len(queued) >= BACKLOG:  # a steady load, not a backlog that grows for ever
                halt.wait(0.2)
                continue
            order, asks = f"o-{n}", n % 3 == 0
            seconds = load.choice([0.02, 0.2, 0.6])
            run = {"messages": [HumanMessage(f"{order}|{seconds}")], "order": order,
                   "approval": asks}  # fmt: skip
            intent = durable.submit(run, idempotency_key=order)
            acked[intent.intent_id] = asks
            n += 1
            halt.wait(load.uniform(0.15, 0.6))

    def approve(halt: threading.Event) -> None:
        while not halt.is_set():
            for task in alice.list_tasks(limit=50):
                with suppress(tether.Conflict):
                    alice.approve(task.intent_id, comment="ship it")
                    approved.append(task.intent_id)
            halt.wait(0.2)

    try:
        for n in range(WORKERS):
            fleet.spawn(n)
        with running(approve):
            with running(produce):
                deadline = time.monotonic() + SECONDS
                while time.monotonic() < deadline:
                    time.sleep(rng.uniform(0.3, 1.5))
                    phase = fleet.kill_one(rng)
                    if phase is not None:
                        kills[boundary(phase, durable)] += 1
            # the load and the kills stop: everything acknowledged must reach its end
            pending = set(acked)
            wait_until = time.monotonic() + max(240.0, SECONDS)
            while pending and time.monotonic() < wait_until:
                time.sleep(0.2)
                pending = {i for i in pending if not client.get_intent(i).status.terminal}
    finally:
        fleet.stop()

    try:
        intents = {i: client.get_intent(i) for i in acked}
        calls = _external.executions(effects)
        applied = _external.applied(effects)
        by_key: dict[str, list[int]] = defaultdict(list)
        for call in calls:
            by_key[call.key].append(call.pid)
        again = {k: pids for k, pids in by_key.items() if len(pids) > 1}
        # a call is made again only if every process that made it before was SIGKILLed
        unexplained = {k: p for k, p in again.items() if not set(p[:-1]) <= fleet.killed}
        labels = {call.key: call.label for call in calls}
        effects_of: dict[str, Counter[str]] = {i: Counter() for i in acked}
        for key in applied:
            effects_of[key.split(":", 1)[0]][labels[key]] += 1
        twice = {i: c for i, c in effects_of.items() if any(n > 1 for n in c.values())}
        missing = {i: LABELS - set(c) for i, c in effects_of.items() if LABELS - set(c)}
        not_done = {
            i: it.status.value for i, it in intents.items() if it.status is not Status.COMPLETED
        }
        counts = {
            "seconds": SECONDS, "runs": len(acked), "approved": len(approved),
            "kills": sum(kills.values()), "re_executed_after_sigkill": len(again) - len(unexplained),
            "losses": len(not_done) + len(missing),
            "duplicates": len(unexplained) + len(twice), "seed": seed,
        }  # fmt: skip
        print("\nlanggraph chaos:", ", ".join(f"{k} {v}" for k, v in counts.items()))
        print("kills by boundary:", ", ".join(f"{k} {v}" for k, v in kills.most_common()))

        assert not not_done, f"runs that did not complete: {not_done}"
        assert not missing, f"side effects never applied: {missing}"
        assert not unexplained, f"calls made again without a SIGKILL: {unexplained}"
        assert not twice, f"side effects applied under two keys: {twice}"
        for intent_id, intent in intents.items():
            assert intent.result["status"] == "shipped"
            journal = {f"{intent_id}:{s.key}" for s in client.list_steps(intent_id)}
            assert journal == {k for k in applied if k.startswith(f"{intent_id}:")}
            waits = client.list_waits(intent_id)
            if acked[intent_id]:  # asked once, answered once, and the run got the answer
                assert [(w.outcome, w.resolved_by) for w in waits] == [
                    ("approved", Principal.human("alice").actor)
                ]
                assert intent.result["approved_by"] == waits[0].resolved_by
            else:
                assert waits == [] and "approved_by" not in intent.result
        assert sorted(approved) == sorted(i for i, asks in acked.items() if asks)
        assert set(again) <= applied
        report = client.verify_audit()
        assert report.ok, report.problems
        assert sum(kills.values()) > 0 and len(acked) > 0
    finally:
        client.close()
