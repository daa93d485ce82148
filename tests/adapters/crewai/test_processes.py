"""Real processes: a run killed (SIGKILL) while it waits, or in the middle of a task, is
finished by another process, with every side effect done exactly once.

The child processes run with none of crewai's switches set and each with its own, empty
HOME: the adapter switches crewai's calls home off itself (a socket guard in each child logs
any attempt to reach the network), and nothing a resumed run needs lives under HOME.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import tether
from tether import Principal, Status

from ._apps import AGENT, FLOW_AGENT, lines

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def _child(command: str, db: str, workdir: Path, **env: str) -> subprocess.Popen[str]:
    home = workdir / f"home-{command}-{time.monotonic_ns()}"
    home.mkdir()
    clean = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("CREWAI_", "OTEL_")) and k != "XDG_DATA_HOME"
    }  # fmt: skip
    clean.update(HOME=str(home), TETHER_TEST_NET_LOG=str(workdir / "network.log"), **env)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.adapters.crewai._apps", command, db, str(workdir)],
        cwd=ROOT, env=clean, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _until(predicate: Callable[[], object], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(30)


def _finish(process: subprocess.Popen[str]) -> str:
    out, _ = process.communicate(timeout=180)
    assert process.returncode == 0, out
    return out


def _pid_of(process: subprocess.Popen[str], path: Path) -> list[str]:
    return [line.split(" ", 1)[1] for line in path.read_text().splitlines()
            if line.startswith(f"{process.pid} ")]  # fmt: skip


def _no_network(workdir: Path) -> None:
    log = workdir / "network.log"
    assert not log.exists() or log.read_text() == "", log.read_text()


def _only(client: tether.Client, agent: str) -> tether.Intent:
    [intent] = client.list_intents(to_agent=agent).items
    return intent


def test_a_crew_killed_while_it_waits_is_finished_by_another_process(
    db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "effects.log").touch()
    (tmp_path / "calls.log").touch()
    first = _child("crew-run", db_url, tmp_path, TETHER_TEST_LINGER="1")
    with tether.connect(db_url) as client:
        _until(lambda: client.list_intents(to_agent=AGENT).items
               and _only(client, AGENT).status is Status.WAITING)  # fmt: skip
        _kill(first)  # the process dies while the crew waits for the editor
        intent = _only(client, AGENT)
        editor = client.as_actor(Principal.human("editor@example.com", groups=["editors"]))
        editor.approve(intent.intent_id, comment="go")
        second = _child("crew-worker", db_url, tmp_path)
        _finish(second)
        done = client.get_intent(intent.intent_id)
        assert done.status is Status.COMPLETED, done
        assert "approved by human:editor@example.com; their comment: go" in done.result["raw"]
    assert lines(tmp_path / "effects.log") == [
        "search:durable agents",
        "fact_check:agents crash",
        "publish:Durable agents",
    ]
    # the second process called the model only for the task that had not run
    assert _pid_of(second, tmp_path / "calls.log") == ["PUBLISH", "PUBLISH"]
    _no_network(tmp_path)


def test_a_crew_killed_in_the_middle_of_a_task_is_taken_over(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "effects.log").touch()
    (tmp_path / "calls.log").touch()
    doomed = _child(
        "crew-run", db_url, tmp_path, TETHER_TEST_GATE="none", TETHER_TEST_HANG_IN_TOOL="1",
        TETHER_TEST_LEASE="2",
    )  # fmt: skip
    _until(lambda: (tmp_path / "hanging").exists())  # inside fact_check, after search ran
    _kill(doomed)
    with tether.connect(db_url) as client:
        intent = _only(client, AGENT)
        assert intent.status is Status.IN_PROGRESS
        rescuer = _child("crew-worker", db_url, tmp_path, TETHER_TEST_GATE="none",
                         TETHER_TEST_LEASE="2")  # fmt: skip
        _finish(rescuer)
        assert client.get_intent(intent.intent_id).status is Status.COMPLETED
    # search ran once (journaled; the rescuer got its result back), fact_check and publish
    # once (the killed attempt never finished fact_check)
    assert lines(tmp_path / "effects.log") == [
        "search:durable agents",
        "fact_check:agents crash",
        "publish:Durable agents",
    ]
    assert _pid_of(rescuer, tmp_path / "effects.log") == [
        "fact_check:agents crash",
        "publish:Durable agents",
    ]
    _no_network(tmp_path)


def test_a_flow_killed_while_it_waits_is_resumed_once_by_another_process(
    db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "effects.log").touch()
    first = _child("flow-run", db_url, tmp_path, TETHER_TEST_LINGER="1")
    with tether.connect(db_url) as client:
        _until(lambda: client.list_intents(to_agent=FLOW_AGENT).items
               and _only(client, FLOW_AGENT).status is Status.WAITING)  # fmt: skip
        _kill(first)
        intent = _only(client, FLOW_AGENT)
        editor = client.as_actor(Principal.human("editor@example.com", groups=["editors"]))
        editor.approve(intent.intent_id, comment="ship")
        second = _child("flow-worker", db_url, tmp_path)
        _finish(second)
        done = client.get_intent(intent.intent_id)
        assert done.status is Status.COMPLETED
        assert done.result["output"] == "published: a post about durable agents (ship)"
    assert lines(tmp_path / "effects.log") == [
        "write",
        "review",
        "publish:a post about durable agents",
    ]
    assert _pid_of(second, tmp_path / "effects.log") == ["publish:a post about durable agents"]
    _no_network(tmp_path)
