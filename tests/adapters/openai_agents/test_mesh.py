"""The mesh at the agent's boundaries: a killed or paused agent stops before its next model
turn (held, not failed) and goes on after a resume; a tool outside its scope is not run and
the model is told; every model turn is reported as spend."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import tether
from agents import Agent, function_tool
from tether import AgentPolicy, Status, ToolPolicy
from tether_openai_agents import DurableRunner
from tether_openai_agents.testing import ScriptedModel, tool_call

from ._app import ADDRESS, Effects, final


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def mover(effects: Effects, on_reserve: Any = None) -> tuple[DurableRunner, ScriptedModel]:
    @function_tool
    def reserve(amount: int) -> str:
        """Reserve the money."""
        effects(f"reserve:{amount}")
        if on_reserve is not None:
            on_reserve()
        return f"reserved {amount}"

    @function_tool
    def transfer(amount: int) -> str:
        """Transfer the money."""
        effects(f"transfer:{amount}")
        return f"transferred {amount}"

    model = ScriptedModel(
        [[tool_call("reserve", {"amount": 70})], [tool_call("transfer", {"amount": 70})]], final
    )
    agent = Agent(name="mover", tools=[reserve, transfer], model=model)
    runner = DurableRunner(
        agent, address=ADDRESS, lease_seconds=30,
        price=lambda model, tokens_in, tokens_out: (tokens_in + 3 * tokens_out) / 1e6,
    )  # fmt: skip
    return runner, model


def test_a_tool_outside_the_agents_scope_is_not_run_and_the_model_is_told(
    client: tether.Client, admin: tether.Client
) -> None:
    admin.set_policy(ADDRESS, AgentPolicy(tools=ToolPolicy(deny=["transfer"])))
    effects = Effects()
    runner, _ = mover(effects)
    done = run(runner.run(client, "Move 70"))
    assert done.completed
    assert effects.lines == ["reserve:70"]  # transfer never ran
    assert "'transfer' is not allowed for this agent" in done.final_output
    denied = [e for e in client.list_events(done.intent_id) if e.event_type == "tool.denied"]
    assert [e.details["tool"] for e in denied] == ["transfer"]


@pytest.mark.parametrize("stop", ["kill", "pause"])
def test_a_stopped_agent_is_held_at_its_next_model_turn_and_goes_on_after_resume(
    client: tether.Client, admin: tether.Client, stop: str
) -> None:
    effects = Effects()
    halt = admin.kill_agent if stop == "kill" else admin.pause_agent

    def stop_while_reserving() -> None:
        halted = halt(ADDRESS, reason="test")
        client.guard(ADDRESS).wait_for_change(halted.generation - 1, 30)  # this process knows

    runner, _ = mover(effects, on_reserve=stop_while_reserving)
    with pytest.raises(tether.AgentStopped):
        run(runner.run(client, "Move 70"))
    intent = client.list_intents(to_agent=ADDRESS).items[0]
    held = client.get_intent(intent.intent_id)
    assert held.status is Status.IN_PROGRESS and held.lease is None  # held, not failed
    assert "intent.held" in [e.event_type for e in client.list_events(intent.intent_id)]
    assert effects.lines == ["reserve:70"]  # stopped before the second turn
    with pytest.raises(tether.AgentStopped):  # still stopped: nothing runs
        run(runner.resume(client, intent.intent_id))
    admin.resume_agent(ADDRESS)
    done = run(runner.resume(client, intent.intent_id))
    assert done.completed
    assert effects.lines == ["reserve:70", "transfer:70"]  # each tool body once


def test_every_model_turn_is_reported_as_spend(client: tether.Client, admin: tether.Client) -> None:
    runner, model = mover(Effects())
    done = run(runner.run(client, "Move 70"))
    usage = client.intent_usage(done.intent_id)
    assert usage.turns == model.calls == 3
    per_turn = model.usage.input_tokens + 3 * model.usage.output_tokens
    assert usage.tokens_in == 3 * model.usage.input_tokens
    assert usage.cost_usd == pytest.approx(3 * per_turn / 1e6)
    assert admin.get_agent(ADDRESS).spend.day.turns == 3
