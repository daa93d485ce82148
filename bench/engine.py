"""Engine benchmark: durable transitions per second and the latency of one transition.

Everything runs in one process on a fresh temporary directory (removed afterwards), at the
store's own durability (WAL, ``synchronous=FULL``). It measures:

1. **Raw SQLite** - a plain ``sqlite3`` connection on a separate file, same pragmas, one
   ``BEGIN IMMEDIATE; INSERT; COMMIT`` per operation on one thread: the disk's single-commit
   rate, the yardstick for everything below.
2. **Throughput** - durable transitions per second through tether with 1, 8 and 32 writer
   threads sharing one client (so the store can group their writes into one commit):
   ``record_step`` with unique keys (one transaction, one hash-chained event each), and
   ``start`` + ``complete`` pairs on pre-created intents (two transitions per pair). Then
   ``record_step`` again with 8 and 32 asyncio tasks on one event loop for writers, through
   ``tether.connect_async`` (on the embedded store its calls run on the loop itself and
   await their commits: no thread is woken per call).
3. **Latency** - p50/p99 of one sequential ``record_step`` with 10^3 and with 10^6 intents
   already stored. The big store is filled by bulk-inserting copies of a real intent row
   (and its two event rows) with ``sqlite3`` directly; the copies' hash chains are not valid,
   which no measured operation reads.

Targets: 32 writers (threads, and tasks) >= 2x the raw single-commit rate; p50 <= 1 ms; p50 at 10^6 intents
<= 1.5x p50 at 10^3. Results are printed as tables and written to ``bench/results/engine.json``.

Run::

    make bench                                   # .venv/bin/python bench/engine.py
    .venv/bin/python bench/engine.py --quick     # 10^5 intents, shorter runs: a smoke test
    .venv/bin/python bench/engine.py --big 200000

This is a benchmark, not a test: numbers depend on the disk and on what else the machine runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tether
from rich.console import Console
from rich.table import Table
from tether.ids import new_id

INTENT_TYPE = "bench.task.v1"
AGENT = "agent://bench/worker"
WRITERS = (1, 8, 32)
SMALL = 1_000
RESULTS = Path(__file__).resolve().parent / "results" / "engine.json"

TARGET_THROUGHPUT_RATIO = 2.0  # 32 writers vs the raw single-commit rate
TARGET_P50_MS = 1.0
TARGET_P50_GROWTH = 1.5  # p50 with --big intents vs p50 with 10^3

console = Console(width=None if sys.stdout.isatty() else 110)  # no wrapping when piped


@dataclass(frozen=True)
class Config:
    big: int
    raw_seconds: float
    run_seconds: float
    samples: int
    warmup: int


@dataclass
class RawResult:
    commits: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.commits / self.seconds


@dataclass
class ThroughputResult:
    workload: str
    writers: int
    transitions: int
    seconds: float
    commits: int  # store commits in the window: transitions / commits = mean group size
    cut_short: bool  # a writer ran out of pre-created intents and ended the window early

    @property
    def rate(self) -> float:
        return self.transitions / self.seconds


@dataclass
class LatencyResult:
    intents: int
    samples: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    load_seconds: float  # time to fill the store (not part of the measurement)
    # ``intents`` counts the stored ones; the measured intent is created on top of them.


@dataclass
class Target:
    name: str
    goal: str
    value: str
    passed: bool


# -- 1. raw SQLite ---------------------------------------------------------------------------


def bench_raw(path: Path, seconds: float) -> RawResult:
    """One small durable commit at a time on a plain connection: the disk's commit rate."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE ops (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, v TEXT)")
        commits = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO ops (n, v) VALUES (?, ?)", (commits, "step"))
            conn.execute("COMMIT")
            commits += 1
        return RawResult(commits, time.perf_counter() - start)
    finally:
        conn.close()


# -- 2. throughput ---------------------------------------------------------------------------


class _Budget:
    """A writer's pre-created intents, handed out one at a time."""

    def __init__(self, ids: list[str]) -> None:
        self._ids = ids
        self._next = 0

    def take(self) -> str | None:
        if self._next >= len(self._ids):
            return None
        self._next += 1
        return self._ids[self._next - 1]


def _run_writers(
    client: tether.Client,
    writers: int,
    seconds: float,
    prepare: Callable[[int], Any],
    work: Callable[[Any, int], int],
) -> tuple[int, float, int, bool]:
    """Run ``writers`` threads for ``seconds``; return transitions, seconds, commits, cut short.

    Each thread calls ``prepare(index)`` (untimed), waits at a barrier, then calls
    ``work(state, i)`` until the window closes; ``work`` returns the transitions it made, or
    -1 when it has nothing left to do, which closes the window for everyone.
    """
    barrier = threading.Barrier(writers + 1)
    stop = threading.Event()
    counts = [0] * writers
    cut_short = threading.Event()
    errors: list[BaseException] = []

    def loop(index: int) -> None:
        try:
            state = prepare(index)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
            raise
        barrier.wait()
        done = 0
        i = 0
        try:
            while not stop.is_set():
                made = work(state, i)
                if made < 0:
                    cut_short.set()
                    stop.set()
                    break
                done += made
                i += 1
        except BaseException as exc:
            errors.append(exc)
            stop.set()
            raise
        finally:
            counts[index] = done

    threads = [
        threading.Thread(target=loop, args=(k,), name=f"bench-writer-{k}") for k in range(writers)
    ]
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        for t in threads:
            t.join()
        raise RuntimeError(f"a writer failed to prepare: {errors[0]!r}") from errors[0]
    commits_before = client.store.change_counter
    start = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    commits = client.store.change_counter - commits_before
    if errors:
        raise RuntimeError(f"a writer failed: {errors[0]!r}") from errors[0]
    return sum(counts), elapsed, commits, cut_short.is_set()


def bench_record_step(client: tether.Client, writers: int, seconds: float) -> ThroughputResult:
    """Each writer appends steps with unique keys to its own intent."""

    def prepare(index: int) -> str:
        return client.create_intent(INTENT_TYPE, AGENT, {"writer": index}).intent_id

    def work(intent_id: str, i: int) -> int:
        client.record_step(intent_id, f"step-{i}", {"i": i})
        return 1

    total, elapsed, commits, cut = _run_writers(client, writers, seconds, prepare, work)
    return ThroughputResult("record_step", writers, total, elapsed, commits, cut)


def bench_record_step_tasks(url: str, writers: int, seconds: float) -> ThroughputResult:
    """As :func:`bench_record_step`, with asyncio tasks on one event loop for writers, through
    the async client (``tether.connect_async``): on the embedded store its calls run on the
    loop and await their commits, so no thread is woken per call."""

    async def run() -> tuple[int, float, int]:
        async with tether.connect_async(url) as client:
            ids = [
                (await client.create_intent(INTENT_TYPE, AGENT, {"task": k})).intent_id
                for k in range(writers)
            ]
            counts = [0] * writers
            stop = time.monotonic() + seconds

            async def writer(index: int) -> None:
                i = 0
                while time.monotonic() < stop:
                    await client.record_step(ids[index], f"step-{i}", {"i": i})
                    i += 1
                counts[index] = i

            commits_before = client.sync.store.change_counter
            start = time.perf_counter()
            await asyncio.gather(*(writer(k) for k in range(writers)))
            elapsed = time.perf_counter() - start
            return sum(counts), elapsed, client.sync.store.change_counter - commits_before

    total, elapsed, commits = asyncio.run(run())
    return ThroughputResult("record_step, asyncio tasks", writers, total, elapsed, commits, False)


def bench_start_complete(
    client: tether.Client, writers: int, seconds: float, per_writer: int
) -> ThroughputResult:
    """Each writer takes its pre-created intents through start -> complete (2 transitions)."""

    def prepare(index: int) -> _Budget:
        ids = [
            client.create_intent(INTENT_TYPE, AGENT, {"writer": index, "n": n}).intent_id
            for n in range(per_writer)
        ]
        return _Budget(ids)

    def work(budget: _Budget, i: int) -> int:
        intent_id = budget.take()
        if intent_id is None:
            return -1
        lease = client.start(intent_id, owner="bench")
        client.complete(intent_id, {"ok": True}, lease=lease)
        return 2

    total, elapsed, commits, cut = _run_writers(client, writers, seconds, prepare, work)
    return ThroughputResult("start+complete", writers, total, elapsed, commits, cut)


def bench_throughput(
    root: Path, cfg: Config
) -> tuple[list[ThroughputResult], list[ThroughputResult], list[ThroughputResult]]:
    client = tether.connect(f"sqlite:///{root / 'throughput.db'}")
    steps: list[ThroughputResult] = []
    tasks: list[ThroughputResult] = []
    pairs: list[ThroughputResult] = []
    try:
        for writers in WRITERS:
            console.print(f"  record_step, {writers} writer(s) ...")
            steps.append(bench_record_step(client, writers, cfg.run_seconds))
        for writers in WRITERS[1:]:
            console.print(f"  record_step, {writers} asyncio task(s) ...")
            tasks.append(bench_record_step_tasks(client.store.url, writers, cfg.run_seconds))
        for writers, step in zip(WRITERS, steps, strict=True):
            # A pair costs about two record_steps; pre-create twice what that rate predicts.
            per_writer = int(step.rate * cfg.run_seconds / writers) + 20
            console.print(f"  start+complete, {writers} writer(s) ({per_writer} intents each) ...")
            pairs.append(bench_start_complete(client, writers, cfg.run_seconds, per_writer))
    finally:
        client.close()
    return steps, tasks, pairs


# -- 3. latency at 10^3 and 10^6 intents ----------------------------------------------------


def _fill(path: Path, total: int) -> None:
    """A tether store holding ``total`` intents: one made by tether, the rest bulk copies."""
    client = tether.connect(f"sqlite:///{path}")
    try:
        client.create_intent(INTENT_TYPE, AGENT, {"n": 1})
    finally:
        client.close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")  # setup only; the measurement runs at FULL
        conn.execute("PRAGMA cache_size=-262144")
        intent = conn.execute("SELECT * FROM intents").fetchone()
        intent_cols = [d[0] for d in conn.execute("SELECT * FROM intents LIMIT 0").description]
        event_cols = [d[0] for d in conn.execute("SELECT * FROM events LIMIT 0").description]
        events = conn.execute(f"SELECT {', '.join(event_cols)} FROM events ORDER BY seq").fetchall()
        id_at = intent_cols.index("intent_id")
        corr_at = intent_cols.index("correlation_id")
        ev_id_at = event_cols.index("intent_id")
        ev_details_at = event_cols.index("details")
        old_corr = intent[corr_at]
        insert_intent = (
            f"INSERT INTO intents ({', '.join(intent_cols)}) "
            f"VALUES ({', '.join('?' * len(intent_cols))})"
        )
        insert_event = (
            f"INSERT INTO events ({', '.join(event_cols)}) "
            f"VALUES ({', '.join('?' * len(event_cols))})"
        )
        remaining = total - 1
        chunk = 50_000
        while remaining > 0:
            n = min(chunk, remaining)
            intent_rows: list[tuple[Any, ...]] = []
            event_rows: list[tuple[Any, ...]] = []
            for _ in range(n):
                intent_id, corr = new_id(), new_id()
                row = list(intent)
                row[id_at], row[corr_at] = intent_id, corr
                intent_rows.append(tuple(row))
                for event in events:
                    ev = list(event)
                    ev[ev_id_at] = intent_id
                    ev[ev_details_at] = ev[ev_details_at].replace(old_corr, corr)
                    event_rows.append(tuple(ev))
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert_intent, intent_rows)
            conn.executemany(insert_event, event_rows)
            conn.execute("COMMIT")
            remaining -= n
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        stored = conn.execute("SELECT count(*) FROM intents").fetchone()[0]
        if stored != total:
            raise RuntimeError(f"expected {total} intents in {path}, found {stored}")
    finally:
        conn.close()


def _percentile(sorted_ms: list[float], q: float) -> float:
    index = min(len(sorted_ms) - 1, max(0, round(q * (len(sorted_ms) - 1))))
    return sorted_ms[index]


def bench_latency(root: Path, stored: int, cfg: Config) -> LatencyResult:
    path = root / f"latency-{stored}.db"
    began = time.perf_counter()
    _fill(path, stored)
    load_seconds = time.perf_counter() - began
    client = tether.connect(f"sqlite:///{path}")
    try:
        intent_id = client.create_intent(INTENT_TYPE, AGENT, {"n": 1}).intent_id
        for i in range(cfg.warmup):
            client.record_step(intent_id, f"warmup-{i}", {"i": i})
        samples: list[float] = []
        for i in range(cfg.samples):
            t0 = time.perf_counter_ns()
            client.record_step(intent_id, f"step-{i}", {"i": i})
            samples.append((time.perf_counter_ns() - t0) / 1e6)
    finally:
        client.close()
    samples.sort()
    return LatencyResult(
        intents=stored,
        samples=len(samples),
        p50_ms=_percentile(samples, 0.50),
        p99_ms=_percentile(samples, 0.99),
        mean_ms=statistics.fmean(samples),
        load_seconds=load_seconds,
    )


# -- report ----------------------------------------------------------------------------------


def _targets(
    raw: RawResult,
    steps: list[ThroughputResult],
    tasks: list[ThroughputResult],
    small: LatencyResult,
    big: LatencyResult,
) -> list[Target]:
    growth = big.p50_ms / small.p50_ms
    tops = [next(s for s in runs if s.writers == max(WRITERS)) for runs in (steps, tasks)]
    return [
        *(
            Target(
                f"throughput, {top.writers} writers ({top.workload})",
                f">= {TARGET_THROUGHPUT_RATIO:g}x raw",
                f"{top.rate / raw.rate:.2f}x raw ({top.rate:,.0f}/s vs {raw.rate:,.0f}/s)",
                top.rate / raw.rate >= TARGET_THROUGHPUT_RATIO,
            )
            for top in tops
        ),
        Target(
            f"p50 latency, {small.intents:,} intents",
            f"<= {TARGET_P50_MS:g} ms",
            f"{small.p50_ms:.3f} ms",
            small.p50_ms <= TARGET_P50_MS,
        ),
        Target(
            f"p50 latency, {big.intents:,} intents",
            f"<= {TARGET_P50_MS:g} ms",
            f"{big.p50_ms:.3f} ms",
            big.p50_ms <= TARGET_P50_MS,
        ),
        Target(
            "p50 growth, big vs small store",
            f"<= {TARGET_P50_GROWTH:g}x",
            f"{growth:.2f}x",
            growth <= TARGET_P50_GROWTH,
        ),
    ]


def _print_report(
    raw: RawResult,
    steps: list[ThroughputResult],
    tasks: list[ThroughputResult],
    pairs: list[ThroughputResult],
    latency: list[LatencyResult],
    targets: list[Target],
) -> None:
    table = Table(title="Durable transitions per second (WAL, synchronous=FULL)")
    for col in ("workload", "writers", "transitions", "seconds", "per second", "x raw"):
        table.add_column(col, justify="left" if col == "workload" else "right")
    table.add_column("per commit", justify="right")
    table.add_row(
        "raw sqlite3 commit", "1", f"{raw.commits:,}", f"{raw.seconds:.2f}",
        f"{raw.rate:,.0f}", "1.00", "1.0",
    )  # fmt: skip
    for r in [*steps, *tasks, *pairs]:
        per_commit = f"{r.transitions / r.commits:.1f}" if r.commits else "-"
        note = " (cut short)" if r.cut_short else ""
        table.add_row(
            r.workload + note, str(r.writers), f"{r.transitions:,}", f"{r.seconds:.2f}",
            f"{r.rate:,.0f}", f"{r.rate / raw.rate:.2f}", per_commit,
        )  # fmt: skip
    console.print(table)

    table = Table(title="Latency of one record_step (one thread, sequential)")
    for col in ("intents stored", "samples", "p50 ms", "p99 ms", "mean ms", "fill s"):
        table.add_column(col, justify="right")
    for lat in latency:
        table.add_row(
            f"{lat.intents:,}", str(lat.samples), f"{lat.p50_ms:.3f}", f"{lat.p99_ms:.3f}",
            f"{lat.mean_ms:.3f}", f"{lat.load_seconds:.1f}",
        )  # fmt: skip
    console.print(table)

    table = Table(title="Targets")
    for col in ("target", "goal", "measured", "result"):
        table.add_column(col)
    for t in targets:
        verdict = "[green]PASS[/green]" if t.passed else "[red]FAIL[/red]"
        table.add_row(t.name, t.goal, t.value, verdict)
    console.print(table)


def _write_json(
    cfg: Config,
    raw: RawResult,
    steps: list[ThroughputResult],
    tasks: list[ThroughputResult],
    pairs: list[ThroughputResult],
    latency: list[LatencyResult],
    targets: list[Target],
) -> None:
    def throughput(r: ThroughputResult) -> dict[str, Any]:
        return {**asdict(r), "rate": r.rate, "ratio_to_raw": r.rate / raw.rate}

    doc = {
        "benchmark": "engine",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "tether": tether.__version__,
        "config": asdict(cfg),
        "raw_sqlite": {**asdict(raw), "rate": raw.rate},
        "throughput": [throughput(r) for r in [*steps, *tasks, *pairs]],
        "latency": [asdict(lat) for lat in latency],
        "targets": [asdict(t) for t in targets],
        "passed": all(t.passed for t in targets),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", type=int, default=None, help="intents in the big store")
    parser.add_argument(
        "--quick", action="store_true", help="10^5 intents and shorter runs (a smoke test)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        big = args.big or 100_000
        return Config(big=big, raw_seconds=0.5, run_seconds=1.0, samples=300, warmup=20)
    return Config(
        big=args.big or 1_000_000, raw_seconds=2.0, run_seconds=3.0, samples=1000, warmup=50
    )


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    if cfg.big < SMALL:
        raise SystemExit(f"--big must be at least {SMALL}")
    root = Path(tempfile.mkdtemp(prefix="tether-bench-"))
    try:
        console.print(f"[bold]tether engine benchmark[/bold] in {root}")
        console.print(f"raw sqlite3 commits for {cfg.raw_seconds:g}s ...")
        raw = bench_raw(root / "raw.db", cfg.raw_seconds)
        console.print(f"throughput, {cfg.run_seconds:g}s per run ...")
        steps, tasks, pairs = bench_throughput(root, cfg)
        latency: list[LatencyResult] = []
        for stored in (SMALL, cfg.big):
            console.print(f"latency with {stored:,} intents stored (filling the store) ...")
            latency.append(bench_latency(root, stored, cfg))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    targets = _targets(raw, steps, tasks, latency[0], latency[1])
    _print_report(raw, steps, tasks, pairs, latency, targets)
    _write_json(cfg, raw, steps, tasks, pairs, latency, targets)
    console.print(f"results written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
