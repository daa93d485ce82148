"""A run parked by an older release resumes after an upgrade.

The fixtures are the record the adapter keeps in tether for the payments run of ``_app.py``,
suspended on its payment, as written by openai-agents 0.24.0 (the release this adapter was
built on; schema 1.21) and by 0.20.0 (schema 1.15). ``fixtures/make_run_state.py`` wrote
them; they are never regenerated, so a newer SDK must keep reading them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import tether
from tether_openai_agents import StoredStateError
from tether_openai_agents._state import STATE_KEY

from ._app import ADDRESS, PAY, App

FIXTURES = Path(__file__).with_name("fixtures")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _parked(client: tether.Client, data: dict[str, Any]) -> str:
    """An intent whose run was parked with ``data`` as its stored state, by a process that has
    since gone away."""
    intent = client.create_intent(PAY, ADDRESS, {"input": "Pay invoice 42"})
    lease = client.start(intent.intent_id)
    client.put_state(intent.intent_id, data, expected_version=0, key=STATE_KEY, lease=lease)
    client.release(lease)
    return intent.intent_id


@pytest.mark.parametrize("release", ["0.24.0", "0.20.0"])
def test_a_run_parked_by_an_older_release_resumes(
    release: str, client: tether.Client, alice: tether.Client, app: App
) -> None:
    data = json.loads((FIXTURES / f"run_state_{release}.json").read_text())
    assert data["sdk"] == release
    intent_id = _parked(client, data)
    runner = app.runners[PAY]

    waiting = run(runner.resume(client, intent_id))
    assert waiting.waiting and waiting.wait is not None
    assert waiting.wait.key.startswith("approval:call_fixture_pay:")
    assert '"amount":32000' in (waiting.wait.human_task.description or "")  # type: ignore[union-attr]

    alice.approve(intent_id)
    done = run(runner.resume(client, intent_id))
    assert done.completed
    assert done.final_output == "final: invoice 42: 32000 EUR to ACME | paid 32000 EUR to ACME"
    assert app.effects.read() == ["pay:32000:ACME"]  # the lookup was done before it parked


def test_a_state_written_by_a_newer_adapter_release_is_left_for_a_newer_worker(
    client: tether.Client, app: App
) -> None:
    intent_id = _parked(client, {"format": 99, "run_state": {}})
    with pytest.raises(StoredStateError, match="newer release"):
        run(app.runners[PAY].resume(client, intent_id))
    intent = client.get_intent(intent_id)
    assert intent.status is tether.Status.IN_PROGRESS and intent.lease is None  # not failed
