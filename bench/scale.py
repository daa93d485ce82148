"""Scale benchmark: a store with 10^6 intents of which 10^5 wait for people, behind a server.

The store is filled by bulk-copying rows tether itself wrote (two templates: an intent that
ended, and one that waits on a human task), spread over 100 agents; the waiting ones are
assigned to ten groups, and 1 in 100 also to the person ``alice``. Then one ``tether serve``
opens it and this process measures, sequentially over HTTP (one keep-alive client):

- ``GET /v1/me/tasks?limit=50`` as alice (her tasks: assigned to her or her group),
- ``GET /v1/inbox?limit=50`` as alice (AXP's inbox),
- ``GET /v1/intents?to_agent=<one agent>&limit=50`` (an agent's intents, newest first),
- ``GET /v1/intents?status=WAITING&limit=50``,
- ``GET /v1/agents/<one agent>/intents?limit=50`` (the agent's work feed),

p50/p99 of each, and the server's resident memory (``/proc``) after opening, and after each
of three rounds of all the requests above: it should stay flat.

Targets (issue: evidence): listing the inbox or an agent's intents under 20 ms p99 with 10^6
stored and 10^5 waiting; memory flat. Results go to ``bench/results/scale.json``.

Run::

    .venv/bin/python bench/scale.py                         # 10^6 intents, 10^5 waiting
    .venv/bin/python bench/scale.py --quick                 # 10^5 and 10^4
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import tether
from _serve import tether_serve
from tether.ids import new_id

AGENTS = 100
GROUPS = 10
RESULTS = Path(__file__).with_name("results")
TARGET_P99_MS = 20.0


Rows = list[tuple[Any, ...]]


def _copy_rows(
    conn: sqlite3.Connection, table: str, where: str, args: tuple[Any, ...]
) -> tuple[list[str], Rows]:
    cur = conn.execute(f"SELECT * FROM {table} WHERE {where}", args)
    return [d[0] for d in cur.description], cur.fetchall()


def fill(path: Path, total: int, waiting: int) -> None:
    """Two templates written by tether, then bulk copies (setup only: synchronous=OFF)."""
    with tether.connect(f"sqlite:///{path}") as client:
        done = client.create_intent("scale.order.v1", "agent://scale/a0", {"n": 1})
        client.complete(done.intent_id, {"ok": True}, lease=client.start(done.intent_id))
        wait = client.create_intent(
            "scale.order.v1", "agent://scale/a0", {"n": 2},
            human_task=tether.HumanTask(title="Ship order?", groups=["g0"]),
        )  # fmt: skip
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    templates = {}
    for name, intent_id in (("done", done.intent_id), ("wait", wait.intent_id)):
        cols, (row,) = _copy_rows(conn, "intents", "intent_id = ?", (intent_id,))
        ecols, events = _copy_rows(conn, "events", "intent_id = ?", (intent_id,))
        wcols, waits = _copy_rows(conn, "waits", "intent_id = ?", (intent_id,))
        templates[name] = (cols, row, ecols, events, wcols, waits)

    def insert(table: str, cols: list[str], rows: list[tuple[Any, ...]]) -> None:
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        conn.executemany(sql, rows)

    made, chunk = 2, 20_000
    while made < total:
        n = min(chunk, total - made)
        batch: dict[str, list[tuple[Any, ...]]] = {"intents": [], "events": [], "waits": []}
        assignees: list[tuple[Any, ...]] = []
        for k in range(n):
            index = made + k
            kind = "wait" if index < waiting else "done"
            cols, row, ecols, events, wcols, waits = templates[kind]
            intent_id, wait_id = new_id(), new_id()
            r = dict(zip(cols, row, strict=True))
            r.update(intent_id=intent_id, correlation_id=new_id(),
                     to_agent=f"agent://scale/a{index % AGENTS}")  # fmt: skip
            if kind == "wait":
                r["wait_id"] = wait_id
            batch["intents"].append(tuple(r[c] for c in cols))
            for ev in events:
                e = dict(zip(ecols, ev, strict=True))
                e["intent_id"] = intent_id
                batch["events"].append(tuple(e[c] for c in ecols))
            for wt in waits:
                w = dict(zip(wcols, wt, strict=True))
                group = f"g{index % GROUPS}"
                people = ["alice"] if index % 100 == 7 else []
                spec = json.loads(w["spec"])
                spec["human_task"]["groups"] = [group]
                spec["human_task"]["assignees"] = people
                w.update(wait_id=wait_id, intent_id=intent_id, wait_key=wait_id,
                         spec=json.dumps(spec),
                         assignees=json.dumps([*people, f"group:{group}"]))  # fmt: skip
                batch["waits"].append(tuple(w[c] for c in wcols))
                for who in [*people, f"group:{group}"]:  # the index the inbox lists from
                    assignees.append(("default", who, w["opened_at"], wait_id))
        conn.execute("BEGIN IMMEDIATE")
        for table, rows in batch.items():
            if rows:
                insert(table, templates["wait"][{"intents": 0, "events": 2, "waits": 4}[table]], rows)  # type: ignore[arg-type]  # fmt: skip
        if assignees:
            insert("task_assignees", ["workspace", "assignee", "opened_at", "wait_id"], assignees)
        conn.execute("COMMIT")
        made += n
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _key(db: str, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "tether", "keys", "create", *args, "--db", db,
                          "--json"], capture_output=True, text=True, check=True)  # fmt: skip
    return str(json.loads(out.stdout)["key"])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intents", type=int, default=None)
    parser.add_argument("--waiting", type=int, default=None)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    total = args.intents or (100_000 if args.quick else 1_000_000)
    waiting = args.waiting or total // 10
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.db"
        started = time.monotonic()
        fill(path, total, waiting)
        print(
            f"filled {total:,} intents ({waiting:,} waiting) in {time.monotonic() - started:.0f} s"
        )
        db = f"sqlite:///{path}"
        alice = _key(db, "--role", "approver", "--subject", "alice", "--group", "g3")
        admin = _key(db, "--role", "admin")
        with tether_serve(db) as served:
            url, server = served.url, served.process
            memory = [round(_rss_mb(server.pid), 1)]
            queries = {
                "my tasks (alice)": (alice, "/v1/me/tasks", {"limit": 50}),
                "inbox (alice)": (alice, "/v1/inbox", {"limit": 50}),
                "an agent's intents": (
                    admin,
                    "/v1/intents",
                    {"to_agent": "agent://scale/a7", "limit": 50},
                ),
                "waiting intents": (admin, "/v1/intents", {"status": "WAITING", "limit": 50}),
                "an agent's feed": (admin, "/v1/agents/scale/a7/intents", {"limit": 50}),
            }
            timings: dict[str, list[float]] = {name: [] for name in queries}
            counts: dict[str, int] = {}
            with httpx.Client(base_url=url, timeout=60) as http:
                for _ in range(3):
                    for name, (key, path_, params) in queries.items():
                        for _ in range(args.samples // 3):
                            t0 = time.perf_counter()
                            r = http.get(path_, params=params, headers={"x-api-key": key})
                            timings[name].append((time.perf_counter() - t0) * 1000)
                            r.raise_for_status()
                            body = r.json()
                            counts[name] = len(
                                next(v for v in body.values() if isinstance(v, list))
                            )
                    memory.append(round(_rss_mb(server.pid), 1))
    rows = [
        {"query": n, "returned": counts[n], "p50_ms": _pct(t, 0.5), "p99_ms": _pct(t, 0.99)}
        for n, t in timings.items()
    ]
    print(
        f"\n{'query':<22} {'returned':>8} {'p50 ms':>8} {'p99 ms':>8}  p99 <= {TARGET_P99_MS:.0f} ms"
    )
    for r in rows:
        ok = "yes" if r["p99_ms"] <= TARGET_P99_MS else "NO"
        print(f"{r['query']:<22} {r['returned']:>8} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}  {ok}")
    print(f"server RSS (MB) after opening and after each round: {memory}")
    RESULTS.mkdir(exist_ok=True)
    out = {"intents": total, "waiting": waiting, "queries": rows, "rss_mb": memory}
    (RESULTS / "scale.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
