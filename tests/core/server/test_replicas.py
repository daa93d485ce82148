"""Many ``tether serve`` replicas on one PostgreSQL: real processes on the real database."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ...pg import fresh_schema
from .conftest import Server, new_key, start_server, tether_cli

AGENT = "agent://acme/refunds"


@pytest.fixture
def replicas() -> Iterator[tuple[list[Server], dict[str, str]]]:
    with fresh_schema() as url:
        keys = {
            "admin": new_key(url, "--role", "admin"),
            "agent": new_key(url, "--role", "agent", "--agent", AGENT),
            "alice": new_key(url, "--role", "approver", "--subject", "alice"),
        }
        servers = [start_server(url) for _ in range(3)]
        try:
            yield servers, keys
        finally:
            for s in servers:
                if s.process.poll() is None:
                    s.process.kill()
                s.process.wait(10)


def h(key: str) -> dict[str, str]:
    return {"x-api-key": key}


class StepLoad:
    """Record journal steps on one intent as fast as possible; remember what was acknowledged."""

    def __init__(self, key: str, target: str) -> None:
        self.key, self.target = key, target
        self.acked: list[str] = []
        self.statuses: list[int] = []
        self.stop = threading.Event()

    def run(self, server: Server, prefix: str, *, through_outages: bool) -> None:
        with httpx.Client(timeout=15) as http:
            n = 0
            while not self.stop.is_set():
                step = f"{prefix}-{n}"
                try:
                    r = http.post(f"{server.url}/v1/intents/{self.target}/steps",
                                  json={"key": step, "result": n}, headers=h(self.key))  # fmt: skip
                except httpx.TransportError:
                    if not through_outages:
                        return  # the replica is gone; what it acknowledged is checked after
                    self.statuses.append(0)
                    continue
                self.statuses.append(r.status_code)
                if r.status_code == 200:
                    self.acked.append(step)
                else:
                    assert r.status_code == 503, r.text  # the database is down: 503, never 500
                    time.sleep(0.05)
                n += 1

    def start(
        self, servers: list[Server], per_server: int, *, through_outages: bool
    ) -> list[threading.Thread]:
        threads = [
            threading.Thread(
                target=self.run,
                args=(s, f"{s.url[-5:]}-{i}"),
                kwargs={"through_outages": through_outages},
            )
            for s in servers
            for i in range(per_server)
        ]
        for t in threads:
            t.start()
        return threads


def create(url: str, key: str, **extra: object) -> dict[str, object]:
    body = {"intent_type": "refund.request.v1", "to_agent": AGENT, "correlation_id": str(uuid.uuid4()),
            "payload": {}, **extra}  # fmt: skip
    response = httpx.post(f"{url}/v1/intents", json=body, headers=h(key))
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_created_on_a_approved_on_b_seen_on_c(
    replicas: tuple[list[Server], dict[str, str]],
) -> None:
    (a, b, c), keys = replicas
    intent_id = create(a.url, keys["agent"], human_task={"title": "ok?"})["intent_id"]
    frames: list[str] = []
    connected = threading.Event()

    def subscribe() -> None:
        with httpx.stream("GET", f"{c.url}/v1/intents/{intent_id}/events/stream",
                          params={"since": 3, "wait_seconds": 30}, headers=h(keys["agent"]),
                          timeout=60) as response:  # fmt: skip
            connected.set()
            for line in response.iter_lines():
                if line.startswith("event:"):
                    frames.append(line.split(":", 1)[1].strip())
                    if frames[-1] == "intent.completed":
                        return

    reader = threading.Thread(target=subscribe)
    reader.start()
    connected.wait(10)
    time.sleep(0.2)
    started = time.monotonic()
    approved = httpx.post(f"{b.url}/v1/intents/{intent_id}/resume",
                          json={"task_result": {"outcome": "approved"}}, headers=h(keys["alice"]))  # fmt: skip
    assert approved.status_code == 200
    done = httpx.post(f"{a.url}/v1/intents/{intent_id}/resolve", json={"status": "COMPLETED", "result": {}},
                      headers=h(keys["agent"]))  # fmt: skip
    assert done.status_code == 200
    reader.join(30)
    assert frames == ["intent.resumed", "intent.completed"]
    assert time.monotonic() - started < 15  # pushed by NOTIFY, not found by the end of the window
    # a long-poll held by C also wakes on B's change
    other = create(a.url, keys["agent"], human_task={"title": "again?"})["intent_id"]
    threading.Timer(0.3, lambda: httpx.post(f"{b.url}/v1/intents/{other}/resume",
                    json={"task_result": {"outcome": "rejected"}}, headers=h(keys["alice"]))).start()  # fmt: skip
    polled = httpx.get(f"{c.url}/v1/intents/{other}", params={"wait_seconds": 30}, headers=h(keys["agent"]),
                       timeout=60).json()  # fmt: skip
    assert polled["intent"]["status"] == "IN_PROGRESS"


def test_sigkill_of_a_replica_loses_nothing_and_its_work_is_taken_over(
    replicas: tuple[list[Server], dict[str, str]],
) -> None:
    (a, b, c), keys = replicas
    # work that B holds when it dies: a lease and a timer
    leased = create(b.url, keys["agent"])["intent_id"]
    claim = httpx.post(f"{b.url}/v1/intents/{leased}/claim", json={"owner": "worker-on-b", "lease_seconds": 2},
                       headers=h(keys["agent"])).json()["claim"]  # fmt: skip
    assert claim["lease"]["owner"] == "worker-on-b"
    timed = create(b.url, keys["agent"])["intent_id"]
    lease = httpx.post(
        f"{b.url}/v1/intents/{timed}/start", json={}, headers=h(keys["agent"])
    ).json()["lease"]
    fire_at = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    opened = httpx.post(f"{b.url}/v1/intents/{timed}/waits", json={"kind": "time", "fire_at": fire_at},
                        headers={**h(keys["agent"]), "X-Lease-Token": lease["token"]})  # fmt: skip
    assert opened.status_code == 200

    load = StepLoad(keys["agent"], create(a.url, keys["agent"])["intent_id"])
    workers = load.start([a, b], 2, through_outages=False)
    time.sleep(1.0)
    os.kill(b.process.pid, signal.SIGKILL)
    time.sleep(1.0)
    load.stop.set()
    for w in workers:
        w.join(20)
    acked, target = load.acked, load.target
    assert acked
    steps = httpx.get(f"{a.url}/v1/intents/{target}/steps", headers=h(keys["agent"])).json()[
        "steps"
    ]
    assert set(acked) <= {s["key"] for s in steps}  # every acknowledged write survived

    time.sleep(2.5)  # past the dead replica's lease and timer
    taken = httpx.post(f"{a.url}/v1/intents/{leased}/claim", json={"owner": "worker-on-a"},
                       headers=h(keys["agent"]))  # fmt: skip
    assert taken.status_code == 200 and taken.json()["claim"]["lease"]["owner"] == "worker-on-a"
    deadline = time.monotonic() + 15
    while True:  # A's and C's tickers fire the timer; exactly one of them does
        intent = httpx.get(f"{c.url}/v1/intents/{timed}", headers=h(keys["agent"])).json()["intent"]
        if intent["status"] == "IN_PROGRESS" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert intent["status"] == "IN_PROGRESS"
    time.sleep(1.5)  # let both tickers run again: the timer must not fire twice
    events = httpx.get(f"{a.url}/v1/intents/{timed}/events", headers=h(keys["agent"])).json()[
        "events"
    ]
    assert [e["event_type"] for e in events].count("intent.resumed") == 1
    report = httpx.get(f"{c.url}/v1/audit/verify", headers=h(keys["admin"])).json()["report"]
    assert report["ok"], report["problems"]


def _pg(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
                   check=True, capture_output=True, timeout=60)  # fmt: skip


@pytest.mark.slow
def test_postgres_restart_under_load(replicas: tuple[list[Server], dict[str, str]]) -> None:
    (a, b, _), keys = replicas
    load = StepLoad(keys["agent"], create(a.url, keys["agent"])["intent_id"])
    workers = load.start([a, b], 1, through_outages=True)
    acked, statuses, stop, target = load.acked, load.statuses, load.stop, load.target
    try:
        time.sleep(1.0)
        _pg("stop")
        time.sleep(2.0)
    finally:
        _pg("start")
    deadline = time.monotonic() + 60
    recovered = False
    while time.monotonic() < deadline:  # the replicas recover by themselves
        count = len(acked)
        time.sleep(1.0)
        if len(acked) > count:
            recovered = True
            break
    stop.set()
    for w in workers:
        w.join(30)
    assert 503 in statuses and recovered
    steps = httpx.get(f"{a.url}/v1/intents/{target}/steps", headers=h(keys["agent"])).json()[
        "steps"
    ]
    assert set(acked) <= {s["key"] for s in steps}


def test_migrate_and_refuse_a_newer_schema() -> None:
    with fresh_schema() as url:
        out = tether_cli("migrate", "--db", url)
        assert out.returncode == 0 and "schema version" in out.stdout
        import psycopg

        from ...pg import PG_BASE

        schema = url.split("%3D")[1]
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(
                f"INSERT INTO {schema}.tether_migrations VALUES (999, 'from the future', 'x')"
            )
        refused = tether_cli("serve", "--db", url, "--port", "1")
        assert refused.returncode == 1 and "schema_too_new" in refused.stderr
