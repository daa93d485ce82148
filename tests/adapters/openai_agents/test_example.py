"""``examples/openai_agents_payments.py``, offline: the payments story across real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "openai_agents_payments.py"


@pytest.mark.slow
def test_the_example_tells_the_whole_story_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}  # offline: scripted
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True, text=True,
        timeout=240, env={**env, "COLUMNS": "200"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr + out.stdout
    for expected in (
        "a scripted model, offline",
        "WAITING (WAITING_FOR_TOOL)",
        "screened ACME GmbH",
        "WAITING (WAITING_FOR_HUMAN)",
        "approved: intent",
        "COMPLETED: Invoice INV-42 is paid: receipt PAY-INV-42: 32000 EUR to ACME GmbH",
        "intent.human_task_assigned",
        "human:finance-lead",  # who approved, on the trail
        "audit chain intact: 1 intents",
    ):
        assert expected in out.stdout, expected
    ledger = tmp_path / ".tether" / "openai_agents_payments" / "payments.log"
    assert ledger.read_text().splitlines() == ["INV-42 32000 EUR to ACME GmbH"]  # paid once
