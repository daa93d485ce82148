"""Every model turn and tool call is journaled and on the audit trail; a run resumed after a
crash replays the journal instead of asking the model again or repeating a finished tool."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import tether
from agents import Agent, RunContextWrapper, RunHooks, Runner, Tool, ToolOutputText, function_tool
from pydantic import BaseModel
from tether import Status
from tether_openai_agents import DEFAULT_INTENT_TYPE, DurableRunner, TetherSession
from tether_openai_agents.testing import ScriptedModel, journal, tool_call

from ._app import ADDRESS, PAY, Effects, build, final


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class Crash(BaseException):
    """The process dies here (a BaseException: nothing in the SDK catches it)."""


def _crashing_runner(effects: Effects, *, session: bool = False) -> tuple[DurableRunner, Any]:
    """Two tools, one after the other; the second dies in its middle on its first call."""
    crashed: list[bool] = []

    @function_tool
    def reserve(amount: int) -> str:
        """Reserve the money."""
        effects(f"reserve:{amount}")
        return f"reserved {amount}"

    @function_tool
    def transfer(amount: int) -> str:
        """Transfer the money."""
        effects("transfer-start")
        if not crashed:
            crashed.append(True)
            raise Crash
        effects(f"transfer:{amount}")
        return f"transferred {amount}"

    model = ScriptedModel(
        [[tool_call("reserve", {"amount": 70})], [tool_call("transfer", {"amount": 70})]], final
    )
    agent = Agent(name="mover", tools=[reserve, transfer], model=model)
    runner = DurableRunner(
        agent, address=ADDRESS, lease_seconds=30,
        session=TetherSession.for_intent if session else None,
    )  # fmt: skip
    return runner, model


def test_each_model_turn_and_tool_call_is_journaled_and_on_the_audit_trail(
    client: tether.Client, admin: tether.Client
) -> None:
    app = build(Effects(), amount=500)
    done = run(app.runners[PAY].run(client, "Pay invoice 42"))
    assert done.completed

    # the audit trail gives the order (the frozen test clock gives every step one time):
    # three turns, each on record before the calls it makes run; a tool's result rides with
    # the next turn's record (one commit per call, not two)
    keys = [e.details["key"] for e in client.list_events(done.intent_id)
            if e.event_type == "intent.step_recorded"]  # fmt: skip
    assert [k.split(":")[0] for k in keys] == ["model", "model", "model"]
    steps = {step.key: step.result for step in client.list_steps(done.intent_id)}
    assert set(steps) == set(keys)  # each journal entry is on the audit trail, once
    first, second, last = (steps[k] for k in keys)
    lookup_key = f"tool:lookup_invoice:{first['output'][0]['call_id']}"
    assert second["tether_turn"] == 2 and set(second["results"]) == {lookup_key}
    pay_key = f"tool:pay:{second['response']['output'][0]['call_id']}"
    assert set(last["results"]) == {pay_key}
    entries = journal(client, done.intent_id)
    assert entries[lookup_key]["json"] == "invoice 42: 500 EUR to ACME"
    assert entries[pay_key]["json"] == "paid 500 EUR to ACME"
    text = last["response"]["output"][0]["content"][0]["text"]
    assert text.endswith("paid 500 EUR to ACME")
    assert admin.verify_audit(done.intent_id).ok  # the chain holds


def test_a_run_taken_over_after_a_crash_replays_its_journal(
    client: tether.Client, clock: tether.FrozenClock
) -> None:
    effects = Effects()
    runner, model = _crashing_runner(effects)
    with pytest.raises(Crash):
        run(runner.run(client, "Move 70"))
    intent = client.list_intents(to_agent=ADDRESS).items[0]
    assert intent.status is Status.IN_PROGRESS  # the dead run still holds its lease
    assert model.calls == 2

    clock.advance(31)  # the lease lapses; another process takes the run over
    done = run(runner.resume(client, intent.intent_id))

    assert done.completed
    assert done.final_output == "final: reserved 70 | transferred 70"
    # reserve finished before the crash: not run again; transfer died midway: run again
    assert effects.read() == ["reserve:70", "transfer-start", "transfer-start", "transfer:70"]
    # Both turns came from the journal: the scripted model gives new call ids on every answer,
    # so asking it again would have made other calls; reserve would have run twice, and
    # transfer would have run again as a new call (under another step key, which an external
    # system could not tell from a second transfer). Only the last turn is asked.
    assert model.calls == 3
    entries = journal(client, intent.intent_id)
    assert sorted(k.split(":")[0] for k in entries) == ["model", "model", "model", "tool", "tool"]


def test_a_journal_written_by_the_release_before_is_still_replayed(client: tether.Client) -> None:
    """The release before wrote a turn that called tools inside its first call's result."""
    effects = Effects()
    runner, model = _crashing_runner(effects)
    with pytest.raises(Crash):  # a run to learn the first turn and its call
        run(runner.run(client, "Move 70"))
    first = client.list_intents(to_agent=ADDRESS).items[0]
    steps = journal(client, first.intent_id)
    [turn_key] = [k for k, v in steps.items() if v.get("output", [{}])[0].get("name") == "reserve"]
    [reserve_key] = [k for k in steps if k.startswith("tool:reserve:")]

    # a run parked by the release before: its reserve call finished, with its turn inside
    intent = client.create_intent(DEFAULT_INTENT_TYPE, ADDRESS, {"input": "Move 70"})
    lease = client.start(intent.intent_id)
    old = {**steps[reserve_key], "turn": {"key": turn_key, "response": steps[turn_key]}}
    client.record_step(intent.intent_id, reserve_key, old, lease=lease)
    client.release(lease)
    effects.lines.clear()
    calls = model.calls
    done = run(runner.resume(client, intent.intent_id))

    assert done.completed and done.final_output == "final: reserved 70 | transferred 70"
    assert effects.read() == ["transfer-start", "transfer:70"]  # reserve was not made again
    assert model.calls == calls + 2  # the first turn came from the old entry


def test_a_crashed_run_does_not_remember_its_replayed_turns_twice(
    client: tether.Client, admin: tether.Client, clock: tether.FrozenClock
) -> None:
    runner, _ = _crashing_runner(Effects(), session=True)
    with pytest.raises(Crash):
        run(runner.run(client, "Move 70"))
    intent = client.list_intents(to_agent=ADDRESS).items[0]
    clock.advance(31)
    assert run(runner.resume(client, intent.intent_id)).completed

    items = run(TetherSession(admin, intent.intent_id).get_items())
    kinds = [item.get("type", item.get("role")) for item in items]
    assert kinds == ["user", "function_call", "function_call_output", "function_call",
                     "function_call_output", "message"]  # fmt: skip


def test_the_users_own_hooks_still_see_every_call(client: tether.Client) -> None:
    seen: list[str] = []

    class Audit(RunHooks[Any]):
        async def on_tool_start(
            self, context: RunContextWrapper[Any], agent: Any, tool: Tool
        ) -> None:
            seen.append(f"start:{tool.name}")

        async def on_tool_end(
            self, context: RunContextWrapper[Any], agent: Any, tool: Tool, result: Any
        ) -> None:
            seen.append(f"end:{tool.name}:{result}")

    app = build(Effects(), amount=500)
    runner = DurableRunner(app.agents[PAY], address=ADDRESS, intent_type=PAY, hooks=Audit())
    assert run(runner.run(client, "Pay invoice 42")).completed
    assert seen == ["start:lookup_invoice", "end:lookup_invoice:invoice 42: 500 EUR to ACME",
                    "start:pay", "end:pay:paid 500 EUR to ACME"]  # fmt: skip


def test_outside_a_durable_run_the_agent_is_the_users_own() -> None:
    app = build(Effects(), amount=500)
    result = run(Runner.run(app.runners[PAY].agent, "Pay invoice 42"))  # no tether involved
    assert result.final_output.endswith("paid 500 EUR to ACME")
    assert app.effects.read() == ["lookup:42", "pay:500:ACME"]


class _Invoice(BaseModel):
    invoice: str
    amount: int


@pytest.mark.parametrize(
    "output",
    [
        "paid",
        {"invoice": "42", "amount": 500},
        ["42", 500],
        ("42", 500),
        _Invoice(invoice="42", amount=500),
        3.5,
        None,
        {1: "a"},
        ToolOutputText(text="paid"),
        [ToolOutputText(text="a"), {"type": "text", "text": "b"}],
    ],
)
def test_a_replayed_tool_output_reads_to_the_model_as_the_first_did(output: Any) -> None:
    """The next turn's journal key is a digest of what the model was given: a replayed tool
    output that read differently (a tuple back as a list, a model back as a dict) would miss
    the recorded turn, ask the model again and run a paid call again under a new call id."""
    from agents.items import ItemHelpers
    from tether_openai_agents._codec import decode_output, encode_output

    stored = json.loads(json.dumps(encode_output(output)))  # as the journal keeps it
    replayed = decode_output(stored)
    assert ItemHelpers._convert_tool_output(replayed) == ItemHelpers._convert_tool_output(output)
