"""Conversation memory kept in tether, with the intent it belongs to."""

from __future__ import annotations

import asyncio
from typing import Any

import tether
from agents import Agent, Runner
from agents.memory import Session
from tether_openai_agents import TetherSession
from tether_openai_agents.testing import ScriptedModel

from ._app import ADDRESS, PAY, Effects, build


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _intent(client: tether.Client) -> str:
    return client.create_intent("chat.conversation.v1", ADDRESS).intent_id


def test_a_tether_session_keeps_the_items_of_a_conversation(client: tether.Client) -> None:
    session = TetherSession(client, _intent(client))
    assert isinstance(session, Session)

    async def use() -> None:
        assert await session.get_items() == []
        await session.add_items([{"role": "user", "content": "hi"}])
        await session.add_items([{"role": "assistant", "content": "hello"},
                                 {"role": "user", "content": "bye"}])  # fmt: skip
        assert [i["content"] for i in await session.get_items()] == ["hi", "hello", "bye"]
        assert [i["content"] for i in await session.get_items(limit=2)] == ["hello", "bye"]
        assert await session.get_items(limit=0) == []
        assert (await session.pop_item()) == {"role": "user", "content": "bye"}
        assert len(await session.get_items()) == 2
        await session.clear_session()
        assert await session.get_items() == [] and await session.pop_item() is None

    run(use())


def test_the_conversation_is_seen_from_any_process_and_session_id(
    client: tether.Client, admin: tether.Client
) -> None:
    intent_id = _intent(client)
    run(TetherSession(client, intent_id).add_items([{"role": "user", "content": "hi"}]))
    other = TetherSession(admin, intent_id)  # another client, as another process would have
    assert run(other.get_items()) == [{"role": "user", "content": "hi"}]
    assert run(TetherSession(admin, intent_id, session_id="notes").get_items()) == []
    assert client.get_state(intent_id, "openai-agents/session/conversation") is not None


def test_an_agent_remembers_the_previous_turns(client: tether.Client) -> None:
    seen: list[int] = []

    class Counting(ScriptedModel):
        def answer(self, input: Any) -> Any:
            seen.append(len(input))
            return super().answer(input)

    agent = Agent(name="chat", model=Counting(final="noted"))
    session = TetherSession(client, _intent(client))
    run(Runner.run(agent, "my name is Ada", session=session))
    run(Runner.run(agent, "what is my name?", session=session))
    assert seen == [1, 3]  # the second turn saw the first question and answer
    assert len(run(session.get_items())) == 4


def test_a_durable_run_remembers_each_item_once_across_a_suspension(
    client: tether.Client, admin: tether.Client, alice: tether.Client
) -> None:
    app = build(Effects(), session=True)
    runner = app.runners[PAY]
    outcome = run(runner.run(client, "Pay invoice 42"))
    assert outcome.waiting
    alice.approve(outcome.intent_id)
    assert run(runner.resume(client, outcome.intent_id)).completed

    items = run(TetherSession(admin, outcome.intent_id).get_items())
    kinds = [item.get("type", item.get("role")) for item in items]
    assert kinds == ["user", "function_call", "function_call_output", "function_call",
                     "function_call_output", "message"]  # fmt: skip
    call_ids = [i["call_id"] for i in items if i.get("type") == "function_call"]
    assert len(set(call_ids)) == 2
