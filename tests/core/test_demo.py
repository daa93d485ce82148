"""The README's demo: the refund story across real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_whole_story(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tether", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert out.returncode == 0, out.stderr + out.stdout
    for expected in (
        "submitted intent",
        "approved: intent",
        "claimed, refunded and completed intent",
        "intent.human_task_assigned",
        "intent.resumed",
        "human:finance-lead@example.com",
        "intent.completed",
        "audit chain intact: 1 intents, 9 events verified",
    ):
        assert expected in out.stdout, expected
