"""The kill switch and pause across a fleet of real worker processes, on both stores: work
stops at its next boundary, nothing fails, and after a resume it finishes with every side
effect done exactly once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import tether
from tether import AgentStatus, Status

from .test_worker import AGENT, _until, _worker


def _effects(path: Path) -> list[str]:
    return path.read_text().split()


@pytest.mark.slow
@pytest.mark.parametrize("action", ["kill", "pause"])
def test_a_fleet_stops_at_its_next_boundary_and_goes_on_after_resume(
    store_url: str, tmp_path: Path, action: str
) -> None:
    effects = tmp_path / "effects.log"
    effects.touch()
    items = 40
    with tether.connect(store_url) as client:
        fleet = [_worker(store_url, effects) for _ in range(2)]
        try:
            intent = client.create_intent("batch.process.v1", AGENT, {"items": items})
            _until(lambda: len(_effects(effects)) >= 3)
            stop = client.kill_agent if action == "kill" else client.pause_agent
            stop(AGENT, reason="test")
            _until(
                lambda: (
                    "intent.held" in [e.event_type for e in client.list_events(intent.intent_id)]
                )
            )
            held = client.get_intent(intent.intent_id)
            assert held.status is Status.IN_PROGRESS and held.lease is None  # held, not failed
            done_when_held = len(_effects(effects))
            assert done_when_held < items
            queued = None
            if action == "pause":  # a paused agent still takes intents in, and holds them
                queued = client.create_intent("batch.process.v1", AGENT, {"items": 1})
            time.sleep(1.0)  # the fleet has had time to do more, and must not have
            assert len(_effects(effects)) == done_when_held
            assert client.get_intent(intent.intent_id).lease is None
            assert client.resume_agent(AGENT).status is AgentStatus.ACTIVE
            _until(lambda: client.get_intent(intent.intent_id).status is Status.COMPLETED)
            if queued is not None:
                _until(lambda: client.get_intent(queued.intent_id).status is Status.COMPLETED)
        finally:
            for worker in fleet:
                worker.send_signal(signal.SIGTERM)
            for worker in fleet:
                worker.wait(30)
        done = _effects(effects)
        expected = {f"item:{n}" for n in range(items)} | (
            {"item:0"} if action == "pause" else set()
        )
        assert set(done) == expected
        assert len(done) == items + (1 if action == "pause" else 0)  # each step ran once
        assert client.verify_audit(intent.intent_id).ok
