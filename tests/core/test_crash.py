"""Crash safety, proven by SIGKILL: every acknowledged transition survives, the chain verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tether
from tether import Status

WRITER = Path(__file__).with_name("_crash_writer.py")


def _kill_writer_mid_burst(db_url: str, threads: int, after_lines: int) -> list[str]:
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), db_url, str(threads)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acked: list[str] = []
    deadline = time.monotonic() + 60
    while len(acked) < after_lines and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate()  # lines already written before the kill were acknowledged too
    acked += [line for line in rest.splitlines() if line.strip()]
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= after_lines, "the writer did not get going"
    return acked


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 8])
def test_sigkill_loses_no_acknowledged_transition(db_url: str, threads: int) -> None:
    for round_ in range(3):
        acked = _kill_writer_mid_burst(db_url, threads, after_lines=150 + 50 * round_)
        with tether.connect(db_url) as client:
            for line in acked:
                kind, intent_id, *rest = line.split()
                intent = client.get_intent(intent_id)
                if kind == "step":
                    assert client.get_step(intent_id, rest[0]) is not None, line
                elif kind == "done":
                    assert intent.status is Status.COMPLETED, line
            report = client.verify_audit()
            assert report.ok, report.problems
        # the store stays usable after the crash: once the dead writer's leases expire (here:
        # a clock five minutes ahead), its unfinished intents are claimed and continued
        later = tether.FrozenClock(datetime.now(UTC) + timedelta(minutes=5))
        with tether.connect(db_url, clock=later) as client:
            open_ones = client.list_intents(status=Status.IN_PROGRESS, limit=500).items
            for intent in open_ones:
                claim = client.claim_intent(intent.intent_id, owner="recovery", lease_seconds=5)
                client.complete(intent.intent_id, {"recovered": True}, lease=claim.lease)
            assert client.verify_audit().ok
