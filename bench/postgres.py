"""PostgreSQL benchmark: ``tether serve`` replicas sharing one PostgreSQL database.

It works in a fresh schema ``bench_<random>`` of the local PostgreSQL (``TETHER_BENCH_PG``,
default ``postgresql://postgres@127.0.0.1:5432/test``; the schema is dropped afterwards),
creates an admin key with ``tether keys create``, starts ``tether serve --db <url>`` replicas
on free ports (``TETHER_RATE_LIMIT=0``: all load uses one key) and reuses ``bench/http_load.py``'s
load generator: worker processes (multiprocessing, spawn), each running threads with one
keep-alive client per thread (16 clients by default: 4 processes x 4 threads). It measures:

1. **The raw single-commit rate** of the same PostgreSQL, the yardstick: one psycopg
   connection, autocommit off, ``INSERT`` one small row + ``COMMIT`` per operation, one thread
   (default ``synchronous_commit=on``, the durability the store gets). Commits/s, p50/p99.
2. **Full lifecycles per second** with ONE replica and with TWO replicas - create, start, open
   a human wait, respond, resolve: five requests, each one write transaction. With two
   replicas the load processes are assigned to the replicas' URLs round-robin (process ``k``
   talks to replica ``k % 2``). Lifecycles/s and per-request p50/p99, plus the CPU the
   replicas, PostgreSQL (all its processes, Linux ``/proc``) and the load processes used in
   the window, and PostgreSQL's transactions and WAL fsyncs per second (``pg_stat_database``,
   ``pg_stat_wal``; database-wide, so other users of the database are counted too).
3. **Cross-replica resume latency** - an intent waits on a human task; an SSE subscriber
   (``GET /v1/intents/{id}/events/stream?since=N&wait_seconds=30``) and, separately, a
   long-poll (``GET /v1/intents/{id}?wait_seconds=30&after_seq=N``) are connected to replica
   B; the approving ``POST /v1/intents/{id}/respond`` is sent to replica A. Latency from
   sending the approval to the subscriber seeing ``intent.resumed`` / the long-poll returning:
   B learns of A's commit through PostgreSQL ``LISTEN``/``NOTIFY``.

Targets: >= 500 full lifecycles/s with one replica; cross-replica resume latency p99 <= 20 ms
(SSE and long-poll). Tables are printed and written to ``bench/results/postgres.json``.

Run::

    .venv/bin/python bench/postgres.py                 # ~3 s + 2 x 5 s load, 200 samples
    .venv/bin/python bench/postgres.py --quick         # 1 s + 2 x 1.5 s, 40 samples: smoke test
    .venv/bin/python bench/postgres.py --client httpx  # httpx load clients (more client CPU)

The load clients default to the standard library's ``http.client`` (``--client stdlib``),
which leaves more CPU to the servers than httpx. This is a benchmark, not a test: the load
generator, the replicas and PostgreSQL share the machine, so the numbers depend on its cores,
its disk's fsync rate and on whatever else it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import http_load as bh
import psycopg

RESULTS = Path(__file__).resolve().parent / "results" / "postgres.json"
PG_BASE = os.environ.get("TETHER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
REQUESTS_PER_LIFECYCLE = 5

TARGET_LIFECYCLES_ONE_REPLICA = 500.0
TARGET_CROSS_RESUME_P99_MS = 20.0


@dataclass(frozen=True)
class Config:
    procs: int
    threads: int
    seconds: float
    commit_seconds: float
    samples: int
    client: str

    @property
    def clients(self) -> int:
        return self.procs * self.threads


# -- PostgreSQL -------------------------------------------------------------------------------


def url_for(schema: str) -> str:
    return f"{PG_BASE}?options=-csearch_path%3D{schema}"


def postgres_cpu() -> float | None:
    """CPU seconds used so far by every live PostgreSQL process (postmaster, backends,
    WAL writer, ...); None where ``/proc`` is not available."""
    total = 0.0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        if comm == "postgres":
            total += bh.cpu_seconds(int(entry)) or 0.0
    return total


class PgStats:
    """Database-wide counters (transactions committed, WAL fsyncs) on their own connection."""

    def __init__(self) -> None:
        self.conn = psycopg.connect(PG_BASE, autocommit=True)

    def xacts(self) -> float:
        row = self.conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        return float(row[0]) if row else 0.0

    def wal_syncs(self) -> float:
        row = self.conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()
        return float(row[0]) if row else 0.0

    def close(self) -> None:
        self.conn.close()


@dataclass
class CommitResult:
    commits: int
    seconds: float
    latency: Any  # bench/http_load.py's Latency
    synchronous_commit: str

    @property
    def rate(self) -> float:
        return self.commits / self.seconds


def bench_commits(url: str, seconds: float) -> CommitResult:
    """INSERT one small row + COMMIT per operation, one connection, one thread."""
    with psycopg.connect(url, autocommit=False) as conn:
        conn.execute("CREATE TABLE bench_commit (id bigserial PRIMARY KEY, n int, note text)")
        conn.commit()
        row = conn.execute("SHOW synchronous_commit").fetchone()
        sync = str(row[0]) if row else "?"
        conn.commit()
        for n in range(50):  # warm-up
            conn.execute("INSERT INTO bench_commit (n, note) VALUES (%s, %s)", (n, "warm-up"))
            conn.commit()
        lat: list[float] = []
        started = time.perf_counter()
        deadline = started + seconds
        n = 0
        while (t0 := time.perf_counter()) < deadline:
            conn.execute("INSERT INTO bench_commit (n, note) VALUES (%s, %s)", (n, "row"))
            conn.commit()
            lat.append((time.perf_counter() - t0) * 1e3)
            n += 1
        elapsed = time.perf_counter() - started
    return CommitResult(len(lat), elapsed, bh.Latency.of(lat), sync)


# -- load ---------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    workload: str
    replicas: int
    clients: int
    ops: int  # lifecycles
    requests: int
    seconds: float
    errors: int
    latency: Any  # per request (bench/http_load.py's Latency)
    server_cpu: float | None  # CPU seconds of all replicas in the window
    postgres_cpu: float | None  # CPU seconds of all PostgreSQL processes in the window
    load_cpu: float | None
    pg_xacts: float | None  # transactions committed in the database in the window
    wal_syncs: float | None  # WAL fsyncs in the window (cluster-wide)
    by_request: dict[str, Any] = field(default_factory=dict)
    first_error: str = ""

    @property
    def ops_rate(self) -> float:
        return self.ops / self.seconds

    @property
    def request_rate(self) -> float:
        return self.requests / self.seconds


def bench_lifecycles(
    gen: Any, cfg: Config, servers: list[Any], key: str, stats: PgStats
) -> LoadResult:
    """Full lifecycles; load process ``k`` talks to ``servers[k % len(servers)]``."""
    tasks = [
        bh.Task("lifecycle", cfg.client, s.url, key, seconds=cfg.seconds, threads=cfg.threads)
        for s in servers
    ]
    probes = {"postgres": postgres_cpu, "xacts": stats.xacts, "wal_syncs": stats.wal_syncs}
    got = gen.run(tasks, [s.process.pid for s in servers], probes)
    all_ms = [v for values in got["lat"].values() for v in values]
    n = len(servers)
    return LoadResult(
        workload="lifecycle",
        replicas=n,
        clients=cfg.clients,
        ops=got["ops"],
        requests=got["ops"] * REQUESTS_PER_LIFECYCLE,
        seconds=got["elapsed"],
        errors=got["errors"],
        latency=bh.Latency.of(all_ms),
        server_cpu=got["server_cpu"],
        postgres_cpu=got["probes"]["postgres"],
        load_cpu=got["load_cpu"],
        pg_xacts=got["probes"]["xacts"],
        wal_syncs=got["probes"]["wal_syncs"],
        by_request={kind: bh.Latency.of(ms) for kind, ms in got["lat"].items()},
        first_error=got["first_error"],
    )


# -- report -------------------------------------------------------------------------------------


def _targets(loads: list[LoadResult], resume: list[Any]) -> list[Any]:
    one = loads[0]
    targets = [
        bh.Target(
            f"full lifecycles/s, 1 replica, {one.clients} clients",
            f">= {TARGET_LIFECYCLES_ONE_REPLICA:,.0f}/s",
            f"{one.ops_rate:,.0f}/s",
            one.ops_rate >= TARGET_LIFECYCLES_ONE_REPLICA and one.errors == 0,
        )
    ]
    for r in resume:
        targets.append(
            bh.Target(
                f"cross-replica resume p99, {r.channel}",
                f"<= {TARGET_CROSS_RESUME_P99_MS:g} ms",
                f"{r.latency.p99_ms:.2f} ms",
                r.latency.p99_ms <= TARGET_CROSS_RESUME_P99_MS,
            )
        )
    return targets


def _rate(value: float | None, seconds: float) -> str:
    return "-" if value is None else f"{value / seconds:,.0f}"


def _print_report(
    console: Any,
    cfg: Config,
    commit: CommitResult,
    loads: list[LoadResult],
    resume: list[Any],
    targets: list[Any],
) -> None:
    from rich.table import Table

    table = Table(title="PostgreSQL single-commit rate (1 connection: INSERT + COMMIT)")
    for col in ("commits", "commits/s", "p50 ms", "p99 ms", "synchronous_commit"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{commit.commits:,}", f"{commit.rate:,.0f}", f"{commit.latency.p50_ms:.2f}",
        f"{commit.latency.p99_ms:.2f}", commit.synchronous_commit,
    )  # fmt: skip
    console.print(table)

    table = Table(
        title=f"Full lifecycles, {cfg.clients} clients ({cfg.procs} processes x {cfg.threads} "
        f"threads, {cfg.client} keep-alive)"
    )
    cols = ("replicas", "lc/s", "req/s", "p50 ms", "p99 ms", "errors", "srv CPU", "CPU/req")
    for col in (*cols, "PG CPU", "PG xact/s", "WAL sync/s", "load CPU"):
        table.add_column(col, justify="right")
    for r in loads:
        cpu = per_req = pg = load = "-"
        if r.server_cpu is not None:
            cpu = f"{r.server_cpu / r.seconds:.0%}"
            per_req = f"{r.server_cpu / max(r.requests, 1) * 1e6:,.0f} us"
        if r.postgres_cpu is not None:
            pg = f"{r.postgres_cpu / r.seconds:.0%}"
        if r.load_cpu is not None:
            load = f"{r.load_cpu / r.seconds:.0%}"
        table.add_row(
            str(r.replicas), f"{r.ops_rate:,.0f}", f"{r.request_rate:,.0f}",
            f"{r.latency.p50_ms:.2f}", f"{r.latency.p99_ms:.2f}", str(r.errors), cpu, per_req,
            pg, _rate(r.pg_xacts, r.seconds), _rate(r.wal_syncs, r.seconds), load,
        )  # fmt: skip
    console.print(table)
    console.print(
        "lc/s: lifecycles/s (5 write requests each). srv CPU: all replicas' CPU over the "
        "window (100% = one core); CPU/req: the same per request; PG CPU: all PostgreSQL "
        "processes'; PG xact/s: transactions committed in the database (reads included); "
        f"WAL sync/s: WAL fsyncs; load CPU: the load processes'. {os.cpu_count()} CPUs here."
    )

    table = Table(title="Lifecycle requests: p50 / p99 ms")
    table.add_column("request")
    for r in loads:
        table.add_column(f"{r.replicas} replica{'s' if r.replicas > 1 else ''}", justify="right")
    for kind in bh.LIFECYCLE_KINDS:
        cells = [
            f"{r.by_request[kind].p50_ms:.2f} / {r.by_request[kind].p99_ms:.2f}"
            if kind in r.by_request
            else "-"
            for r in loads
        ]
        table.add_row(kind, *cells)
    console.print(table)

    table = Table(
        title="Cross-replica resume: respond POSTed to replica A -> subscriber on B woken"
    )
    for col in ("channel", "samples", "p50 ms", "p99 ms", "mean ms", "max ms", "respond p50 ms"):
        table.add_column(col, justify="left" if col == "channel" else "right")
    for r in resume:
        lat = r.latency
        table.add_row(
            r.channel, str(lat.samples), f"{lat.p50_ms:.2f}", f"{lat.p99_ms:.2f}",
            f"{lat.mean_ms:.2f}", f"{lat.max_ms:.2f}", f"{r.respond.p50_ms:.2f}",
        )  # fmt: skip
    console.print(table)

    table = Table(title="Targets")
    for col in ("target", "goal", "measured", "result"):
        table.add_column(col)
    for t in targets:
        verdict = "[green]PASS[/green]" if t.passed else "[red]FAIL[/red]"
        table.add_row(t.name, t.goal, t.value, verdict)
    console.print(table)
    for r in loads:
        if r.first_error:
            console.print(f"[yellow]{r.replicas} replica(s): first error: {r.first_error}[/yellow]")


def _write_json(
    cfg: Config,
    pg_version: str,
    commit: CommitResult,
    loads: list[LoadResult],
    resume: list[Any],
    targets: list[Any],
) -> None:
    import tether

    def load(r: LoadResult) -> dict[str, Any]:
        return {**asdict(r), "ops_rate": r.ops_rate, "request_rate": r.request_rate}

    doc = {
        "benchmark": "postgres",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "postgresql": pg_version,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "tether": tether.__version__,
        "config": {**asdict(cfg), "clients": cfg.clients},
        "commit": {**asdict(commit), "rate": commit.rate},
        "load": [load(r) for r in loads],
        "resume": [asdict(r) for r in resume],
        "targets": [asdict(t) for t in targets],
        "passed": all(t.passed for t in targets),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short phases, 40 samples")
    parser.add_argument("--procs", type=int, default=4, help="load processes (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="clients per process (4)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per load phase")
    parser.add_argument("--samples", type=int, default=None, help="resume samples per channel")
    parser.add_argument(
        "--client",
        choices=("httpx", "stdlib"),
        default="stdlib",
        help="load clients: http.client (default, less client CPU) or httpx.Client",
    )
    args = parser.parse_args(argv)
    if args.procs < 2:
        parser.error("--procs must be at least 2 (the load is split across two replicas)")
    seconds = args.seconds or (1.5 if args.quick else 5.0)
    commit_seconds = 1.0 if args.quick else 3.0
    samples = args.samples or (40 if args.quick else 200)
    return Config(args.procs, args.threads, seconds, commit_seconds, samples, args.client)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 120)  # no wrapping when piped
    root = Path(tempfile.mkdtemp(prefix="tether-bench-pg-"))
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    db_url = url_for(schema)
    servers: list[Any] = []
    gen: Any = None
    stats: PgStats | None = None
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        pg_version = str(row[0]) if row else "?"
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        title = "[bold]tether PostgreSQL benchmark[/bold]"
        console.print(f"{title}: PostgreSQL {pg_version}, schema {schema}")
        console.print(f"raw single-commit rate, {cfg.commit_seconds:g}s ...")
        commit = bench_commits(db_url, cfg.commit_seconds)

        key = json.loads(
            bh._cli(root, "keys", "create", "--role", "admin", "--db", db_url, "--json")
        )["key"]
        tether_argv = [sys.executable, "-m", "tether", "serve", "--db", db_url]
        tether_argv += ["--host", "127.0.0.1", "--log-level", "warning"]
        env = {"TETHER_RATE_LIMIT": "0"}
        console.print(f"starting {cfg.procs} load processes x {cfg.threads} threads ...")
        gen = bh.LoadGenerator(cfg.procs, cfg.threads)
        servers.append(bh.Server("replica-a", tether_argv, root, env))
        servers[0].wait_ready()
        stats = PgStats()

        loads: list[LoadResult] = []
        console.print(f"  lifecycles, 1 replica ({servers[0].url}), {cfg.seconds:g}s ...")
        loads.append(bench_lifecycles(gen, cfg, servers[:1], key, stats))
        servers.append(bh.Server("replica-b", tether_argv, root, env))
        servers[1].wait_ready()
        console.print(f"  lifecycles, 2 replicas (+ {servers[1].url}), {cfg.seconds:g}s ...")
        loads.append(bench_lifecycles(gen, cfg, servers[:2], key, stats))
        gen.close()
        gen = None

        console.print(f"cross-replica resume latency, {cfg.samples} samples per channel ...")
        a, b = servers
        resume = bh.bench_resume(cfg.client, a.url, key, cfg.samples, subscriber_url=b.url)
    finally:
        if gen is not None:
            gen.close()
        for srv in servers:
            srv.stop()
        if stats is not None:
            stats.close()
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        shutil.rmtree(root, ignore_errors=True)

    targets = _targets(loads, resume)
    _print_report(console, cfg, commit, loads, resume, targets)
    _write_json(cfg, pg_version, commit, loads, resume, targets)
    console.print(f"results written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
