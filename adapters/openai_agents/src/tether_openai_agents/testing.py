"""Helpers for testing durable agents offline: a scripted model that needs no key or network.

:class:`ScriptedModel` answers from the conversation it is shown, never from a counter, so a
run resumed in another process (with a fresh model object) gets the answers the first process
would have got. A script is a list of turns, each a list of tool calls; once every turn's calls
are in the conversation, the model answers with ``final`` applied to the tool outputs.

Example::

    model = ScriptedModel(
        turns=[[tool_call("pay", {"amount": 32000}, call_id="call_pay")]],
        final=lambda outputs: f"done: {outputs[-1]}",
    )
    agent = Agent(name="payer", tools=[pay], model=model)

Remember to turn the SDK's tracing off in tests (``agents.set_tracing_disabled(True)`` or
``OPENAI_AGENTS_DISABLE_TRACING=1``): with any ``OPENAI_API_KEY`` set it would try to export.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import tether
from agents import Model, ModelResponse, ModelSettings, ModelTracing, Tool, Usage
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import TResponseInputItem, TResponseOutputItem, TResponseStreamEvent
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from openai.types.responses.response_prompt_param import ResponsePromptParam

from ._journal import Journal


@dataclass(frozen=True)
class ToolCall:
    """One tool call a scripted turn makes."""

    name: str
    arguments: dict[str, Any]
    call_id: str | None = None


def tool_call(name: str, arguments: dict[str, Any], call_id: str | None = None) -> ToolCall:
    """A scripted tool call; without ``call_id`` each answer gets a new random one, as a real
    model would (a resumed run then depends on the journal to see the same id again)."""
    return ToolCall(name, arguments, call_id)


def _text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(str(part.get("text", "")) for part in output if isinstance(part, dict))
    return json.dumps(output)


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


class ScriptedModel(Model):
    """A deterministic offline model (see the module docstring)."""

    def __init__(
        self,
        turns: Sequence[Sequence[ToolCall]] = (),
        final: Callable[[list[str]], str] | str = "done",
        *,
        usage: Usage | None = None,
    ) -> None:
        self.turns = [list(turn) for turn in turns]
        self.final = final
        self.usage = usage or Usage(requests=1, input_tokens=50, output_tokens=10,
                                    total_tokens=60)  # fmt: skip
        self.calls = 0
        """How many times this object was asked (a replayed turn does not ask it)."""

    def answer(self, input: str | list[TResponseInputItem]) -> list[TResponseOutputItem]:
        """The answer to a conversation: the next scripted turn, or the final message."""
        items = [] if isinstance(input, str) else list(input)
        # Only calls of this script count: another agent's calls (a handoff) are not its turns.
        names = {call.name for turn in self.turns for call in turn}
        made = sum(1 for item in items
                   if _field(item, "type") == "function_call" and _field(item, "name") in names)  # fmt: skip
        outputs = [_text(_field(i, "output")) for i in items
                   if _field(i, "type") == "function_call_output"]  # fmt: skip
        done = 0
        for turn in self.turns:
            if done == made:
                return [self._call(call) for call in turn]
            done += len(turn)
        final = self.final(outputs) if callable(self.final) else self.final
        return [
            ResponseOutputMessage(
                id=f"msg_{uuid.uuid4().hex[:12]}", type="message", role="assistant",
                status="completed",
                content=[ResponseOutputText(type="output_text", text=final, annotations=[])],
            )
        ]  # fmt: skip

    @staticmethod
    def _call(call: ToolCall) -> ResponseFunctionToolCall:
        call_id = call.call_id or f"call_{uuid.uuid4().hex[:16]}"
        return ResponseFunctionToolCall(
            id=f"fc_{call_id}", call_id=call_id, type="function_call", status="completed",
            name=call.name, arguments=json.dumps(call.arguments),
        )  # fmt: skip

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        self.calls += 1
        return ModelResponse(
            output=self.answer(input), usage=copy.deepcopy(self.usage), response_id=None
        )

    def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("ScriptedModel does not stream; use Runner.run")


def journal(client: tether.Client, intent_id: str) -> dict[str, Any]:
    """What a run has on record, by step key (``tool:<name>:<call id>``, ``model:<digest>``),
    however it was written (a tool's result rides inside the next turn's record)."""
    return Journal(client.list_steps(intent_id)).entries
