"""tether against DBOS and LangGraph: one workload, the same machine, SQLite and PostgreSQL.

The workload, in every system: a workflow of three recorded steps (each a trivial function
that returns a small dict), then one durable wait that something outside the workflow
resolves, then the end.

- **tether** (``tether.Worker``): a handler with ``ctx.step`` x3 and ``ctx.wait_for_human``.
  The driver submits an intent (``create_intent``), runs the worker once (claim, start, the
  three steps, the wait opens and the handler suspends), a second client approves the task,
  and the worker runs once more (claims the resumed intent, replays the recorded steps from
  the journal, gets the closed wait, completes). In-process on SQLite and on PostgreSQL, and
  over HTTP to one ``tether serve`` on SQLite and one on PostgreSQL (development mode on
  loopback, ``TETHER_RATE_LIMIT=0``).
- **tether, client calls**: the same workload as plain client calls, as the README shows
  them (``create_intent``, ``start``, ``step`` x3, ``wait_for_human``, ``approve``,
  ``claim``, ``complete``): no worker, no replay. In-process only, for reference.
- **DBOS**: a ``@DBOS.workflow`` calling a ``@DBOS.step`` three times, then
  ``DBOS.recv``; the driver starts it with ``DBOS.start_workflow`` and, once the workflow
  has reached the wait, resolves it with ``DBOS.send`` and waits for the result.
- **LangGraph**: a graph of three nodes and a fourth that calls ``interrupt()``, compiled
  with ``SqliteSaver`` or ``PostgresSaver`` and invoked with ``durability="sync"`` (a
  finished step is on disk before the next starts, as in the others); the driver invokes it
  to the interrupt, then resumes it with ``Command(resume=...)``.

Every system keeps its documented durability defaults on each store (the output says which:
tether's SQLite store is WAL with ``synchronous=FULL``; DBOS's SQLite system database keeps
SQLite's defaults, a rollback journal with ``synchronous=FULL``; ``SqliteSaver`` switches to
WAL and keeps ``synchronous=FULL``; on PostgreSQL all three commit with the server's
``synchronous_commit``). One setting is not a default: DBOS on SQLite learns of a message by
polling the database, once a second by default, so its
``notification_listener_polling_interval_sec`` is set to 10 ms (``--dbos-poll``); at the
default every DBOS run on SQLite would wait up to a second for its message.

Columns:

1. **runs/s, 1 client**: complete runs (submit to end, including the resolved wait) per
   second, one driver thread running one workflow after another.
2. **runs/s, N threads** (8 by default): N driver threads each running workflows one after
   another, sharing one tether client (its store groups their commits) or one DBOS
   instance; LangGraph gets a compiled graph and checkpointer (own connection) per thread,
   because one sync checkpointer serializes its callers on a lock.
3. **step p50/p99**: the latency of one recorded step in the 1-client phase: from a step's
   function starting to the next thing starting (the next step's function, or the code
   before the wait), so it holds the step's durable record and the system's own work around
   it. Three samples per run.
4. **resume after a crash**: a real subprocess starts N workflows (100 by default), lets each
   record step 1 and then blocks; it is SIGKILLed. (tether's process claims each intent with
   a 1 s lease, starts it and records step 1, as a Worker does before the handler's step 2;
   the DBOS and LangGraph processes run the workflow code, blocked after step 1.) A fresh
   process then imports the system and the clock starts: tether opens the store and runs 8
   ``Worker`` threads (``poll_seconds=1``: an idle claim waits for work, and a resumed
   intent ends that wait at once) that claim the intents whose leases expired
   (the new process starts 1.5 s after the kill, so lease expiry is not in the number; with
   the default 30 s lease a restarted worker would wait up to 30 s first); DBOS runs
   ``DBOS.launch()``, whose recovery re-enqueues the workflows it finds pending; LangGraph
   has no recovery of its own, so the new process re-invokes each thread id it is given
   (8 threads). Steps 2 and 3 run, the wait opens and a resolver thread in the same process
   resolves it as soon as it is reached, and the clock stops when all N have finished (a
   monitor counts finished rows in the store every 10 ms; LangGraph's re-invocations return
   when finished). The step-1 functions must not run again; the output checks it. DBOS's
   recovery queue polls once a second, a fixed interval; an extra measurement sets it to
   10 ms through a private attribute, to show what the interval costs.

Rounds (3 by default) visit every set-up in turn, each on a fresh store (a temporary file, a
fresh PostgreSQL schema, or for DBOS a fresh database ``dbos_bench_<random>``), so load from
elsewhere on the machine falls on all of them alike; a rate is the median over rounds, the
step latencies are pooled. Every store is removed afterwards. PostgreSQL is
``postgresql://postgres@127.0.0.1:5432/test`` unless ``TETHER_BENCH_PG`` says otherwise.

Its own environment (DBOS and LangGraph stay out of tether's dev environment)::

    python3 -m venv bench/.venv-compare
    bench/.venv-compare/bin/pip install -e './core[postgres]' -r bench/compare-requirements.txt
    bench/.venv-compare/bin/python bench/compare.py            # about 10 minutes
    bench/.venv-compare/bin/python bench/compare.py --quick    # a smoke test, about 2 minutes

It prints a table, writes ``bench/results/compare.json`` and the plot ``docs/compare.png``
(``--quick`` writes ``bench/results/compare-quick.png`` instead, so a smoke test does not
replace the published figure). A benchmark, not a test: the numbers depend on the disk's sync
rate, the core count and what else the machine runs.
"""

from __future__ import annotations

import os
import sys

# the shared server helper, from this folder, before the folder leaves sys.path
from _serve import tether_serve

# Run as a script, this file's folder comes first on sys.path, where bench/langgraph.py would
# shadow the langgraph package (a namespace package: a module of that name anywhere on the
# path wins over it).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import queue  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager, suppress  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, TypedDict  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

PG_BASE = os.environ.get("TETHER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "compare.json"
PLOT = BENCH.parent / "docs" / "compare.png"
QUICK_PLOT = BENCH / "results" / "compare-quick.png"

INTENT_TYPE = "bench.compare.v1"
AGENT = "agent://bench/compare"
CRASH_LEASE = 1.0  # the killed process's leases (seconds)
WORKER_POLL = 1.0  # how long a tether Worker's idle claim waits for work (seconds)
MONITOR_POLL = 0.01  # how often the crash monitor counts finished workflows

TETHER_DONE = "SELECT count(*) FROM intents WHERE status = 'COMPLETED'"
DBOS_DONE = "SELECT count(*) FROM {schema}workflow_status WHERE status = 'SUCCESS'"

TARGET_VS_DBOS = 10.0  # tether runs/s at least 10x DBOS's on the same store
TARGET_RESUME_S = 1.0  # tether resumes 100 interrupted intents within 1 s of a restart


@dataclass(frozen=True)
class Setup:
    key: str
    system: str  # tether | tether-calls | dbos | langgraph
    store: str  # sqlite | postgres
    transport: str  # in-process | http
    label: str
    crash: bool = True


SETUPS = [
    Setup("tether-sqlite", "tether", "sqlite", "in-process", "tether, SQLite, in-process"),
    Setup("tether-http-sqlite", "tether", "sqlite", "http", "tether, SQLite, over HTTP"),
    Setup("tether-calls-sqlite", "tether-calls", "sqlite", "in-process",
          "tether client calls, SQLite", crash=False),
    Setup("dbos-sqlite", "dbos", "sqlite", "in-process", "DBOS, SQLite"),
    Setup("langgraph-sqlite", "langgraph", "sqlite", "in-process", "LangGraph, SqliteSaver"),
    Setup("tether-postgres", "tether", "postgres", "in-process", "tether, PostgreSQL, in-process"),
    Setup("tether-http-postgres", "tether", "postgres", "http", "tether, PostgreSQL, over HTTP"),
    Setup("tether-calls-postgres", "tether-calls", "postgres", "in-process",
          "tether client calls, PostgreSQL", crash=False),
    Setup("dbos-postgres", "dbos", "postgres", "in-process", "DBOS, PostgreSQL"),
    Setup("langgraph-postgres", "langgraph", "postgres", "in-process",
          "LangGraph, PostgresSaver"),
]  # fmt: skip
BY_KEY = {s.key: s for s in SETUPS}


# -- what the workflow code reports to the harness ---------------------------------------------


class Control:
    """Step marks, the waits reached, and the crash point, shared by every system's code."""

    def __init__(self) -> None:
        self.marks: dict[str, list[float]] = {}
        self.ran = [0, 0, 0, 0]  # step function executions, by step number
        self.first_resumed: float | None = None  # when a step-2 function first ran
        self.lock = threading.Lock()
        self.crash_n = 0  # > 0: block after step 1 until the process is killed
        self.at_step1 = 0
        self.all_at_step1 = threading.Event()
        self.on_wait: Callable[[str], None] = lambda run: None

    def body(self, run: str, i: int) -> dict[str, Any]:
        """The step's function: a small dict."""
        now = time.perf_counter()
        self.marks.setdefault(run, []).append(now)
        with self.lock:
            self.ran[i] += 1
            if i == 2 and self.first_resumed is None:
                self.first_resumed = now
        return {"step": i, "ok": True}

    def after_step1(self, run: str) -> None:
        """Step 1 is recorded. In the process to be killed, block here."""
        if not self.crash_n:
            return
        with self.lock:
            self.at_step1 += 1
            if self.at_step1 >= self.crash_n:
                self.all_at_step1.set()
        threading.Event().wait()

    def before_wait(self, run: str) -> None:
        marks = self.marks.get(run)
        if marks is not None and len(marks) == 3:  # not on a replay
            marks.append(time.perf_counter())

    def intervals(self, run: str) -> list[float]:
        marks = self.marks.pop(run, [])
        if len(marks) != 4:
            raise RuntimeError(f"run {run}: expected 3 steps and a wait, got {len(marks)} marks")
        return [marks[1] - marks[0], marks[2] - marks[1], marks[3] - marks[2]]


# -- the systems -------------------------------------------------------------------------------


class TetherApp:
    """tether, through a Worker (``calls=False``) or plain client calls (``calls=True``)."""

    def __init__(self, spec: dict[str, Any], ctl: Control, *, calls: bool = False) -> None:
        import tether
        from tether import HumanTask, Principal

        self.tether = tether
        self.ctl = ctl
        self.calls = calls
        self.url: str = spec["target"]["url"]
        self.http = self.url.startswith("http")
        self.client = tether.connect(self.url)
        self.approver = (
            tether.connect(self.url)  # another HTTP client (development mode: the local admin)
            if self.http
            else self.client.as_actor(Principal.human("approver@example.com"))
        )
        self.task = HumanTask(title="Go on?")
        self.states: dict[int, tuple[Any, Any, str, Any]] = {}
        self.done: set[str] = set()

    def durability(self, spec: dict[str, Any]) -> str:
        store = (
            "WAL, synchronous=FULL"
            if spec["store"] == "sqlite"
            else f"synchronous_commit={spec['pg_sync']}"
        )
        via = ", over HTTP" if self.http else ""
        return f"{store}{via}"

    def make_worker(self, client: Any, agent: str) -> Any:
        from tether.worker import Suspended

        worker = self.tether.Worker(client, agent=agent, poll_seconds=WORKER_POLL)
        ctl, task, done = self.ctl, self.task, self.done

        @worker.handler(INTENT_TYPE)
        def handle(ctx: Any) -> dict[str, Any]:
            run = ctx.intent.intent_id
            for i in (1, 2, 3):
                ctx.step(f"step-{i}", functools.partial(ctl.body, run, i))
                if i == 1:
                    ctl.after_step1(run)
            ctl.before_wait(run)
            try:
                wait = ctx.wait_for_human(task, key="go")
            except Suspended:
                ctl.on_wait(run)
                raise
            done.add(run)
            return {"outcome": wait.outcome}

        return worker

    def prepare(self, k: int) -> None:
        if k in self.states:
            return
        client = self.tether.connect(self.url) if self.http else self.client
        approver = self.tether.connect(self.url) if self.http else self.approver
        agent = f"{AGENT}-{k}"  # one agent per driver thread: its claims find its own intents
        self.states[k] = (client, approver, agent, self.make_worker(client, agent))

    def one(self, k: int) -> list[float]:
        client, approver, agent, worker = self.states[k]
        run = client.create_intent(INTENT_TYPE, agent, {"k": k}).intent_id
        if self.calls:
            lease = client.start(run)
            for i in (1, 2, 3):
                client.step(run, f"step-{i}", functools.partial(self.ctl.body, run, i), lease=lease)
            self.ctl.before_wait(run)
            client.wait_for_human(run, self.task, key="go", lease=lease)
            approver.approve(run)
            claim = client.claim(agent)
            if claim is None or claim.intent.intent_id != run or claim.last_wait is None:
                raise RuntimeError(f"intent {run} was not handed back after its approval")
            client.complete(run, {"outcome": claim.last_wait.outcome}, lease=claim.lease)
        else:
            if not worker.run_once():
                raise RuntimeError(f"the worker claimed nothing for {run}")
            approver.approve(run)
            if not worker.run_once() or run not in self.done:
                raise RuntimeError(f"intent {run} did not complete")
            self.done.discard(run)
        return self.ctl.intervals(run)

    def close(self) -> None:
        for client, approver, _, _ in self.states.values():
            if self.http:
                client.close()
                approver.close()
        self.approver.close()
        self.client.close()


class DbosApp:
    """DBOS: a workflow of three steps and ``DBOS.recv``, resolved with ``DBOS.send``."""

    def __init__(self, spec: dict[str, Any], ctl: Control, *, recovering: bool = False) -> None:
        from dbos import DBOS, DBOSConfig

        self.ctl = ctl
        self.url: str = spec["target"]["url"]
        self.reached: dict[str, threading.Event] = {}
        if not recovering:  # a recovering process resolves through its own ctl.on_wait
            ctl.on_wait = self._reached
        config: DBOSConfig = {
            "name": "bench-compare",
            "system_database_url": self.url,
            "application_version": "bench-compare",
            "log_level": "WARNING",
        }
        if spec["store"] == "sqlite":
            config["notification_listener_polling_interval_sec"] = spec["dbos_poll"]
        dbos = DBOS(config=config)
        if spec.get("dbos_queue_poll"):
            # Private: DBOS's internal queue (recovery goes through it) polls every second.
            dbos._registry.get_internal_queue()._polling_interval_sec = spec["dbos_queue_poll"]

        @DBOS.step()
        def bench_step(run: str, i: int) -> dict[str, Any]:
            return ctl.body(run, i)

        @DBOS.workflow()
        def bench_workflow(k: int) -> dict[str, Any]:
            run = DBOS.workflow_id
            assert run is not None
            s1 = bench_step(run, 1)
            ctl.after_step1(run)
            s2 = bench_step(run, 2)
            s3 = bench_step(run, 3)
            ctl.before_wait(run)
            ctl.on_wait(run)
            answer = DBOS.recv("go", timeout_seconds=3600)
            return {"answer": answer, "steps": [s1, s2, s3]}

        self.workflow = bench_workflow
        DBOS.launch()

    def _reached(self, run: str) -> None:
        event = self.reached.get(run)
        if event is not None:
            event.set()

    def durability(self, spec: dict[str, Any]) -> str:
        if spec["store"] == "sqlite":
            path = self.url.removeprefix("sqlite:///")
            conn = sqlite3.connect(path)  # DBOS sets neither pragma: a connection's defaults
            try:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                sync = conn.execute("PRAGMA synchronous").fetchone()[0]
            finally:
                conn.close()
            return f"journal_mode={mode}, synchronous={_SYNC.get(sync, sync)}"
        return f"synchronous_commit={spec['pg_sync']}"

    def start(self, run: str, k: int) -> Any:
        from dbos import DBOS, SetWorkflowID

        with SetWorkflowID(run):
            return DBOS.start_workflow(self.workflow, k)

    def prepare(self, k: int) -> None:
        pass

    def one(self, k: int) -> list[float]:
        from dbos import DBOS

        run = str(uuid.uuid4())
        reached = self.reached[run] = threading.Event()
        handle = self.start(run, k)
        if not reached.wait(120):
            raise RuntimeError(f"workflow {run} did not reach its wait")
        del self.reached[run]
        DBOS.send(run, "approved", topic="go")
        out = handle.get_result()
        if out["answer"] != "approved":
            raise RuntimeError(f"workflow {run} ended with {out!r}")
        return self.ctl.intervals(run)

    def close(self) -> None:
        from dbos import DBOS

        DBOS.destroy()


class LGState(TypedDict, total=False):
    k: int
    s1: dict[str, Any]
    s2: dict[str, Any]
    s3: dict[str, Any]
    answer: str


class LangGraphApp:
    """LangGraph: three nodes, a node that calls ``interrupt()``, a sync checkpointer."""

    def __init__(self, spec: dict[str, Any], ctl: Control) -> None:
        from langgraph.config import get_config
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import interrupt

        self.ctl = ctl
        self.store: str = spec["store"]
        self.target: dict[str, Any] = spec["target"]
        self.connections: list[Any] = []
        self.apps: dict[int, Any] = {}
        self.set_up = False

        def thread_id() -> str:
            return str(get_config()["configurable"]["thread_id"])

        def step(i: int) -> Callable[[LGState], dict[str, Any]]:
            def node(state: LGState) -> dict[str, Any]:
                run = thread_id()
                if i == 2:
                    ctl.after_step1(run)
                return {f"s{i}": ctl.body(run, i)}

            return node

        def wait(state: LGState) -> dict[str, Any]:
            ctl.before_wait(thread_id())
            return {"answer": interrupt("Go on?")}

        builder = StateGraph(LGState)
        for i in (1, 2, 3):
            builder.add_node(f"step-{i}", step(i))
        builder.add_node("wait", wait)
        builder.add_edge(START, "step-1")
        builder.add_edge("step-1", "step-2")
        builder.add_edge("step-2", "step-3")
        builder.add_edge("step-3", "wait")
        builder.add_edge("wait", END)
        self.builder = builder

    def saver(self) -> Any:
        """A checkpointer on its own connection."""
        if self.store == "sqlite":
            from langgraph.checkpoint.sqlite import SqliteSaver

            conn = sqlite3.connect(self.target["path"], check_same_thread=False)
            saver: Any = SqliteSaver(conn)
        else:
            import psycopg
            from langgraph.checkpoint.postgres import PostgresSaver
            from psycopg.rows import dict_row

            conn = psycopg.connect(
                self.target["url"], autocommit=True, prepare_threshold=0, row_factory=dict_row
            )
            saver = PostgresSaver(conn)
        self.connections.append(conn)
        if not self.set_up:
            saver.setup()
            self.set_up = True
        return saver

    def durability(self, spec: dict[str, Any]) -> str:
        if self.store == "sqlite":
            self.saver().setup()  # SqliteSaver sets WAL in setup()
            conn = self.connections[-1]
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            sync = conn.execute("PRAGMA synchronous").fetchone()[0]
            return f'journal_mode={mode}, synchronous={_SYNC.get(sync, sync)}, durability="sync"'
        return f'synchronous_commit={spec["pg_sync"]}, autocommit, durability="sync"'

    def prepare(self, k: int) -> None:
        if k not in self.apps:
            self.apps[k] = self.builder.compile(checkpointer=self.saver())

    def finish(self, app: Any, run: str, first: Any) -> None:
        """Invoke to the interrupt, then resume it from outside the graph."""
        from langgraph.types import Command

        config = {"configurable": {"thread_id": run}}
        out = app.invoke(first, config, durability="sync")
        if "__interrupt__" not in out:
            raise RuntimeError(f"thread {run} did not stop at its interrupt: {out!r}")
        out = app.invoke(Command(resume="approved"), config, durability="sync")
        if out.get("answer") != "approved":
            raise RuntimeError(f"thread {run} ended with {out!r}")

    def one(self, k: int) -> list[float]:
        run = str(uuid.uuid4())
        self.finish(self.apps[k], run, {"k": k})
        return self.ctl.intervals(run)

    def close(self) -> None:
        for conn in self.connections:
            conn.close()


_SYNC = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def _preimport(system: str) -> None:
    """Import a system's modules (the crash clock starts after this)."""
    if system.startswith("tether"):
        import tether.worker  # noqa: F401
    elif system == "dbos":
        import dbos  # noqa: F401
    else:
        import langgraph.checkpoint.postgres
        import langgraph.checkpoint.sqlite
        import langgraph.graph  # noqa: F401


def make_app(spec: dict[str, Any], ctl: Control) -> Any:
    system = spec["system"]
    if system == "tether":
        return TetherApp(spec, ctl)
    if system == "tether-calls":
        return TetherApp(spec, ctl, calls=True)
    if system == "dbos":
        return DbosApp(spec, ctl)
    return LangGraphApp(spec, ctl)


def _counter(count: dict[str, str]) -> Callable[[], int]:
    """Count finished workflows straight from the store (the crash monitor)."""
    if count["kind"] == "sqlite":
        conn = sqlite3.connect(count["dsn"], timeout=30)

        def sqlite_count() -> int:
            return int(conn.execute(count["sql"]).fetchone()[0])

        return sqlite_count
    import psycopg

    pg = psycopg.connect(count["dsn"], autocommit=True)

    def pg_count() -> int:
        row = pg.execute(count["sql"]).fetchone()
        return int(row[0]) if row else 0

    return pg_count


# -- child processes ---------------------------------------------------------------------------


def _phase(app: Any, threads: int, seconds: float) -> dict[str, Any]:
    """``threads`` drivers run workflows back to back for ``seconds``; in-flight runs finish."""
    for k in range(threads):
        app.prepare(k)
    barrier = threading.Barrier(threads + 1)
    counts = [0] * threads
    steps: list[float] = []
    errors: list[BaseException] = []
    stop_at = [0.0]

    def drive(k: int) -> None:
        barrier.wait()
        try:
            while time.perf_counter() < stop_at[0] and not errors:
                steps.extend(app.one(k))
                counts[k] += 1
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=drive, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    start = time.perf_counter()
    stop_at[0] = start + seconds
    barrier.wait()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return {"threads": threads, "runs": sum(counts), "seconds": elapsed, "steps_ms": steps}


def child_throughput(spec: dict[str, Any]) -> dict[str, Any]:
    ctl = Control()
    app = make_app(spec, ctl)
    try:
        durability = app.durability(spec)
        warm = _phase(app, 1, spec["warmup"])
        warm_n = _phase(app, spec["threads"], spec["warmup"])
        seq = _phase(app, 1, spec["seconds"])
        conc = _phase(app, spec["threads"], spec["seconds"])
        for phase in (seq, conc):
            phase["steps_ms"] = [round(s * 1000, 4) for s in phase["steps_ms"]]
        count = spec["target"].get("count")
        checked = None
        if count:  # every run the drivers counted is finished in the store
            checked = _counter(count)()
            ctl_runs = sum(p["runs"] for p in (warm, warm_n, seq, conc))
            if checked != ctl_runs:
                raise RuntimeError(f"{checked} finished in the store, {ctl_runs} counted")
        return {"durability": durability, "seq": seq, "conc": conc, "finished_in_store": checked}
    finally:
        app.close()


def child_crash_run(spec: dict[str, Any]) -> None:
    """Start N workflows, let each record step 1, print READY and the ids, block until killed."""
    n = spec["n"]
    ctl = Control()
    ctl.crash_n = n
    if spec["system"] == "tether":
        import tether

        client = tether.connect(spec["target"]["url"])
        ids = [client.create_intent(INTENT_TYPE, AGENT, {"n": j}).intent_id for j in range(n)]
        for run in ids:  # what a Worker with lease_seconds=1 does before the handler's step 2
            claim = client.claim_intent(run, lease_seconds=CRASH_LEASE)
            client.start(run, lease=claim.lease)
            client.step(run, "step-1", functools.partial(ctl.body, run, 1), lease=claim.lease)
    elif spec["system"] == "dbos":
        app = DbosApp(spec, ctl)
        ids = [str(uuid.uuid4()) for _ in range(n)]
        for j, run in enumerate(ids):
            app.start(run, j)
        if not ctl.all_at_step1.wait(600):
            raise RuntimeError("the workflows did not all record step 1")
    else:
        lg = LangGraphApp(spec, ctl)
        lg.prepare(0)  # one checkpointer for all: N connections could exceed the server's limit
        ids = [str(uuid.uuid4()) for _ in range(n)]
        for j, run in enumerate(ids):
            threading.Thread(
                target=lg.finish, args=(lg.apps[0], run, {"k": j}), daemon=True
            ).start()
        if not ctl.all_at_step1.wait(600):
            raise RuntimeError("the threads did not all record step 1")
    sys.stdout.write("READY " + json.dumps(ids) + "\n")
    sys.stdout.flush()
    threading.Event().wait()


def child_crash_recover(spec: dict[str, Any]) -> dict[str, Any]:
    """A fresh process: recover the interrupted workflows and finish them; time it."""
    ids: list[str] = spec["ids"]
    n, threads, system = len(ids), spec["threads"], spec["system"]
    began = time.perf_counter()
    _preimport(system)
    count = None if system == "langgraph" else _counter(spec["target"]["count"])  # harness
    t0 = time.perf_counter()  # the clock starts: imports done, recovery begins
    ctl = Control()
    waits: queue.Queue[str | None] = queue.Queue()
    ctl.on_wait = waits.put
    stop = threading.Event()
    background: list[threading.Thread] = []
    errors: list[BaseException] = []

    def keep(target: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                target()
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=guarded, daemon=True)
        thread.start()
        background.append(thread)

    def resolver(resolve: Callable[[str], Any]) -> Callable[[], None]:
        def loop() -> None:
            while (run := waits.get()) is not None:
                resolve(run)

        return loop

    opened = None
    workers: list[Any] = []
    app: Any = None
    if system == "tether":
        app = TetherApp(spec, ctl)
        opened = time.perf_counter()
        keep(resolver(lambda run: app.approver.approve(run)))
        for _ in range(threads):
            client = app.tether.connect(app.url) if app.http else app.client
            worker = app.make_worker(client, AGENT)
            workers.append(worker)
            keep(functools.partial(worker.run, client))
    elif system == "dbos":
        from dbos import DBOS

        app = DbosApp(spec, ctl, recovering=True)  # DBOS.launch() starts recovery
        opened = time.perf_counter()
        keep(resolver(lambda run: DBOS.send(run, "approved", topic="go")))
    else:
        app = LangGraphApp(spec, ctl)
        for k in range(threads):
            app.prepare(k)
        opened = time.perf_counter()
        todo: queue.Queue[str] = queue.Queue()
        for run in ids:
            todo.put(run)

        def reinvoke(k: int) -> None:
            while True:
                try:
                    run = todo.get_nowait()
                except queue.Empty:
                    return
                app.finish(app.apps[k], run, None)  # None: continue from the last checkpoint

        for k in range(threads):
            keep(functools.partial(reinvoke, k))

    if count is None:
        for thread in background:
            thread.join(600)
        if errors:
            raise errors[0]
    else:
        deadline = time.monotonic() + 600
        while count() < n:
            if errors:
                raise errors[0]
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {count()} of {n} finished")
            stop.wait(MONITOR_POLL)
    done = time.perf_counter()
    waits.put(None)
    for worker in workers:
        worker.stop()
    result = {
        "n": n,
        "seconds": done - t0,
        "open_seconds": opened - t0,
        "first_step2_seconds": None if ctl.first_resumed is None else ctl.first_resumed - t0,
        "import_seconds": t0 - began,
        "step_runs": {"1": ctl.ran[1], "2": ctl.ran[2], "3": ctl.ran[3]},
    }
    if system == "tether":
        for thread in background:
            thread.join(10)
    with suppress(Exception):
        app.close()
    return result


def child_main(role: str, spec_text: str) -> int:
    spec = json.loads(spec_text)
    try:
        if role == "crash-run":
            child_crash_run(spec)
        elif role == "crash-recover":
            spec["ids"] = json.loads(Path(spec.pop("ids_file")).read_text())
            out = child_crash_recover(spec)
        else:
            out = child_throughput(spec)
        sys.stdout.write("RESULT " + json.dumps(out) + "\n")
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: background threads of the systems may linger


# -- stores, servers and the parent ------------------------------------------------------------


@contextmanager
def serve(db_url: str, log: Path) -> Iterator[str]:
    """``tether serve`` on ``db_url`` (development mode on loopback, rate limit off)."""
    with tether_serve(db_url, log=log) as served:
        yield served.url


def _pg_admin(sql: str, patience: float = 120.0) -> None:
    """Run one statement as the admin; ride out a PostgreSQL restart (others share it)."""
    import psycopg

    deadline = time.monotonic() + patience
    while True:
        try:
            with psycopg.connect(PG_BASE, autocommit=True, connect_timeout=5) as conn:
                conn.execute(sql)
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _with_path(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _with_schema(url: str, schema: str) -> str:
    joiner = "&" if urlsplit(url).query else "?"
    return f"{url}{joiner}options=-csearch_path%3D{schema}"


@contextmanager
def pg_schema() -> Iterator[str]:
    schema = f"compare_{uuid.uuid4().hex[:12]}"
    _pg_admin(f"CREATE SCHEMA {schema}")
    try:
        yield _with_schema(PG_BASE, schema)
    finally:
        _pg_admin(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@contextmanager
def _tether_store(setup: Setup, tmp: Path, name: str) -> Iterator[dict[str, Any]]:
    if setup.store == "sqlite":
        path = tmp / f"{name}.db"
        db = f"sqlite:///{path}"
        count = {"kind": "sqlite", "dsn": str(path), "sql": TETHER_DONE}
        if setup.transport == "http":
            with serve(db, tmp / "servers.log") as url:
                yield {"url": url, "count": count}
        else:
            yield {"url": db, "count": count}
        return
    with pg_schema() as db:
        count = {"kind": "pg", "dsn": db, "sql": TETHER_DONE}
        if setup.transport == "http":
            with serve(db, tmp / "servers.log") as url:
                yield {"url": url, "count": count}
        else:
            yield {"url": db, "count": count}


@contextmanager
def provision(setup: Setup, tmp: Path) -> Iterator[dict[str, Any]]:
    """A fresh store for one set-up (and its server), removed afterwards."""
    name = f"{setup.key}-{uuid.uuid4().hex[:8]}"
    if setup.system.startswith("tether"):
        with _tether_store(setup, tmp, name) as target:
            yield target
    elif setup.system == "dbos":
        if setup.store == "sqlite":
            path = tmp / f"{name}.sqlite"
            count = {"kind": "sqlite", "dsn": str(path), "sql": DBOS_DONE.format(schema="")}
            yield {"url": f"sqlite:///{path}", "count": count}
        else:
            database = f"dbos_bench_{uuid.uuid4().hex[:12]}"  # DBOS creates it on launch
            url = _with_path(PG_BASE, database)
            count = {"kind": "pg", "dsn": url, "sql": DBOS_DONE.format(schema="dbos.")}
            try:
                yield {"url": url, "count": count}
            finally:
                _pg_admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    elif setup.store == "sqlite":
        yield {"path": str(tmp / f"{name}.db")}
    else:
        with pg_schema() as url:
            yield {"url": url}


def _spec(setup: Setup, target: dict[str, Any], args: argparse.Namespace, **more: Any) -> str:
    return json.dumps(
        {
            "system": setup.system, "store": setup.store, "target": target,
            "threads": args.threads, "dbos_poll": args.dbos_poll, "pg_sync": args.pg_sync,
            **more,
        }
    )  # fmt: skip


def run_child(role: str, spec: str, timeout: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", role, spec],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
    raise RuntimeError(f"{role} child failed (exit {proc.returncode}):\n{tail}")


def crash_test(
    setup: Setup, args: argparse.Namespace, tmp: Path, queue_poll: float | None = None
) -> dict[str, Any]:
    with provision(setup, tmp) as target:
        spec = _spec(setup, target, args, n=args.crash_n, dbos_queue_poll=queue_poll)
        log = tmp / f"{setup.key}-crash.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--child", "crash-run", spec],
                stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
        try:
            assert proc.stdout is not None
            timer = threading.Timer(600, proc.kill)
            timer.start()
            line = proc.stdout.readline()
            timer.cancel()
            if not line.startswith("READY "):
                raise RuntimeError(f"the crash child did not get ready: {log.read_text()[-2000:]}")
            ids = json.loads(line[len("READY ") :])
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
        ids_file = tmp / f"{setup.key}-ids.json"
        ids_file.write_text(json.dumps(ids))
        time.sleep(CRASH_LEASE + 0.5)  # every set-up waits alike; tether's leases have expired
        spec = _spec(setup, target, args, ids_file=str(ids_file), dbos_queue_poll=queue_poll)
        return run_child("crash-recover", spec, timeout=900)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for dist in ("tether", "dbos", "langgraph", "langgraph-checkpoint-sqlite",
                 "langgraph-checkpoint-postgres", "psycopg"):  # fmt: skip
        with suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def _pg_started() -> str:
    """When the PostgreSQL server last started: a change means someone restarted it."""
    import psycopg

    deadline = time.monotonic() + 120
    while True:
        try:
            with psycopg.connect(PG_BASE, autocommit=True, connect_timeout=5) as conn:
                row = conn.execute("SELECT pg_postmaster_start_time()::text").fetchone()
            return str(row[0]) if row else "?"
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _pg_facts() -> tuple[str, str]:
    import psycopg

    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        sync = conn.execute("SHOW synchronous_commit").fetchone()
        version = conn.execute("SHOW server_version").fetchone()
    return (str(sync[0]) if sync else "?", str(version[0]) if version else "?")


# -- report ------------------------------------------------------------------------------------


def summarize(
    rounds: dict[str, list[dict[str, Any]]], crashes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    resume = {c["key"]: c["result"] for c in crashes if not c["variant"]}
    rows = []
    for setup in SETUPS:
        got = rounds.get(setup.key)
        if not got:
            continue
        seq = [r["seq"]["runs"] / r["seq"]["seconds"] for r in got]
        conc = [r["conc"]["runs"] / r["conc"]["seconds"] for r in got]
        steps = [s for r in got for s in r["seq"]["steps_ms"]]
        conc_steps = [s for r in got for s in r["conc"]["steps_ms"]]
        rows.append(
            {
                "key": setup.key, "label": setup.label, "system": setup.system,
                "store": setup.store, "transport": setup.transport,
                "durability": got[0]["durability"],
                "runs_per_s_1": statistics.median(seq),
                "runs_per_s_n": statistics.median(conc),
                "rounds_runs_per_s_1": [round(x, 1) for x in seq],
                "rounds_runs_per_s_n": [round(x, 1) for x in conc],
                "step_p50_ms": statistics.median(steps), "step_p99_ms": _pct(steps, 0.99),
                "step_samples": len(steps),
                "step_p50_ms_n": statistics.median(conc_steps),
                "step_p99_ms_n": _pct(conc_steps, 0.99),
                "resume": resume.get(setup.key),
            }
        )  # fmt: skip
    return rows


def _targets(rows: list[dict[str, Any]], n: int) -> list[tuple[str, str, bool]]:
    """The issue's targets, judged on the Worker rows; the client-call rows for reference."""
    by = {r["key"]: r for r in rows}
    out = []
    cols = (("runs_per_s_1", "1 client"), ("runs_per_s_n", "N threads"))
    for store in ("sqlite", "postgres"):
        d, lg = by.get(f"dbos-{store}"), by.get(f"langgraph-{store}")
        for key, name in ((f"tether-{store}", "tether"), (f"tether-calls-{store}", "calls")):
            t = by.get(key)
            if t is None:
                continue
            for col, what in cols:
                if d:
                    ratio = t[col] / d[col]
                    out.append(
                        (
                            f"{name} >= {TARGET_VS_DBOS:g}x DBOS, {store}, {what}",
                            f"{ratio:.1f}x ({t[col]:.0f} vs {d[col]:.0f} runs/s)",
                            ratio >= TARGET_VS_DBOS,
                        )
                    )
                if lg:
                    out.append(
                        (
                            f"{name} ahead of LangGraph, {store}, {what}",
                            f"{t[col] / lg[col]:.1f}x ({t[col]:.0f} vs {lg[col]:.0f} runs/s)",
                            t[col] > lg[col],
                        )
                    )
        t = by.get(f"tether-{store}")
        if t and t["resume"]:
            s = t["resume"]["seconds"]
            out.append(
                (
                    f"tether resumes {n} interrupted intents <= {TARGET_RESUME_S:g} s, {store}",
                    f"{s:.2f} s" + ("" if n >= 100 else " (the target is for 100)"),
                    s <= TARGET_RESUME_S and n >= 100,
                )
            )
    return out


def print_report(
    rows: list[dict[str, Any]],
    crashes: list[dict[str, Any]],
    targets: list[tuple[str, str, bool]],
    args: argparse.Namespace,
) -> None:
    n, threads = args.crash_n, args.threads
    print()
    print("Three recorded steps, then one durable wait resolved from outside, then the end.")
    head = f"{'set-up':<33}{'runs/s':>9}{'runs/s':>9}{'step p50':>10}{'step p99':>10}{'resume':>9}"
    print(head)
    print(f"{'':<33}{'1 client':>9}{f'{threads} thr.':>9}{'ms':>10}{'ms':>10}{f'{n}, s':>9}")
    print("-" * len(head))
    for r in rows:
        resume = f"{r['resume']['seconds']:.2f}" if r["resume"] else "-"
        print(
            f"{r['label']:<33}{r['runs_per_s_1']:>9.1f}{r['runs_per_s_n']:>9.1f}"
            f"{r['step_p50_ms']:>10.2f}{r['step_p99_ms']:>10.2f}{resume:>9}"
        )
    print(
        f"runs/s: complete runs (submit to end, the wait resolved) per second, median of "
        f"{args.rounds} round(s) of {args.seconds:g} s; 1 client = one driver thread, "
        f"{threads} thr. = {threads} driver threads (LangGraph: a checkpointer and connection "
        "each). step: one recorded step (step function start to the next one's), 1-client "
        "phase. resume: below."
    )
    print()
    print("Durability of each set-up (each system's defaults):")
    for r in rows:
        print(f"  {r['label']:<33}{r['durability']}")
    print(
        f"  DBOS on SQLite polls for messages every {args.dbos_poll:g} s here (its default: 1 s); "
        f"an idle tether Worker's claim waits up to {WORKER_POLL:g} s for work (new or resumed "
        "work ends the wait at once)."
    )
    if crashes:
        print()
        print(
            f"Resume after a crash: {n} workflows SIGKILLed after step 1; the clock runs from "
            "the new process's start (after imports) until all have finished."
        )
        print(f"  {'set-up':<50}{'total s':>8}{'open s':>8}{'step 2 at s':>12}{'step runs':>12}")
        for c in crashes:
            res = c["result"]
            first = res["first_step2_seconds"]
            runs = res["step_runs"]
            print(
                f"  {c['label']:<50}{res['seconds']:>8.2f}{res['open_seconds']:>8.2f}"
                f"{'-' if first is None else f'{first:.2f}':>12}"
                f"{runs['1']:>6}/{runs['2']}/{runs['3']}"
            )
        print(
            "  open: tether.connect, DBOS(...) + DBOS.launch(), or the checkpointers. step 2 at: "
            "the first step-2 function. step runs: step functions run in the new process (step "
            f"1/2/3; want 0/{n}/{n}). LangGraph has no recovery of its own: the new process "
            "re-invokes each thread id it is given."
        )
    print()
    print("Targets (tether = the Worker rows; calls = tether client calls, for reference):")
    for name, value, ok in targets:
        print(f"  {name:<56}{value:<40}{'yes' if ok else 'NO'}")


def plot(
    rows: list[dict[str, Any]],
    crashes: list[dict[str, Any]],
    args: argparse.Namespace,
    facts: dict[str, Any],
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    colors = {"tether": "#1f5fa8", "tether-calls": "#7aa6dc", "dbos": "#d9822b",
              "langgraph": "#3a9a4a"}  # fmt: skip
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(15, 8), gridspec_kw={"width_ratios": [1.35, 1]}
    )
    ordered = rows[::-1]  # matplotlib draws bottom-up; the table reads top-down
    h = 0.38
    for y, r in enumerate(ordered):
        c = colors[r["system"]]
        one, many = r["runs_per_s_1"], r["runs_per_s_n"]
        left.barh(y + h / 2, one, h, color=c, alpha=0.4)
        left.barh(y - h / 2, many, h, color=c)
        left.text(one * 1.05, y + h / 2, f"{one:.0f}", va="center", fontsize=8.5)
        left.text(many * 1.05, y - h / 2, f"{many:.0f}", va="center", fontsize=8.5,
                  fontweight="bold")  # fmt: skip
    left.set_yticks(range(len(ordered)), [r["label"] for r in ordered], fontsize=9.5)
    _separate_stores(left, [r["store"] for r in ordered])
    left.set_xscale("log")
    left.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    left.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    left.xaxis.set_minor_formatter(NullFormatter())
    values = [v for r in rows for v in (r["runs_per_s_1"], r["runs_per_s_n"])]
    left.set_xlim(min(values) / 1.6, max(values) * 1.8)
    left.set_xlabel("complete runs per second (log scale; more is better)")
    left.set_title(
        f"Runs per second: light bar = 1 client, dark bar = {args.threads} threads", fontsize=11
    )
    left.grid(axis="x", which="major", alpha=0.3)
    fig.legend(
        handles=[
            Patch(color=colors["tether"], label="tether (Worker)"),
            Patch(color=colors["tether-calls"], label="tether (client calls)"),
            Patch(color=colors["dbos"], label="DBOS"),
            Patch(color=colors["langgraph"], label="LangGraph"),
        ],
        loc="upper center", bbox_to_anchor=(0.5, 0.945), ncol=4, fontsize=9, frameon=False,
    )  # fmt: skip

    shown = crashes[::-1]
    longest = max([c["result"]["seconds"] for c in shown] + [TARGET_RESUME_S])
    for y, c in enumerate(shown):
        secs = c["result"]["seconds"]
        right.barh(y, secs, 0.6, color=colors[c["system"]], alpha=0.45 if c["variant"] else 1.0)
        right.text(secs + longest * 0.015, y, f"{secs:.2f} s", va="center", fontsize=8.5)
    right.set_yticks(range(len(shown)), [c["short"] for c in shown], fontsize=9.5)
    _separate_stores(right, [BY_KEY[c["key"]].store for c in shown])
    right.axvline(TARGET_RESUME_S, color="#555", linestyle="--", linewidth=1)
    right.text(TARGET_RESUME_S, -0.55, " 1 s", fontsize=8, color="#555", va="bottom")
    right.set_xlim(0, longest * 1.2)
    right.set_xlabel("seconds to all finished (less is better)")
    right.set_title(
        f"Resume {args.crash_n} workflows killed after step 1\n(clock: new process, after imports)",
        fontsize=11,
    )
    right.grid(axis="x", alpha=0.3)

    fig.suptitle(
        "Three recorded steps, one durable wait resolved from outside: tether, DBOS, LangGraph",
        fontsize=13,
    )
    v = facts["versions"]
    fig.text(
        0.01, 0.012,
        f"One run, {facts['when']}, {facts['cpus']} CPUs shared with other work (noisy). "
        f"Python {v['python']}, SQLite {v['sqlite']}, PostgreSQL {facts['pg_version']}; "
        f"tether {v.get('tether', '?')}, DBOS {v.get('dbos', '?')}, LangGraph "
        f"{v.get('langgraph', '?')}. Durability defaults of each system (LangGraph "
        'durability="sync"). * DBOS\'s recovery queue polls every 1 s; the lighter bar sets '
        "it to 10 ms (a private attribute). LangGraph: re-invoked by the application. "
        "bench/compare.py",
        fontsize=7.5, color="#444", wrap=True,
    )  # fmt: skip
    fig.tight_layout(rect=(0, 0.04, 1, 0.92))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _separate_stores(ax: Any, stores: list[str]) -> None:
    """A rule between the SQLite and the PostgreSQL set-ups."""
    for y in range(1, len(stores)):
        if stores[y] != stores[y - 1]:
            ax.axhline(y - 0.5, color="#999", linewidth=0.8)
    ax.set_ylim(-0.6, len(stores) - 0.4)


_SHORT = {
    "tether-sqlite": "tether, SQLite",
    "tether-postgres": "tether, PostgreSQL",
    "tether-http-sqlite": "tether HTTP, SQLite",
    "tether-http-postgres": "tether HTTP, PostgreSQL",
    "dbos-sqlite": "DBOS, SQLite",
    "dbos-postgres": "DBOS, PostgreSQL",
    "langgraph-sqlite": "LangGraph, SqliteSaver",
    "langgraph-postgres": "LangGraph, PostgresSaver",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a smoke test: short and small")
    parser.add_argument("--rounds", type=int, help="rounds over all set-ups (default 3)")
    parser.add_argument("--seconds", type=float, help="length of each phase (default 3)")
    parser.add_argument("--threads", type=int, default=8, help="concurrent drivers (default 8)")
    parser.add_argument("--crash-n", type=int, help="workflows killed mid-way (default 100)")
    parser.add_argument(
        "--dbos-poll", type=float, default=0.01,
        help="DBOS on SQLite: notification polling interval, seconds (DBOS default 1.0)",
    )  # fmt: skip
    parser.add_argument("--only", help="comma-separated set-up keys (default: all)")
    parser.add_argument("--no-crash", action="store_true", help="skip the crash measurements")
    args = parser.parse_args(argv)
    if args.child:
        return child_main(*args.child)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.seconds = args.seconds or (0.8 if args.quick else 3.0)
    args.crash_n = args.crash_n or (20 if args.quick else 100)
    warmup = 0.3 if args.quick else 1.0
    chosen = [BY_KEY[k] for k in args.only.split(",")] if args.only else SETUPS
    args.pg_sync, pg_version = _pg_facts()
    began = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="tether-compare-"))
    rounds: dict[str, list[dict[str, Any]]] = {}
    crashes: list[dict[str, Any]] = []
    errors: list[str] = []

    def attempt(what: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """Run a measurement; once more if it fails or PostgreSQL restarted meanwhile (others
        share the server: a restart disturbs every set-up, SQLite ones included, less)."""
        for n in (1, 2):
            try:
                before = _pg_started()
                out = fn()
                if _pg_started() != before:
                    raise RuntimeError("PostgreSQL restarted during the measurement")
                return out
            except Exception as exc:
                note = f"{what}, attempt {n}: {str(exc).strip().splitlines()[-1][:300]}"
                print(f"  failed: {note}", flush=True)
                errors.append(note)
        return None

    try:
        for r in range(args.rounds):
            for setup in chosen:
                print(f"round {r + 1}/{args.rounds}: {setup.label} ...", flush=True)

                def throughput(setup: Setup = setup) -> dict[str, Any]:
                    with provision(setup, tmp) as target:
                        spec = _spec(setup, target, args, seconds=args.seconds, warmup=warmup)
                        return run_child("throughput", spec, timeout=600)

                result = attempt(f"{setup.label}, round {r + 1}", throughput)
                if result is not None:
                    rounds.setdefault(setup.key, []).append(result)
        for setup in chosen:
            if not setup.crash or args.no_crash:
                continue
            variants: list[tuple[str, str, float | None]] = [(setup.label, _SHORT[setup.key], None)]
            if setup.system == "dbos":
                variants.append(
                    (
                        f"{setup.label}, recovery queue polled every 10 ms",
                        f"{_SHORT[setup.key]}, queue poll 10 ms*",
                        0.01,
                    )
                )
            for label, short, queue_poll in variants:
                print(f"crash and resume: {label}, {args.crash_n} workflows ...", flush=True)
                got = attempt(
                    f"crash and resume: {label}",
                    functools.partial(crash_test, setup, args, tmp, queue_poll),
                )
                if got is not None:
                    crashes.append(
                        {
                            "key": setup.key, "label": label, "short": short,
                            "system": setup.system, "variant": queue_poll is not None,
                            "result": got,
                        }
                    )  # fmt: skip
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    rows = summarize(rounds, crashes)
    targets = _targets(rows, args.crash_n)
    print_report(rows, crashes, targets, args)
    facts = {
        "when": time.strftime("%Y-%m-%d", time.gmtime(began)),
        "cpus": os.cpu_count(),
        "versions": _versions(),
        "pg_version": pg_version.split()[0],
        "platform": platform.platform(),
    }
    doc = {
        "benchmark": "compare",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began)),
        "machine": facts,
        "config": {
            "quick": args.quick, "rounds": args.rounds, "seconds_per_phase": args.seconds,
            "threads": args.threads, "crash_n": args.crash_n, "crash_lease_s": CRASH_LEASE,
            "dbos_sqlite_notification_poll_s": args.dbos_poll,
            "tether_worker_poll_s": WORKER_POLL, "pg_synchronous_commit": args.pg_sync,
        },
        "rows": rows,
        "resume": crashes,
        "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in targets],
        "errors": errors,
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    out = QUICK_PLOT if args.quick else PLOT
    if rows:
        plot(rows, crashes, args, facts, out)
    if errors:
        print("\nMeasurements that failed (and were tried once more):")
        for note in errors:
            print(f"  {note}")
    print(f"\nresults written to {RESULTS.relative_to(BENCH.parent)}, plot to "
          f"{out.relative_to(BENCH.parent)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
