"""Real processes, killed with SIGKILL: runs end complete with every side effect done once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import tether
from langchain_core.messages import HumanMessage
from tether import Client, Status

from ...server_harness import running_server
from ._app import build
from .conftest import person

ROOT = Path(__file__).resolve().parents[3]


def _until(predicate: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@contextmanager
def _target(kind: str, db_url: str) -> Iterator[tuple[Client, dict[str, str]]]:
    """A client for the test, and the environment that points a worker at the same store:
    the store file itself, or a server on loopback (the workers then talk HTTP)."""
    with tether.connect(db_url) as local:
        if kind == "local":
            yield local, {"TETHER_DB": db_url}
            return
        with running_server(local.engine) as url:
            key = local.engine.create_key(tether.KeyRole.ADMIN, subject="ops")
            yield local, {"TETHER_URL": url, "TETHER_API_KEY": key.secret}


def _worker(env: dict[str, str], effects: Path, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.adapters.langgraph._app"],
        cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, **env, "EFFECTS": str(effects), **extra},
    )  # fmt: skip


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)


def _submit(client: Client, order: str, amount: int) -> str:
    durable = build(client)
    intent = durable.submit({"messages": [HumanMessage(order)], "order": order, "amount": amount})
    return intent.intent_id


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["local", "http"])
def test_killed_at_the_wait_resumed_by_another_process(
    kind: str, db_url: str, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.log"
    effects.touch()
    with _target(kind, db_url) as (client, env):
        intent_id = _submit(client, "o-500", 500)
        first = _worker(env, effects)
        try:
            _until(lambda: client.get_intent(intent_id).status is Status.WAITING)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(30)
        assert first.returncode == -signal.SIGKILL
        person(client).approve(intent_id, comment="ok")
        second = _worker(env, effects)
        try:
            _until(lambda: client.get_intent(intent_id).status is Status.COMPLETED)
        finally:
            _stop(second)
        done = client.get_intent(intent_id)
        assert done.result["status"] == "refunded"
        assert done.result["messages"][-1]["content"] == "Charged back and audited."
    assert sorted(effects.read_text().split()) == [
        "audit:o-500", "charge:o-500", "pay:o-500", "prepare:o-500",
    ]  # fmt: skip


@pytest.mark.slow
def test_killed_inside_a_node_after_a_tool_ran(db_url: str, tmp_path: Path) -> None:
    effects = tmp_path / "effects.log"
    effects.touch()
    with _target("local", db_url) as (client, env):
        intent_id = _submit(client, "o-50", 50)
        doomed = _worker(env, effects, LEASE="1", SLOW="60")
        try:
            # charge_back ran and is journaled; audit, its sibling in the same step, sleeps
            _until(lambda: "charge:o-50" in effects.read_text().split())
            _until(lambda: any("call_charge" in s.key for s in client.list_steps(intent_id)))
        finally:
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(30)
        assert client.get_intent(intent_id).status is Status.IN_PROGRESS
        rescuer = _worker(env, effects, LEASE="1")
        try:
            _until(lambda: client.get_intent(intent_id).status is Status.COMPLETED)
        finally:
            _stop(rescuer)
        events = [e.event_type for e in client.list_events(intent_id)]
        assert events.count("intent.claimed") >= 1  # taken over once the lease ran out
        assert client.get_intent(intent_id).result["status"] == "refunded"
    # prepare finished before the kill (its checkpoint kept it), charge_back is in the journal,
    # audit never finished in the killed process
    assert effects.read_text().split() == ["prepare:o-50", "charge:o-50", "audit:o-50", "pay:o-50"]
