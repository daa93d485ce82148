"""Handoffs: the agents a durable agent hands off to are durable too, as agents or as
``handoff(...)`` objects, and a run suspended in one of them resumes there."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import tether
from agents import Agent, handoff
from tether_openai_agents import DurableRunner
from tether_openai_agents.testing import ScriptedModel, journal, tool_call

from ._app import ADDRESS, PAY, App, final


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.mark.parametrize("how", ["agent", "handoff object"])
def test_a_run_suspended_after_a_handoff_resumes_in_the_agent_it_was_handed_to(
    how: str, client: tether.Client, alice: tether.Client, app: App
) -> None:
    payments = app.agents[PAY]
    target = payments if how == "agent" else handoff(payments)
    transfer = handoff(payments).tool_name
    triage_model = ScriptedModel([[tool_call(transfer, {})]], final)
    triage = Agent(name="triage", handoffs=[target], model=triage_model)
    runner = DurableRunner(triage, address=ADDRESS)

    outcome = run(runner.run(client, "Pay invoice 42"))
    assert outcome.waiting and outcome.wait is not None
    assert outcome.wait.human_task is not None and outcome.wait.human_task.title == "Approve pay?"
    alice.approve(outcome.intent_id)
    done = run(runner.resume(client, outcome.intent_id))

    assert done.completed and done.final_output.endswith("paid 32000 EUR to ACME")
    assert app.effects.read() == ["lookup:42", "pay:32000:ACME"]
    keys = list(journal(client, outcome.intent_id))
    assert any(k.startswith("tool:pay:") for k in keys)  # the handed-to agent's tools journal
