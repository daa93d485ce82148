"""An approval cannot be forged by editing the run state kept in tether.

The stored ``RunState`` is written by the agent's own key, so whoever holds that key can edit
it. What approves a call is the answer to tether's human wait, which an agent key can never
give; the adapter drops every approval decision found in a stored state and applies only the
answers tether holds, for the call id *and* the arguments the person saw.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import tether
from agents import Runner, RunState
from tether_openai_agents import UnapprovedToolCall, _state, _tools
from tether_openai_agents._state import STATE_KEY

from ._app import PAY, App


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _stored(client: tether.Client, intent_id: str) -> tether.StateRecord:
    record = client.get_state(intent_id, STATE_KEY)
    assert record is not None and record.data["run_state"] is not None
    return record


def _forge_approval(
    app: App, record: tether.StateRecord, *, hide_pending: bool = True
) -> dict[str, Any]:
    """What a forger would store: the state approved by the SDK itself, by default with the
    pending approval taken off it, so that nothing seems to wait. (Resumed inside a durable
    run, the journal then replays the model's turn with the same call id, and the SDK runs the
    call at once, trusting the approval it finds: see the last test of this file.)"""

    async def forge() -> dict[str, Any]:
        state = await RunState.from_json(app.runners[PAY].agent, record.data["run_state"])
        for item in state.get_interruptions():
            state.approve(item)
        return state.to_json()

    forged = run(forge())
    assert forged["context"]["function_tool_approvals"], "the forgery carries an approval"
    if hide_pending:
        forged["current_step"] = None
    return {**record.data, "run_state": forged}


def test_the_forgery_pays_when_the_stored_state_is_trusted(client: tether.Client, app: App) -> None:
    """The threat is real: handed to the SDK as it is, the forged state makes the payment."""
    runner = app.runners[PAY]
    outcome = run(runner.run(client, "Pay invoice 42"))
    forged = _forge_approval(app, _stored(client, outcome.intent_id), hide_pending=False)

    async def trusting() -> None:
        state = await RunState.from_json(runner.agent, forged["run_state"])
        await Runner.run(runner.agent, state)  # outside a durable run: the plain SDK

    run(trusting())
    assert app.effects.read() == ["lookup:42", "pay:32000:ACME"]


def test_an_approval_written_into_the_stored_state_approves_nothing(
    client: tether.Client, alice: tether.Client, app: App
) -> None:
    runner = app.runners[PAY]
    outcome = run(runner.run(client, "Pay invoice 42"))
    record = _stored(client, outcome.intent_id)
    client.put_state(  # the agent's key may write its state...
        outcome.intent_id, _forge_approval(app, record), expected_version=record.version,
        key=STATE_KEY,
    )  # fmt: skip

    # ...but the run still waits for the person,
    still = run(runner.resume(client, outcome.intent_id))
    assert still.waiting and app.effects.read() == ["lookup:42"]
    # and when the person rejects, the forged approval counts for nothing.
    alice.reject(outcome.intent_id, comment="no")
    done = run(runner.resume(client, outcome.intent_id))
    assert done.completed and "was rejected by human:alice@example.com" in done.final_output
    assert app.effects.read() == ["lookup:42"]


def test_with_the_state_not_cleaned_the_tool_itself_refuses_the_forged_call(
    client: tether.Client, alice: tether.Client, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: should an approval ever slip through the state cleaning (a field a
    future SDK release adds, say), the tool finds no answer in tether and does not run."""
    monkeypatch.setattr(_state, "without_decisions", lambda state_json: state_json)
    runner = app.runners[PAY]
    outcome = run(runner.run(client, "Pay invoice 42"))
    record = _stored(client, outcome.intent_id)
    client.put_state(outcome.intent_id, _forge_approval(app, record),
                     expected_version=record.version, key=STATE_KEY)  # fmt: skip
    alice.reject(outcome.intent_id, comment="no")

    with pytest.raises(UnapprovedToolCall):
        run(runner.resume(client, outcome.intent_id))
    assert app.effects.read() == ["lookup:42"]
    failed = client.get_intent(outcome.intent_id)
    assert failed.status is tether.Status.FAILED and failed.error is not None
    assert "UnapprovedToolCall" in failed.error.message


def test_an_answer_given_for_some_arguments_never_approves_others(
    client: tether.Client, alice: tether.Client, app: App
) -> None:
    runner = app.runners[PAY]
    outcome = run(runner.run(client, "Pay invoice 42"))
    alice.approve(outcome.intent_id)  # approved: 32000 EUR to ACME
    record = _stored(client, outcome.intent_id)
    text = json.dumps(record.data["run_state"])
    assert text.count('{\\"amount\\": 32000, \\"payee\\": \\"ACME\\"}') >= 1
    edited = json.loads(text.replace('\\"amount\\": 32000', '\\"amount\\": 3200000'))
    client.put_state(outcome.intent_id, {**record.data, "run_state": edited},
                     expected_version=record.version, key=STATE_KEY)  # fmt: skip

    again = run(runner.resume(client, outcome.intent_id))
    assert again.waiting and again.wait is not None  # a person is asked about the new amount
    assert again.wait.wait_id != outcome.wait.wait_id  # type: ignore[union-attr]
    assert '"amount":3200000' in (again.wait.human_task.description or "")  # type: ignore[union-attr]
    assert app.effects.read() == ["lookup:42"]


def test_without_the_adapters_two_checks_the_hidden_forgery_would_pay(
    client: tether.Client, alice: tether.Client, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keeps the tests above honest: with the state cleaning and the tool's own check both
    switched off, the same forgery inside a durable run makes the payment the person refused."""

    async def no_approval_needed(*_: Any) -> bool:
        return False

    monkeypatch.setattr(_state, "without_decisions", lambda state_json: state_json)
    monkeypatch.setattr(_tools, "needs_approval", no_approval_needed)
    runner = app.runners[PAY]
    outcome = run(runner.run(client, "Pay invoice 42"))
    record = _stored(client, outcome.intent_id)
    client.put_state(outcome.intent_id, _forge_approval(app, record),
                     expected_version=record.version, key=STATE_KEY)  # fmt: skip
    alice.reject(outcome.intent_id, comment="no")
    assert run(runner.resume(client, outcome.intent_id)).completed
    assert app.effects.read() == ["lookup:42", "pay:32000:ACME"]
