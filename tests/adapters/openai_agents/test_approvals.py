"""A tool call that needs a person: the run waits in tether, the person's answer decides."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import tether
from agents import Agent, RunContextWrapper, function_tool
from tether import Status, WaitingReason, WaitKind
from tether_openai_agents import DurableRunner, requires_approval
from tether_openai_agents.testing import ScriptedModel, tool_call

from ._app import ADDRESS, PAY, App, Effects, build, final


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_large_payment_waits_for_a_person_and_runs_once_approved(
    client: tether.Client, alice: tether.Client, app: App
) -> None:
    runner = app.runners[PAY]
    outcome = run(runner.run(client, "Pay invoice 42", key="invoice-42"))

    assert outcome.waiting and outcome.wait is not None
    wait = outcome.wait
    assert wait.kind is WaitKind.HUMAN and wait.key.startswith("approval:call_")
    assert wait.human_task is not None and wait.human_task.title == "Approve pay?"
    assert '{"amount":32000,"payee":"ACME"}' in (wait.human_task.description or "")
    intent = client.get_intent(outcome.intent_id)
    assert intent.status is Status.WAITING
    assert intent.waiting_reason is WaitingReason.WAITING_FOR_HUMAN
    assert app.effects.read() == ["lookup:42"]  # the payment has not run

    alice.approve(outcome.intent_id, comment="within budget")
    done = run(runner.resume(client, outcome.intent_id))

    assert done.completed
    assert done.final_output == "final: invoice 42: 32000 EUR to ACME | paid 32000 EUR to ACME"
    assert client.get_intent(outcome.intent_id).result == done.final_output
    assert app.effects.read() == ["lookup:42", "pay:32000:ACME"]


def test_a_rejection_reaches_the_model_with_the_persons_comment(
    client: tether.Client, alice: tether.Client, app: App
) -> None:
    runner = app.runners[PAY]
    outcome = run(runner.run(client, "Pay invoice 42"))
    alice.reject(outcome.intent_id, comment="over budget this month")
    done = run(runner.resume(client, outcome.intent_id))

    assert done.completed
    assert "was rejected by human:alice@example.com" in done.final_output
    assert "with the comment: over budget this month" in done.final_output
    assert app.effects.read() == ["lookup:42"]  # never paid


def test_a_timeout_is_reported_as_a_timeout_not_a_rejection(
    client: tether.Client, admin: tether.Client, clock: tether.FrozenClock, app: App
) -> None:
    runner = app.runners[PAY]
    outcome = run(runner.run(client, "Pay invoice 42"))
    clock.advance(7 * 86400 + 1)
    assert admin.fire_due_timers() >= 1
    [wait] = client.list_waits(outcome.intent_id)
    assert wait.timed_out and wait.outcome == tether.TIMEOUT

    done = run(runner.resume(client, outcome.intent_id))
    assert done.completed
    assert "The approval request for pay timed out; the tool was not run." in done.final_output
    assert "rejected" not in done.final_output
    assert app.effects.read() == ["lookup:42"]


def test_a_small_payment_needs_nobody(client: tether.Client) -> None:
    app = build(Effects(), amount=500)
    done = run(app.runners[PAY].run(client, "Pay invoice 42"))
    assert done.completed and done.final_output.endswith("paid 500 EUR to ACME")
    assert client.list_waits(done.intent_id) == []
    assert app.effects.read() == ["lookup:42", "pay:500:ACME"]


def test_submitting_again_with_the_same_key_is_the_same_run(
    client: tether.Client, app: App
) -> None:
    runner = app.runners[PAY]
    first = run(runner.run(client, "Pay invoice 42", key="invoice-42"))
    again = run(runner.run(client, "Pay invoice 42", key="invoice-42"))
    assert again.intent_id == first.intent_id and again.waiting
    assert again.wait is not None and first.wait is not None
    assert again.wait.wait_id == first.wait.wait_id
    assert len(client.list_waits(first.intent_id)) == 1
    assert app.effects.read() == ["lookup:42"]


def test_several_calls_in_one_turn_are_put_to_the_person_one_at_a_time(
    client: tether.Client, alice: tether.Client
) -> None:
    effects = Effects()

    @requires_approval
    @function_tool
    def pay(amount: int, payee: str) -> str:
        """Pay an amount to a payee."""
        effects(f"pay:{amount}:{payee}")
        return f"paid {amount} to {payee}"

    model = ScriptedModel(
        [[tool_call("pay", {"amount": 10, "payee": "A"}),
          tool_call("pay", {"amount": 20, "payee": "B"})]],
        final,
    )  # fmt: skip
    runner = DurableRunner(Agent(name="payer", tools=[pay], model=model), address=ADDRESS)
    outcome = run(runner.run(client, "Pay A and B"))
    assert outcome.wait is not None
    assert '"payee":"A"' in (outcome.wait.human_task.description or "")  # type: ignore[union-attr]
    alice.approve(outcome.intent_id)

    second = run(runner.resume(client, outcome.intent_id))
    assert second.waiting and second.wait is not None
    assert '"payee":"B"' in (second.wait.human_task.description or "")  # type: ignore[union-attr]
    alice.reject(outcome.intent_id, comment="not B")

    done = run(runner.resume(client, outcome.intent_id))
    assert done.completed
    assert "paid 10 to A" in done.final_output and "with the comment: not B" in done.final_output
    assert effects.read() == ["pay:10:A"]
    assert [w.outcome for w in client.list_waits(outcome.intent_id)] == ["approved", "rejected"]


def test_a_worker_continues_the_run_once_the_person_answers(
    client: tether.Client, admin: tether.Client, alice: tether.Client, app: App
) -> None:
    runner = app.runners[PAY]
    intent = client.create_intent(PAY, ADDRESS, {"input": "Pay invoice 42"})
    # An admin's worker: tether.Worker registers its agent and fires timers, which an agent
    # key may not do over HTTP.
    worker = runner.worker(admin, poll_seconds=0.01)

    assert worker.run_once()  # runs until the payment waits
    assert client.get_intent(intent.intent_id).status is Status.WAITING
    assert not worker.run_once()  # nothing to do while it waits
    alice.approve(intent.intent_id)
    assert worker.run_once()

    done = client.get_intent(intent.intent_id)
    assert done.status is Status.COMPLETED and done.result.endswith("paid 32000 EUR to ACME")
    assert app.effects.read() == ["lookup:42", "pay:32000:ACME"]


def test_an_agent_cannot_answer_its_own_approval(client: tether.Client, app: App) -> None:
    outcome = run(app.runners[PAY].run(client, "Pay invoice 42"))
    try:
        client.approve(outcome.intent_id)
    except tether.Forbidden:
        pass
    else:
        raise AssertionError("the agent approved its own payment")
    assert client.get_intent(outcome.intent_id).status is Status.WAITING


def test_a_tool_marked_with_the_sdks_own_needs_approval_is_asked_through_tether(
    client: tether.Client, alice: tether.Client
) -> None:
    effects = Effects()

    @function_tool(needs_approval=True)
    def wipe(disk: str) -> str:
        """Wipe a disk."""
        effects(f"wipe:{disk}")
        return f"wiped {disk}"

    model = ScriptedModel([[tool_call("wipe", {"disk": "sda"})]], final)
    runner = DurableRunner(Agent(name="ops", tools=[wipe], model=model), address=ADDRESS)
    outcome = run(runner.run(client, "Wipe sda"))
    assert outcome.waiting and outcome.wait is not None and outcome.wait.human_task is not None
    assert outcome.wait.human_task.title == "Approve wipe?" and effects.read() == []
    alice.approve(outcome.intent_id)
    assert run(runner.resume(client, outcome.intent_id)).final_output == "final: wiped sda"
    assert effects.read() == ["wipe:sda"]


def test_the_run_context_is_rebuilt_from_the_intent_in_every_process(
    client: tether.Client, alice: tether.Client
) -> None:
    @requires_approval
    @function_tool
    def refund(ctx: RunContextWrapper[dict[str, str]], amount: int) -> str:
        """Refund an amount to the customer of the run."""
        return f"refunded {amount} to {ctx.context['customer']}"

    model = ScriptedModel([[tool_call("refund", {"amount": 5})]], final)
    agent = Agent[dict[str, str]](name="refunds", tools=[refund], model=model)

    def context(intent: tether.Intent) -> dict[str, str]:
        return {"customer": intent.metadata["customer"]}

    first = DurableRunner(agent, address=ADDRESS, context=context)
    outcome = run(first.run(client, "Refund 5", metadata={"customer": "cus_17"}))
    stored = client.get_state(outcome.intent_id, "openai-agents/run")
    assert stored is not None and "cus_17" not in str(stored.data)  # the context is not stored
    alice.approve(outcome.intent_id)
    second = DurableRunner(agent, address=ADDRESS, context=context)  # as in another process
    done = run(second.resume(client, outcome.intent_id))
    assert done.final_output == "final: refunded 5 to cus_17"


def test_a_crash_between_storing_the_state_and_opening_the_wait_loses_nothing(
    client: tether.Client, clock: tether.FrozenClock, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Crash(BaseException):
        pass

    opened = tether.Client.wait_for_human

    def dies_once(self: tether.Client, *args: Any, **kwargs: Any) -> tether.Wait:
        monkeypatch.setattr(tether.Client, "wait_for_human", opened)
        raise Crash

    monkeypatch.setattr(tether.Client, "wait_for_human", dies_once)
    runner = app.runners[PAY]
    with pytest.raises(Crash):
        run(runner.run(client, "Pay invoice 42", key="invoice-42"))
    [intent] = client.list_intents(to_agent=ADDRESS).items
    assert client.get_state(intent.intent_id, "openai-agents/run") is not None  # stored first
    assert client.list_waits(intent.intent_id) == []

    clock.advance(61)  # the dead process's lease lapses; the run is taken over
    outcome = run(runner.resume(client, intent.intent_id))
    assert outcome.waiting and len(client.list_waits(intent.intent_id)) == 1
    assert run(runner.resume(client, intent.intent_id)).wait == outcome.wait  # not opened twice
    assert app.effects.read() == ["lookup:42"]


def test_the_story_on_postgresql() -> None:
    from ...pg import fresh_schema

    app = build(Effects())
    with fresh_schema() as url, tether.connect(url) as admin:
        agent = admin.as_actor(tether.Principal.agent(ADDRESS))
        person = admin.as_actor(tether.Principal.human("alice@example.com"))
        outcome = run(app.runners[PAY].run(agent, "Pay invoice 42"))
        assert outcome.waiting
        person.approve(outcome.intent_id)
        assert run(app.runners[PAY].resume(agent, outcome.intent_id)).completed
    assert app.effects.read() == ["lookup:42", "pay:32000:ACME"]
