"""The refund example runs offline, across its processes, and refunds each order once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_the_refund_example_tells_its_story() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "TETHER_DB")}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "langgraph_refund.py")],
        capture_output=True, text=True, timeout=180, cwd=ROOT, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "waits for finance-lead@example.com: Refund 120.00 EUR for order A-1042?" in text
    assert "finance-lead@example.com approved run" in text
    # each refund is issued exactly once, the large one only after the approval
    assert text.count("[psp] refunded 120.00 EUR for order A-1042") == 1
    assert text.count("[psp] refunded 30.00 EUR for order A-1043") == 1
    assert text.index("approved run") < text.index("[psp] refunded 120.00")
    assert "completed: Done: Refunded 120.00 EUR for order A-1042" in text
    assert "intent.human_task_assigned" in text and "intent.completed" in text
