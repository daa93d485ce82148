"""Long external calls: the run waits for the external system to post its result with the wait's
callback token, possibly days later; the model reads that result, an error or a timeout."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import tether
from agents import Agent
from tether import Status, WaitingReason, WaitKind
from tether_openai_agents import DurableRunner, NotInToolStart, callback_token, wait_for_tool
from tether_openai_agents.testing import ScriptedModel, tool_call

from ._app import ADDRESS, KYC, App, final


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _started(app: App) -> tuple[str, str]:
    """The one KYC check the tool body started: (customer, callback token)."""
    [line] = [line for line in app.effects.read() if line.startswith("kyc-start:")]
    _, customer, token = line.split(":", 2)
    return customer, token


def test_the_result_posted_days_later_is_what_the_model_reads(
    client: tether.Client, admin: tether.Client, clock: tether.FrozenClock, app: App
) -> None:
    runner = app.runners[KYC]
    outcome = run(runner.run(client, "Check customer c-7"))

    assert outcome.waiting and outcome.wait is not None
    assert outcome.wait.kind is WaitKind.TOOL and outcome.wait.tool_name == "kyc_check"
    intent = client.get_intent(outcome.intent_id)
    assert intent.waiting_reason is WaitingReason.WAITING_FOR_TOOL
    customer, token = _started(app)
    assert customer == "c-7" and token == outcome.wait.callback_token

    clock.advance(2 * 86400)  # the provider answers two days later, from its own system
    admin.complete_tool(token, {"verdict": "clear", "score": 0.02})
    done = run(runner.resume(client, outcome.intent_id))

    assert done.completed
    assert done.final_output == 'final: {"verdict": "clear", "score": 0.02}'
    assert len(_started(app)) == 2 and len(app.effects.read()) == 1  # started exactly once


def test_an_error_posted_by_the_external_system_reaches_the_model(
    client: tether.Client, admin: tether.Client, app: App
) -> None:
    runner = app.runners[KYC]
    outcome = run(runner.run(client, "Check customer c-7"))
    _, token = _started(app)
    admin.complete_tool(token, error="provider unavailable")
    done = run(runner.resume(client, outcome.intent_id))
    assert done.final_output == "final: The external call kyc_check failed: provider unavailable"


def test_an_external_call_that_never_answers_times_out(
    client: tether.Client, admin: tether.Client, clock: tether.FrozenClock, app: App
) -> None:
    runner = app.runners[KYC]
    outcome = run(runner.run(client, "Check customer c-7"))
    clock.advance(3 * 86400 + 1)
    admin.fire_due_timers()
    done = run(runner.resume(client, outcome.intent_id))
    assert done.completed and "timed out: no result arrived" in done.final_output
    _, token = _started(app)
    with pytest.raises(tether.TetherError):  # the token is spent: a late answer changes nothing
        admin.complete_tool(token, {"verdict": "clear"})


def test_a_body_that_cannot_start_the_call_ends_it_as_failed_at_once(
    client: tether.Client,
) -> None:
    @wait_for_tool(timeout=86400)
    def kyc_check(customer: str) -> None:
        """Check a customer's identity."""
        raise ConnectionError("KYC provider refused the request")

    model = ScriptedModel([[tool_call("kyc_check", {"customer": "c-7"})]], final)
    runner = DurableRunner(Agent(name="kyc", tools=[kyc_check], model=model), address=ADDRESS)
    done = run(runner.run(client, "Check customer c-7"))

    assert done.completed  # in the same call: the wait ended as failed, the run went on
    assert done.final_output == (
        "final: The external call kyc_check failed: ConnectionError: KYC provider refused the request"
    )
    [wait] = client.list_waits(done.intent_id)
    assert wait.outcome == "failed"


def test_a_worker_in_another_process_can_take_the_result(
    client: tether.Client, admin: tether.Client, app: App
) -> None:
    runner = app.runners[KYC]
    intent = client.create_intent(KYC, ADDRESS, {"input": "Check customer c-7"})
    worker = runner.worker(admin, poll_seconds=0.01)  # an admin's worker: see test_approvals
    assert worker.run_once()
    _, token = _started(app)
    admin.complete_tool(token, "clear")
    assert worker.run_once()
    done = client.get_intent(intent.intent_id)
    assert done.status is Status.COMPLETED and done.result == "final: clear"


def test_the_callback_token_exists_only_while_a_call_starts() -> None:
    with pytest.raises(NotInToolStart):
        callback_token()


def test_wait_for_tool_makes_the_function_tool_from_the_plain_function() -> None:
    def kyc(customer: str) -> None:
        """Check a customer."""

    made = wait_for_tool(kyc, name="kyc_check", description="Check a customer's identity.")
    assert made.name == "kyc_check" and made.description == "Check a customer's identity."
    assert made.needs_approval is True  # every call suspends the run
    with pytest.raises(TypeError):
        wait_for_tool(made)  # a function_tool already swallows the body's errors
