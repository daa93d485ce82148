"""LangGraph on tether: what the checkpointer, the decorator and a resume cost.

One run measures, on a graph of three nodes that each return a small update:

1. **Runs per second**, each on a fresh thread: LangGraph alone (no checkpointer), with
   LangGraph's ``SqliteSaver`` (a file, ``durability="sync"``), with ``TetherSaver``
   in-process (the embedded SQLite store) and over HTTP (``tether serve`` in a subprocess on
   loopback, rate limit off). The four take turns in rounds, so load from elsewhere on the
   machine falls on all of them alike.
2. **The decorator's cost per node**: (a) a node that needs no approval (its ``when`` is
   false): three decorated nodes against three plain ones, no checkpointer; (b) a node that
   re-runs after its approval inside a tether run (in-process): the time from entering the
   decorated function to its body, which includes reading the wait back from tether.
3. **Interrupt to resume**: ``invoke`` until ``interrupt()``, then a fresh graph and saver
   (nothing cached, as in a new process) ``invoke(Command(resume=...))`` to the end; with
   ``SqliteSaver``, and ``TetherSaver`` in-process and over HTTP. And tether's whole cycle:
   ``DurableGraph.start`` (the run stops, the wait opens), a person approves,
   ``DurableGraph.run`` (claimed again, resumed, completed).

Targets: TetherSaver in-process >= SqliteSaver in runs/s; the decorator <= 1 ms per node.

Run (from the repository root, in the adapter's environment)::

    adapters/langgraph/.venv/bin/python bench/langgraph.py            # about a minute
    adapters/langgraph/.venv/bin/python bench/langgraph.py --quick    # a smoke test

Tables are printed and written to ``bench/results/langgraph.json``. This is a benchmark,
not a test: the numbers depend on the disk's sync rate and on what else the machine runs.
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
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, TypedDict  # noqa: E402

import tether  # noqa: E402
from langgraph.checkpoint.sqlite import SqliteSaver  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.types import Command, interrupt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from tether import Principal  # noqa: E402
from tether_langgraph import Decision, DurableGraph, TetherSaver, requires_approval  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "langgraph.json"
AGENT = "agent://bench/langgraph"


class State(TypedDict, total=False):
    a: int
    b: int
    c: int


def _plain(name: str) -> Callable[[State], dict[str, Any]]:
    def node(state: State) -> dict[str, Any]:
        return {name: 1}

    return node


def _decorated(name: str) -> Any:
    @requires_approval("Go on?", when=lambda state: False)
    def node(state: State, decision: Decision) -> dict[str, Any]:
        return {name: 1}

    return node


def three_nodes(make: Callable[[str], Any] = _plain) -> StateGraph[State]:
    g = StateGraph(State)
    for name in "abc":
        g.add_node(name, make(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", END)
    return g


def _config() -> dict[str, Any]:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


def _runs(app: Any, n: int, durability: str | None) -> float:
    """Seconds for ``n`` runs, each on a fresh thread."""
    kwargs = {"durability": durability} if durability else {}
    start = time.perf_counter()
    for _ in range(n):
        app.invoke({"a": 0}, _config(), **kwargs)
    return time.perf_counter() - start


# -- a tether server in a subprocess ---------------------------------------------------------


@contextmanager
def tether_server(root: Path) -> Iterator[tuple[str, str]]:
    """``tether serve`` on a fresh store; yields its URL and an admin key."""
    db = f"sqlite:///{root / 'server.db'}"
    out = subprocess.run(
        [sys.executable, "-m", "tether", "keys", "create", "--role", "admin", "--db", db, "--json"],
        capture_output=True, text=True, check=True, cwd=root,
    )  # fmt: skip
    with tether_serve(db, log=root / "server.log", cwd=root) as served:
        yield served.url, str(json.loads(out.stdout)["key"])


# -- 1. runs per second ------------------------------------------------------------------------


def bench_runs(
    root: Path, local: tether.Client, remote: tether.Client, rounds: int, per_round: int
) -> dict[str, Any]:
    conn = sqlite3.connect(str(root / "sqlite-saver.db"), check_same_thread=False)
    apps: dict[str, tuple[Any, str | None]] = {
        "LangGraph alone": (three_nodes().compile(), None),
        "SqliteSaver": (three_nodes().compile(checkpointer=SqliteSaver(conn)), "sync"),
        "TetherSaver in-process": (
            three_nodes().compile(checkpointer=TetherSaver(local)),
            "sync",
        ),
        "TetherSaver over HTTP": (
            three_nodes().compile(checkpointer=TetherSaver(remote)),
            "sync",
        ),
    }
    for app, durability in apps.values():  # warm up: imports, connections, storage intents
        _runs(app, 10, durability)
    seconds = {name: 0.0 for name in apps}
    rates: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(rounds):
        for name, (app, durability) in apps.items():
            n = per_round if name != "TetherSaver over HTTP" else max(per_round // 4, 10)
            took = _runs(app, n, durability)
            seconds[name] += took
            rates[name].append(n / took)
    conn.close()
    return {
        name: {
            "runs_per_s": statistics.median(rates[name]),
            "ms_per_run": 1000 / statistics.median(rates[name]),
            "rounds": [round(r, 1) for r in rates[name]],
        }
        for name in apps
    }


# -- 2. the decorator --------------------------------------------------------------------------


def bench_decorator_auto(rounds: int, per_round: int) -> dict[str, float]:
    plain = three_nodes().compile()
    decorated = three_nodes(_decorated).compile()
    _runs(plain, 20, None)
    _runs(decorated, 20, None)
    diffs = []
    for _ in range(rounds):
        p = _runs(plain, per_round, None) / per_round
        d = _runs(decorated, per_round, None) / per_round
        diffs.append((d - p) / 3)
    return {"ms_per_node": statistics.median(diffs) * 1000}


def _approval_graph(client: tether.Client, marks: dict[str, float]) -> Any:
    @requires_approval("Go on?")
    def decide(state: State, decision: Decision) -> dict[str, Any]:
        marks["body"] = time.perf_counter()
        return {"a": 1 if decision.approved else 0}

    @functools.wraps(decide)
    def entering(*args: Any, **kwargs: Any) -> Any:
        marks["enter"] = time.perf_counter()
        return decide(*args, **kwargs)

    g = StateGraph(State)
    g.add_node("decide", entering)
    g.add_edge(START, "decide")
    g.add_edge("decide", END)
    return g.compile(checkpointer=TetherSaver(client, agent=AGENT))


# -- 3. interrupt to resume --------------------------------------------------------------------


def _ask_builder() -> StateGraph[State]:
    def ask(state: State) -> dict[str, Any]:
        return {"b": 1 if interrupt("ok?") == "yes" else 0}

    g = StateGraph(State)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    return g


def bench_interrupt(make_saver: Callable[[], Any], samples: int) -> dict[str, float]:
    builder = _ask_builder()
    times = []
    for i in range(samples + 3):
        first = builder.compile(checkpointer=make_saver())
        fresh = builder.compile(checkpointer=make_saver())  # nothing cached: a new process
        config = _config()
        start = time.perf_counter()
        first.invoke({"a": 0}, config, durability="sync")
        out = fresh.invoke(Command(resume="yes"), config, durability="sync")
        took = time.perf_counter() - start
        assert out == {"a": 0, "b": 1}
        if i >= 3:
            times.append(took)
    return _summary(times)


def bench_cycle(client: tether.Client, samples: int) -> tuple[dict[str, float], dict[str, float]]:
    """tether's whole cycle, and the decorator's cost in the resumed node."""
    marks: dict[str, float] = {}
    durable = DurableGraph(_approval_graph(client, marks), client, agent=AGENT)
    approver = client.as_actor(Principal.human("bench"))
    cycles, decorator = [], []
    for i in range(samples + 3):
        start = time.perf_counter()
        run = durable.start({"a": 0})
        approver.approve(run.intent_id)
        done = durable.run(run.intent_id)
        took = time.perf_counter() - start
        assert run.status == "waiting" and done.status == "completed"
        if i >= 3:
            cycles.append(took)
            decorator.append(marks["body"] - marks["enter"])
    return _summary(cycles), _summary(decorator)


def _summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p90_ms": ordered[int(len(ordered) * 0.9)] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
        "samples": len(ordered),
    }


# -- report ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args(argv)
    rounds, per_round, samples = (2, 40, 15) if args.quick else (6, 200, 60)
    console = Console(width=None if sys.stdout.isatty() else 110)
    root = Path(tempfile.mkdtemp(prefix="tether-bench-langgraph-"))
    try:
        with (
            tether.connect(f"sqlite:///{root / 'local.db'}") as local,
            tether_server(root) as (url, key),
            tether.connect(url, api_key=key) as remote,
        ):
            console.print(f"[bold]LangGraph on tether[/bold] in {root}; server at {url}")
            console.print(f"runs/s: {rounds} rounds of {per_round} runs per configuration ...")
            runs = bench_runs(root, local, remote, rounds, per_round)
            console.print("the decorator ...")
            auto = bench_decorator_auto(rounds, per_round)
            console.print(f"interrupt to resume, {samples} samples each ...")
            sqlite_conn = sqlite3.connect(str(root / "interrupt.db"), check_same_thread=False)
            resume = {
                "SqliteSaver": bench_interrupt(lambda: SqliteSaver(sqlite_conn), samples),
                "TetherSaver in-process": bench_interrupt(lambda: TetherSaver(local), samples),
                "TetherSaver over HTTP": bench_interrupt(lambda: TetherSaver(remote), samples),
            }
            cycle_local, answered = bench_cycle(local, samples)
            cycle_http, _ = bench_cycle(remote, max(samples // 3, 5))
            resume["tether cycle in-process"] = cycle_local
            resume["tether cycle over HTTP"] = cycle_http
            sqlite_conn.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    table = Table(title="Three-node graph, a fresh thread per run")
    table.add_column("checkpointer")
    table.add_column("runs/s", justify="right")
    table.add_column("ms/run", justify="right")
    table.add_column("per round (runs/s)")
    for name, r in runs.items():
        rounds_text = " ".join(f"{x:.0f}" for x in r["rounds"])
        table.add_row(name, f"{r['runs_per_s']:.0f}", f"{r['ms_per_run']:.2f}", rounds_text)
    console.print(table)

    table = Table(title="Interrupt to resume (a fresh graph and saver resumes)")
    for column in ("path", "p50 ms", "p90 ms", "mean ms"):
        table.add_column(column, justify="right" if column != "path" else "left")
    for name, s in resume.items():
        table.add_row(name, f"{s['p50_ms']:.2f}", f"{s['p90_ms']:.2f}", f"{s['mean_ms']:.2f}")
    console.print(table)

    tether_rate = runs["TetherSaver in-process"]["runs_per_s"]
    sqlite_rate = runs["SqliteSaver"]["runs_per_s"]
    targets = {
        "TetherSaver in-process >= SqliteSaver (runs/s)": (
            f"{tether_rate:.0f} vs {sqlite_rate:.0f}",
            tether_rate >= sqlite_rate,
        ),
        "decorator, no approval needed <= 1 ms/node": (
            f"{auto['ms_per_node']:.3f} ms",
            auto["ms_per_node"] <= 1.0,
        ),
        "decorator, resumed after approval <= 1 ms/node": (
            f"{answered['p50_ms']:.3f} ms (p50)",
            answered["p50_ms"] <= 1.0,
        ),
    }
    table = Table(title="Targets")
    for column in ("target", "measured", "met"):
        table.add_column(column)
    for name, (measured, met) in targets.items():
        table.add_row(name, measured, "[green]yes[/green]" if met else "[red]no[/red]")
    console.print(table)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "runs": runs,
        "decorator": {"no_approval_needed": auto, "resumed_after_approval": answered},
        "interrupt_to_resume": resume,
        "targets": {name: {"measured": m, "met": ok} for name, (m, ok) in targets.items()},
    }
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    console.print(f"results written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
