"""HTTP benchmark: ``tether serve`` on SQLite over loopback, driven from separate processes.

It starts its own ``tether serve`` on a fresh temporary store (removed afterwards) on a free
port, creates an admin key with ``tether keys create``, and drives it with worker processes
(multiprocessing, spawn), each running threads with one keep-alive ``httpx.Client`` per
thread: one thread is one concurrent client (16 by default: 4 processes x 4 threads). One
Python process cannot drive the server hard enough on its own. It measures:

1. **Full lifecycles per second** - create an intent (``POST /v1/intents``), start it under a
   lease, open a human wait (``POST .../waits`` with ``X-Lease-Token``), answer it
   (``POST .../respond``, an admin key may) and complete it (``POST .../resolve``): five
   requests and six durable transitions per lifecycle. Lifecycles/s and per-request p50/p99.
2. **A cheap read** - ``GET /v1/intents/{id}``: requests/s and p50/p99.
3. **The framework's floor** - a second uvicorn process (``bench/http_load.py --trivial-app``)
   serving a minimal FastAPI app, ``GET /ping`` (``async def``) and ``GET /ping-sync`` (a
   plain ``def``, run in the threadpool as most tether routes are), driven by the same load
   generator in the same run, so the numbers above can be read against what this machine
   gets from FastAPI + uvicorn doing nothing.
4. **Resume latency** - from sending the approving ``POST .../respond`` to (a) an SSE
   subscriber on ``GET .../events/stream`` receiving the ``intent.resumed`` frame and (b) a
   blocked long-poll ``GET /v1/intents/{id}?wait_seconds=30&after_seq=N`` returning.
   Sequential samples, timed with ``time.perf_counter`` in one process (threads). The SSE
   subscriber is connected before the approval (it has delivered the existing
   ``human_task_assigned`` frame); the long-poll is given 20 ms to park on the server.

For each load phase it also reads the CPU time the server process and the load processes
used in the window (Linux ``/proc``): ``CPU/req`` is the server's CPU per request, which is
what bounds throughput once the server's core is saturated.

Both servers run as ``tether serve`` does (uvicorn, ``--log-level warning``, no access log).
The per-key rate limit is switched off for the server under test (``TETHER_RATE_LIMIT=0``):
all load uses one admin key, and the default limit (2,000 requests/s per key) would measure
the policy, not the server. Any non-2xx answer is counted as an error.

Targets: >= 1,000 full lifecycles/s; request p50 <= 2 ms at 16 clients (lifecycle requests
and the read); resume latency p50 <= 3 ms and p99 <= 15 ms (SSE and long-poll). Tables are
printed and written to ``bench/results/http.json``.

Run::

    .venv/bin/python bench/http_load.py                    # ~5 s per load phase, 200 resume samples
    .venv/bin/python bench/http_load.py --quick            # 1.5 s phases, 40 samples: a smoke test
    .venv/bin/python bench/http_load.py --procs 8 --threads 2
    .venv/bin/python bench/http_load.py --client stdlib    # http.client: ~4x less client CPU

This is a benchmark, not a test: the load generator shares the machine with the servers, so
the numbers depend on the core count and on what else the machine runs. With few cores,
``--client stdlib`` leaves more CPU to the server (httpx costs ~0.9 ms of client CPU per
request on a slow core).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import platform
import queue
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _serve import free_port, wait_ready

RESULTS = Path(__file__).resolve().parent / "results" / "http.json"
INTENT_TYPE = "bench.task.v1"
AGENT = "agent://bench/worker"
LIFECYCLE_KINDS = ("create", "start", "open wait", "respond", "resolve")
READS_PER_CLIENT = 8  # intents each read client cycles through
LONG_POLL_SETTLE = 0.02  # seconds a long-poll gets to park on the server before the approval

TARGET_LIFECYCLES = 1_000.0
TARGET_REQUEST_P50_MS = 2.0
TARGET_RESUME_P50_MS = 3.0
TARGET_RESUME_P99_MS = 15.0


@dataclass(frozen=True)
class Config:
    procs: int
    threads: int
    seconds: float
    samples: int
    client: str

    @property
    def clients(self) -> int:
        return self.procs * self.threads


# -- the trivial app (a second server, for the framework's floor) ----------------------------


def trivial_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/ping-sync")
    def ping_sync() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    return app


def serve_trivial(host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(trivial_app(), host=host, port=port, log_level="warning", access_log=False)


# -- HTTP clients ----------------------------------------------------------------------------


class Http:
    """One keep-alive connection: ``httpx.Client`` (the default) or the standard library's
    ``http.client`` (``--client stdlib``, about 4x less client CPU per request)."""

    def __init__(self, kind: str, url: str, key: str) -> None:
        self.kind = kind
        self.key = key
        self._httpx: httpx.Client | None = None
        self._conn: http.client.HTTPConnection | None = None
        if kind == "httpx":
            self._httpx = httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=60)
        else:
            host, port = url.removeprefix("http://").split(":")
            self._conn = http.client.HTTPConnection(host, int(port), timeout=60)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        if self._httpx is not None:
            r = self._httpx.request(method, path, json=body, headers=headers)
            return r.status_code, r.content
        assert self._conn is not None
        sent = {"x-api-key": self.key, **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["content-type"] = "application/json"
        try:
            self._conn.request(method, path, body=data, headers=sent)
            resp = self._conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException):
            self._conn.close()  # reconnects on the next request
            raise

    def ok(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        """The JSON of a 2xx answer; :class:`Failed` otherwise."""
        status, content = self.request(method, path, body, headers or None)
        if status >= 300:
            raise Failed(f"{method} {path}: {status} {content[:200]!r}")
        return json.loads(content)

    def sse_lines(self, path: str) -> Iterator[str]:
        """The lines of an SSE stream, as they arrive; the connection is closed after."""
        if self._httpx is not None:
            with self._httpx.stream("GET", path) as r:
                if r.status_code >= 300:
                    raise Failed(f"GET {path}: {r.status_code}")
                yield from r.iter_lines()
            return
        assert self._conn is not None
        try:
            self._conn.request("GET", path, headers={"x-api-key": self.key})
            resp = self._conn.getresponse()
            if resp.status >= 300:
                raise Failed(f"GET {path}: {resp.status}")
            while line := resp.readline():
                yield line.decode().rstrip("\r\n")
        finally:
            self._conn.close()

    def close(self) -> None:
        if self._httpx is not None:
            self._httpx.close()
        if self._conn is not None:
            self._conn.close()


class Failed(Exception):
    """A non-2xx answer."""


CLIENT_ERRORS = (Failed, httpx.HTTPError, OSError, http.client.HTTPException)


# -- load generator: worker processes --------------------------------------------------------


@dataclass
class Task:
    mode: str  # "lifecycle", "read" or "get"
    client: str  # "httpx" or "stdlib"
    url: str
    key: str
    seconds: float = 0.0
    threads: int = 0
    path: str = ""  # for "get"


def _lifecycle(c: Http, lat: dict[str, array]) -> None:
    """One full lifecycle; :class:`Failed` (and the rest skipped) on a non-2xx answer."""

    def timed(kind: str, path: str, body: Any, **headers: str) -> Any:
        t0 = time.perf_counter()
        status, content = c.request("POST", path, body, headers or None)
        lat[kind].append(time.perf_counter() - t0)
        if status >= 300:
            raise Failed(f"{kind}: {status} {content[:200]!r}")
        return json.loads(content)

    body = {
        "intent_type": INTENT_TYPE,
        "to_agent": AGENT,
        "payload": {"n": 1},
        "correlation_id": str(uuid.uuid4()),
    }
    base = f"/v1/intents/{timed('create', '/v1/intents', body)['intent_id']}"
    token = timed("start", f"{base}/start", {})["lease"]["token"]
    wait = {"kind": "human", "human_task": {"title": "ok?"}}
    timed("open wait", f"{base}/waits", wait, **{"X-Lease-Token": token})
    timed("respond", f"{base}/respond", {"outcome": "approved"})
    timed("resolve", f"{base}/resolve", {"status": "COMPLETED", "result": {}})


def _create_intent(c: Http) -> str:
    body = {"intent_type": INTENT_TYPE, "to_agent": AGENT, "correlation_id": str(uuid.uuid4())}
    return str(c.ok("POST", "/v1/intents", body)["intent_id"])


def _client_thread(
    task: Task,
    ready: threading.Barrier,
    go: threading.Event,
    cancel: threading.Event,
    out: dict[str, Any],
) -> None:
    """One concurrent client: prepare, wait for ``go``, run ``task.seconds``, report."""
    lat: dict[str, array] = {}
    ids: list[str] = []
    ops = errors = 0
    first_error = ""
    c = Http(task.client, task.url, task.key)
    try:
        try:
            # Warm up: open the keep-alive connection and touch every route once.
            if task.mode == "lifecycle":
                warm: dict[str, array] = {k: array("d") for k in LIFECYCLE_KINDS}
                for _ in range(3):
                    _lifecycle(c, warm)
                lat = {k: array("d") for k in LIFECYCLE_KINDS}
            elif task.mode == "read":
                ids = [_create_intent(c) for _ in range(READS_PER_CLIENT)]
                for intent_id in ids:
                    c.ok("GET", f"/v1/intents/{intent_id}")
                lat = {"read": array("d")}
            else:
                for _ in range(20):
                    c.ok("GET", task.path)
                lat = {"get": array("d")}
        except BaseException as exc:
            out["error"] = f"warm-up failed: {exc!r}"
            ready.abort()
            return
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            return
        go.wait()
        if cancel.is_set():
            return
        samples = next(iter(lat.values()))
        deadline = time.perf_counter() + task.seconds
        i = 0
        while time.perf_counter() < deadline:
            try:
                if task.mode == "lifecycle":
                    _lifecycle(c, lat)
                else:
                    path = f"/v1/intents/{ids[i % len(ids)]}" if task.mode == "read" else task.path
                    t0 = time.perf_counter()
                    status, content = c.request("GET", path)
                    samples.append(time.perf_counter() - t0)
                    if status >= 300:
                        raise Failed(f"GET {path}: {status} {content[:200]!r}")
                ops += 1
            except CLIENT_ERRORS as exc:
                errors += 1
                first_error = first_error or repr(exc)
                if errors > 1000:
                    break
            i += 1
    finally:
        c.close()
    out.update(
        ops=ops,
        errors=errors,
        first_error=first_error,
        lat={k: v.tobytes() for k, v in lat.items()},
    )


def _run_task(task: Task, barrier: Any) -> dict[str, Any]:
    outs: list[dict[str, Any]] = [{} for _ in range(task.threads)]
    ready = threading.Barrier(task.threads + 1)
    go = threading.Event()
    cancel = threading.Event()
    threads = [
        threading.Thread(
            target=_client_thread, args=(task, ready, go, cancel, outs[k]), daemon=True
        )
        for k in range(task.threads)
    ]
    for t in threads:
        t.start()
    try:
        ready.wait(timeout=120)
    except threading.BrokenBarrierError:
        barrier.abort()
        cancel.set()
        go.set()
        for t in threads:
            t.join()
        errors = [o["error"] for o in outs if "error" in o] or ["a client thread did not start"]
        return {"error": errors[0]}
    try:
        barrier.wait(timeout=120)  # every process ready, and the parent
    except threading.BrokenBarrierError:
        cancel.set()
        go.set()
        for t in threads:
            t.join()
        return {"error": "another load process failed to start"}
    started = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    merged: dict[str, bytes] = {}
    for o in outs:
        for kind, raw in o.get("lat", {}).items():
            merged[kind] = merged.get(kind, b"") + raw
    return {
        "ops": sum(o.get("ops", 0) for o in outs),
        "errors": sum(o.get("errors", 0) for o in outs),
        "first_error": next((o["first_error"] for o in outs if o.get("first_error")), ""),
        "elapsed": elapsed,
        "lat": merged,
    }


def worker_main(inbox: Any, outbox: Any, barrier: Any) -> None:
    """A load-generating process: run the tasks it is sent until it gets None."""
    while True:
        task = inbox.get()
        if task is None:
            return
        try:
            outbox.put(_run_task(task, barrier))
        except BaseException as exc:
            barrier.abort()
            outbox.put({"error": repr(exc)})


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_delta(before: list[float | None], after: list[float | None]) -> float | None:
    if any(v is None for v in [*before, *after]):
        return None
    return sum(a - b for a, b in zip(after, before, strict=True))  # type: ignore[operator]


class LoadGenerator:
    """``procs`` spawned processes, kept alive across phases, ``threads`` clients each."""

    def __init__(self, procs: int, threads: int) -> None:
        ctx = mp.get_context("spawn")
        self.procs = procs
        self.threads = threads
        self.barrier = ctx.Barrier(procs + 1)
        self.outbox = ctx.Queue()
        self.inboxes = [ctx.Queue() for _ in range(procs)]
        self.workers = [
            ctx.Process(
                target=worker_main,
                args=(box, self.outbox, self.barrier),
                daemon=True,
                name=f"bench-load-{k}",
            )
            for k, box in enumerate(self.inboxes)
        ]
        for w in self.workers:
            w.start()

    def run(
        self,
        task: Task | Sequence[Task],
        server_pid: int | Sequence[int],
        probes: Mapping[str, Callable[[], float | None]] | None = None,
    ) -> dict[str, Any]:
        """Run ``task`` in every process at once; also the CPU the server and the load
        processes used in the measured window.

        ``task`` may be a sequence: process ``k`` runs ``task[k % len(task)]`` (e.g. one URL
        per replica). ``server_pid`` may be several processes (their CPU is summed).
        ``probes`` are extra cumulative counters (e.g. another process's CPU seconds), read at
        the window's start and end; their deltas are returned under ``"probes"``."""
        tasks = [task] if isinstance(task, Task) else list(task)
        server_pids = [server_pid] if isinstance(server_pid, int) else list(server_pid)
        for k, box in enumerate(self.inboxes):
            box.put(tasks[k % len(tasks)])
        loaders = [w.pid for w in self.workers if w.pid is not None]
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait(timeout=180)  # broken: the workers report why below
        server_before = [cpu_seconds(pid) for pid in server_pids]
        load_before = [cpu_seconds(pid) for pid in loaders]
        probes_before = {name: probe() for name, probe in (probes or {}).items()}
        results = []
        for _ in self.workers:
            try:
                results.append(self.outbox.get(timeout=max(t.seconds for t in tasks) + 120))
            except queue.Empty:
                raise RuntimeError("a load process did not report back") from None
        server_cpu = _cpu_delta(server_before, [cpu_seconds(pid) for pid in server_pids])
        load_cpu = _cpu_delta(load_before, [cpu_seconds(pid) for pid in loaders])
        probed = {
            name: _cpu_delta([probes_before[name]], [probe()])
            for name, probe in (probes or {}).items()
        }
        failed = [r["error"] for r in results if "error" in r]
        if failed:
            raise RuntimeError(f"load generation failed: {failed[0]}")
        lat: dict[str, list[float]] = {}
        for r in results:
            for kind, raw in r["lat"].items():
                values = array("d")
                values.frombytes(raw)
                lat.setdefault(kind, []).extend(v * 1e3 for v in values)
        return {
            "ops": sum(r["ops"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "first_error": next((r["first_error"] for r in results if r["first_error"]), ""),
            "elapsed": max(r["elapsed"] for r in results),
            "lat": lat,
            "server_cpu": server_cpu,
            "load_cpu": load_cpu,
            "probes": probed,
        }

    def close(self) -> None:
        for box in self.inboxes:
            with contextlib.suppress(OSError, ValueError):
                box.put(None)
        for w in self.workers:
            w.join(5)
            if w.is_alive():
                w.terminate()
                w.join(5)
            if w.is_alive():
                w.kill()
                w.join()


# -- servers ---------------------------------------------------------------------------------


def _cli(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "tether", *args], capture_output=True, text=True, timeout=120,
        cwd=cwd, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"tether {' '.join(args[:2])} failed: {out.stderr or out.stdout}")
    return out.stdout


class Server:
    """A server subprocess on loopback; stopped (terminate, then kill) by ``stop``."""

    def __init__(self, name: str, argv: list[str], root: Path, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / f"{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [*argv, "--port", str(self.port)], cwd=root, stdout=self._log,
            stderr=subprocess.STDOUT, env={**os.environ, **env},
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> None:
        try:
            wait_ready(self.url, self.process, timeout, self.name)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {self.log_path.read_text()}") from exc

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


# -- results ---------------------------------------------------------------------------------


def _percentile(sorted_ms: list[float], q: float) -> float:
    index = min(len(sorted_ms) - 1, max(0, round(q * (len(sorted_ms) - 1))))
    return sorted_ms[index]


@dataclass
class Latency:
    samples: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @classmethod
    def of(cls, ms: list[float]) -> Latency:
        if not ms:
            return cls(0, float("nan"), float("nan"), float("nan"), float("nan"))
        s = sorted(ms)
        return cls(len(s), _percentile(s, 0.5), _percentile(s, 0.99), statistics.fmean(s), s[-1])


@dataclass
class LoadResult:
    workload: str
    server: str
    clients: int
    ops: int  # lifecycles, or requests
    requests: int
    seconds: float
    errors: int
    latency: Latency  # per request
    server_cpu: float | None  # CPU seconds the server process used in the window
    load_cpu: float | None  # CPU seconds the load processes used in the window
    by_request: dict[str, Latency] = field(default_factory=dict)
    first_error: str = ""

    @property
    def ops_rate(self) -> float:
        return self.ops / self.seconds

    @property
    def request_rate(self) -> float:
        return self.requests / self.seconds


@dataclass
class ResumeResult:
    channel: str
    latency: Latency
    respond: Latency  # the approving request itself, for comparison


@dataclass
class Target:
    name: str
    goal: str
    value: str
    passed: bool


def bench_load(
    gen: LoadGenerator,
    workload: str,
    server: Server,
    task: Task,
    requests_per_op: int,
) -> LoadResult:
    got = gen.run(task, server.process.pid)
    all_ms = [v for values in got["lat"].values() for v in values]
    by_request = {kind: Latency.of(got["lat"][kind]) for kind in got["lat"]}
    return LoadResult(
        workload=workload,
        server=server.name,
        clients=gen.procs * gen.threads,
        ops=got["ops"],
        requests=got["ops"] * requests_per_op,
        seconds=got["elapsed"],
        errors=got["errors"],
        latency=Latency.of(all_ms),
        server_cpu=got["server_cpu"],
        load_cpu=got["load_cpu"],
        by_request=by_request if len(by_request) > 1 else {},
        first_error=got["first_error"],
    )


# -- resume latency --------------------------------------------------------------------------


def _waiting_intent(c: Http) -> tuple[str, int]:
    """An intent waiting on a human task, and its seq."""
    intent_id = _create_intent(c)
    base = f"/v1/intents/{intent_id}"
    token = c.ok("POST", f"{base}/start", {})["lease"]["token"]
    wait = {"kind": "human", "human_task": {"title": "ok?"}}
    c.ok("POST", f"{base}/waits", wait, **{"X-Lease-Token": token})
    return intent_id, int(c.ok("GET", base)["intent"]["seq"])


def _approve(c: Http, intent_id: str) -> tuple[float, float]:
    """Send the approval; its send time and the request's own latency (ms)."""
    t0 = time.perf_counter()
    status, content = c.request("POST", f"/v1/intents/{intent_id}/respond", {"outcome": "approved"})
    took = (time.perf_counter() - t0) * 1e3
    if status >= 300:
        raise Failed(f"respond: {status} {content[:200]!r}")
    return t0, took


def _sse_sample(main: Http, sub: Http) -> tuple[float, float]:
    intent_id, seq = _waiting_intent(main)
    connected = threading.Event()
    got: dict[str, Any] = {}

    def subscribe() -> None:
        # From just before the last event: once that frame is delivered, the stream is live.
        path = f"/v1/intents/{intent_id}/events/stream?since={seq - 1}&wait_seconds=30"
        try:
            event = ""
            for line in sub.sse_lines(path):
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    if event == "intent.resumed":
                        got["at"] = time.perf_counter()
                        return
                    connected.set()
        except BaseException as exc:
            got["error"] = repr(exc)
        finally:
            connected.set()

    t = threading.Thread(target=subscribe, daemon=True)
    t.start()
    if not connected.wait(30):
        raise RuntimeError("the SSE subscriber never connected")
    if "error" in got:
        raise RuntimeError(f"SSE subscriber failed: {got['error']}")
    t0, took = _approve(main, intent_id)
    t.join(35)
    if "at" not in got:
        raise RuntimeError(f"no intent.resumed frame: {got.get('error', 'timed out')}")
    return (got["at"] - t0) * 1e3, took


def _long_poll_sample(main: Http, poller: Http) -> tuple[float, float]:
    intent_id, seq = _waiting_intent(main)
    got: dict[str, Any] = {}

    def poll() -> None:
        try:
            path = f"/v1/intents/{intent_id}?wait_seconds=30&after_seq={seq}"
            status, content = poller.request("GET", path)
            got["at"] = time.perf_counter()
            if status >= 300:
                raise Failed(f"long-poll: {status} {content[:200]!r}")
            got["seq"] = json.loads(content)["intent"]["seq"]
        except BaseException as exc:
            got["error"] = repr(exc)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    time.sleep(LONG_POLL_SETTLE)
    if "at" in got:
        raise RuntimeError(f"the long-poll returned before the approval: {got}")
    t0, took = _approve(main, intent_id)
    t.join(35)
    if got.get("seq", 0) <= seq:
        raise RuntimeError(f"the long-poll failed: {got.get('error', got)}")
    return (got["at"] - t0) * 1e3, took


def bench_resume(
    kind: str, url: str, key: str, samples: int, subscriber_url: str | None = None
) -> list[ResumeResult]:
    """Resume latency over SSE and long-poll. The intents are made and approved on ``url``;
    the subscriber and the long-poll connect to ``subscriber_url`` (default: ``url``)."""
    results = []
    main, other = Http(kind, url, key), Http(kind, subscriber_url or url, key)
    try:
        for channel, sample in (("SSE stream", _sse_sample), ("long-poll", _long_poll_sample)):
            for _ in range(5):  # warm-up
                sample(main, other)
            resumed: list[float] = []
            responds: list[float] = []
            for _ in range(samples):
                lat, took = sample(main, other)
                resumed.append(lat)
                responds.append(took)
            results.append(ResumeResult(channel, Latency.of(resumed), Latency.of(responds)))
    finally:
        main.close()
        other.close()
    return results


# -- report ----------------------------------------------------------------------------------


def _targets(life: LoadResult, read: LoadResult, resume: list[ResumeResult]) -> list[Target]:
    c = life.clients
    targets = [
        Target(
            f"full lifecycles/s, {c} clients",
            f">= {TARGET_LIFECYCLES:,.0f}/s",
            f"{life.ops_rate:,.0f}/s",
            life.ops_rate >= TARGET_LIFECYCLES and life.errors == 0,
        ),
        Target(
            f"lifecycle request p50, {c} clients",
            f"<= {TARGET_REQUEST_P50_MS:g} ms",
            f"{life.latency.p50_ms:.2f} ms",
            life.latency.p50_ms <= TARGET_REQUEST_P50_MS,
        ),
        Target(
            f"GET /v1/intents/{{id}} p50, {c} clients",
            f"<= {TARGET_REQUEST_P50_MS:g} ms",
            f"{read.latency.p50_ms:.2f} ms",
            read.latency.p50_ms <= TARGET_REQUEST_P50_MS and read.errors == 0,
        ),
    ]
    for r in resume:
        targets.append(
            Target(
                f"resume latency p50, {r.channel}",
                f"<= {TARGET_RESUME_P50_MS:g} ms",
                f"{r.latency.p50_ms:.2f} ms",
                r.latency.p50_ms <= TARGET_RESUME_P50_MS,
            )
        )
        targets.append(
            Target(
                f"resume latency p99, {r.channel}",
                f"<= {TARGET_RESUME_P99_MS:g} ms",
                f"{r.latency.p99_ms:.2f} ms",
                r.latency.p99_ms <= TARGET_RESUME_P99_MS,
            )
        )
    return targets


def _print_report(
    console: Any,
    cfg: Config,
    loads: list[LoadResult],
    resume: list[ResumeResult],
    targets: list[Target],
) -> None:
    from rich.table import Table

    table = Table(
        title=f"HTTP load, {cfg.clients} clients ({cfg.procs} processes x {cfg.threads} "
        f"threads, {cfg.client} keep-alive, loopback)"
    )
    cols = ("workload", "server", "ops", "ops/s", "req/s", "p50 ms", "p99 ms", "errors")
    for col in (*cols, "srv CPU", "CPU/req", "load CPU"):
        table.add_column(col, justify="left" if col in ("workload", "server") else "right")
    for r in loads:
        cpu = per_req = load = "-"
        if r.server_cpu is not None and r.load_cpu is not None:
            cpu = f"{r.server_cpu / r.seconds:.0%}"
            per_req = f"{r.server_cpu / max(r.requests, 1) * 1e6:,.0f} us"
            load = f"{r.load_cpu / r.seconds:.0%}"
        table.add_row(
            r.workload, r.server, f"{r.ops:,}", f"{r.ops_rate:,.0f}", f"{r.request_rate:,.0f}",
            f"{r.latency.p50_ms:.2f}", f"{r.latency.p99_ms:.2f}", str(r.errors), cpu, per_req,
            load,
        )  # fmt: skip
    console.print(table)
    console.print(
        "ops: lifecycles (5 requests each) or requests. GET intent: GET /v1/intents/{id}. "
        "srv CPU: the server process's CPU time over the window (100% = one core); CPU/req: "
        f"the same per request; load CPU: all load processes'. {os.cpu_count()} CPUs here. "
        "/ping is async def, /ping-sync a plain def (run in the threadpool, as tether's "
        "routes are)."
    )

    life = loads[0]
    table = Table(title="Lifecycle requests (same run as above)")
    for col in ("request", "count", "p50 ms", "p99 ms", "mean ms"):
        table.add_column(col, justify="left" if col == "request" else "right")
    for kind, lat in life.by_request.items():
        table.add_row(
            kind, f"{lat.samples:,}", f"{lat.p50_ms:.2f}", f"{lat.p99_ms:.2f}",
            f"{lat.mean_ms:.2f}",
        )  # fmt: skip
    console.print(table)

    table = Table(title="Resume latency: approving POST .../respond sent -> subscriber woken")
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
            console.print(f"[yellow]{r.workload}: first error: {r.first_error}[/yellow]")


def _write_json(
    cfg: Config, loads: list[LoadResult], resume: list[ResumeResult], targets: list[Target]
) -> None:
    import tether

    def load(r: LoadResult) -> dict[str, Any]:
        return {**asdict(r), "ops_rate": r.ops_rate, "request_rate": r.request_rate}

    doc = {
        "benchmark": "http",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "tether": tether.__version__,
        "config": {**asdict(cfg), "clients": cfg.clients},
        "load": [load(r) for r in loads],
        "resume": [asdict(r) for r in resume],
        "targets": [asdict(t) for t in targets],
        "passed": all(t.passed for t in targets),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Config]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1.5 s phases, 40 samples")
    parser.add_argument("--procs", type=int, default=4, help="load processes (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="clients per process (4)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per load phase")
    parser.add_argument("--samples", type=int, default=None, help="resume samples per channel")
    parser.add_argument("--trivial-app", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--client",
        choices=("httpx", "stdlib"),
        default="httpx",
        help="load clients: httpx.Client (default) or http.client (less client CPU)",
    )
    args = parser.parse_args(argv)
    seconds = args.seconds or (1.5 if args.quick else 5.0)
    samples = args.samples or (40 if args.quick else 200)
    return args, Config(args.procs, args.threads, seconds, samples, args.client)


def main(argv: list[str] | None = None) -> int:
    args, cfg = parse_args(argv)
    if args.trivial_app:
        serve_trivial(args.host, args.port)
        return 0

    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 110)  # no wrapping when piped
    root = Path(tempfile.mkdtemp(prefix="tether-bench-http-"))
    db_url = f"sqlite:///{root / 'bench.db'}"
    servers: list[Server] = []
    gen: LoadGenerator | None = None
    try:
        console.print(f"[bold]tether HTTP benchmark[/bold] in {root}")
        key = json.loads(_cli(root, "keys", "create", "--role", "admin", "--db", db_url, "--json"))
        key = str(key["key"])
        tether_argv = [sys.executable, "-m", "tether", "serve", "--db", db_url]
        tether_argv += ["--host", "127.0.0.1", "--log-level", "warning"]
        servers.append(Server("tether", tether_argv, root, {"TETHER_RATE_LIMIT": "0"}))
        trivial_argv = [sys.executable, os.path.abspath(__file__), "--trivial-app"]
        servers.append(Server("trivial", trivial_argv, root, {}))
        tether_srv, trivial_srv = servers
        console.print(f"starting {cfg.procs} load processes x {cfg.threads} threads ...")
        gen = LoadGenerator(cfg.procs, cfg.threads)
        for srv in servers:
            srv.wait_ready()
        console.print(f"tether serve on {tether_srv.url}, trivial app on {trivial_srv.url}")

        loads: list[LoadResult] = []
        url, kind = tether_srv.url, cfg.client
        phases = [
            ("lifecycle", tether_srv, Task("lifecycle", kind, url, key), 5),
            ("GET intent", tether_srv, Task("read", kind, url, key), 1),
            ("GET /ping", trivial_srv,
             Task("get", kind, trivial_srv.url, key, path="/ping"), 1),
            ("GET /ping-sync", trivial_srv,
             Task("get", kind, trivial_srv.url, key, path="/ping-sync"), 1),
        ]  # fmt: skip
        for workload, server, task, per_op in phases:
            task.seconds, task.threads = cfg.seconds, cfg.threads
            console.print(f"  {workload} on {server.name}, {cfg.seconds:g}s ...")
            loads.append(bench_load(gen, workload, server, task, per_op))
        gen.close()
        gen = None

        console.print(f"resume latency, {cfg.samples} samples per channel ...")
        resume = bench_resume(cfg.client, tether_srv.url, key, cfg.samples)
    finally:
        if gen is not None:
            gen.close()
        for srv in servers:
            srv.stop()
        shutil.rmtree(root, ignore_errors=True)

    targets = _targets(loads[0], loads[1], resume)
    _print_report(console, cfg, loads, resume, targets)
    _write_json(cfg, loads, resume, targets)
    console.print(f"results written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
