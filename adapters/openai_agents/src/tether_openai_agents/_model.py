"""The model-turn boundary: each turn is journaled, and a turn already on record is replayed.

A run that resumes after a crash re-runs from its last stored state; the model is asked the
same questions again, and the journal answers them, so the resumed run sees the same tool
calls (with the same call ids) as the run that died, and their recorded results. Each turn is
written when the model answers, before any of its calls runs (see ``_journal``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from agents import Model, ModelProvider, ModelResponse, ModelSettings, ModelTracing, Tool
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import TResponseInputItem, TResponseStreamEvent
from agents.retry import ModelRetryAdvice, ModelRetryAdviceRequest
from openai.types.responses.response_prompt_param import ResponsePromptParam

from . import _policy
from ._binding import current
from ._codec import decode_response, encode_response, model_call_key


def model_name(model: Model) -> str:
    name = getattr(model, "model", None)
    return name if isinstance(name, str) else type(model).__name__


class JournalingModel(Model):
    """Wraps a model: outside a durable run it is the model itself; inside one, each answer is
    journaled under a digest of the question and replayed from the journal when asked again.

    Streaming (``Runner.run_streamed``) passes straight through and is not journaled.
    """

    def __init__(self, inner: Model) -> None:
        self.inner = inner

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
        binding = current()

        async def ask() -> ModelResponse:
            return await self.inner.get_response(
                system_instructions, input, model_settings, tools, output_schema, handoffs,
                tracing, previous_response_id=previous_response_id,
                conversation_id=conversation_id, prompt=prompt,
            )  # fmt: skip

        if binding is None:
            return await ask()
        await _policy.before_model_turn(binding)
        key = model_call_key(
            system_instructions, input, tools, output_schema, handoffs,
            previous_response_id, conversation_id,
        )  # fmt: skip
        recorded = binding.journal.get(key)
        if recorded is not None:
            return decode_response(recorded)
        response = await ask()
        usage = _policy.turn_usage(binding, model_name(self.inner), response)
        # On record before any call it makes runs: a run taken over after a crash replays this
        # answer, so a tool body killed midway runs again under the same call id (its step key,
        # the idempotency key of its external call), not as a new call the model made again.
        await binding.record_turn(key, encode_response(response), usage)
        return response

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
        return self.inner.stream_response(
            system_instructions, input, model_settings, tools, output_schema, handoffs, tracing,
            previous_response_id=previous_response_id, conversation_id=conversation_id,
            prompt=prompt,
        )  # fmt: skip

    def get_retry_advice(self, request: ModelRetryAdviceRequest) -> ModelRetryAdvice | None:
        return self.inner.get_retry_advice(request)

    async def close(self) -> None:
        await self.inner.close()

    async def _cleanup_on_run_end(self, owner: object) -> None:
        await self.inner._cleanup_on_run_end(owner)


def journaling(model: Model) -> Model:
    """``model`` wrapped once (wrapping a wrapped model returns it as it is)."""
    return model if isinstance(model, JournalingModel) else JournalingModel(model)


class JournalingProvider(ModelProvider):
    """Wraps a model provider so models named by a string are journaled too."""

    def __init__(self, inner: ModelProvider) -> None:
        self.inner = inner

    def get_model(self, model_name: str | None) -> Model:
        return journaling(self.inner.get_model(model_name))

    async def aclose(self) -> None:
        await self.inner.aclose()
