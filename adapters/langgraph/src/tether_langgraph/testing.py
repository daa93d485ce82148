"""Helpers to test durable graphs offline: a scripted chat model.

A resumed run continues in a new process with a new model object, so the script is indexed
by the conversation, not by a counter: turn *n* (the number of AI messages already in the
messages) gets the *n*-th scripted reply, whichever process asks.

Example::

    from langchain_core.messages import AIMessage
    from tether_langgraph.testing import ScriptedChatModel

    model = ScriptedChatModel(script=[
        AIMessage("", tool_calls=[{"name": "refund", "args": {"amount": 500}, "id": "call_1"}]),
        AIMessage("Refunded 500 EUR."),
    ])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool


class ScriptedChatModel(BaseChatModel):
    """A chat model that replies from a script, without a network.

    ``script`` is a list of replies, or a function of the messages returning one. Each reply
    reports ``tokens_in``/``tokens_out`` as its usage, so spend accounting can be tested.
    """

    script: list[AIMessage] | Callable[[Sequence[BaseMessage]], AIMessage]
    tokens_in: int = 10
    tokens_out: int = 5
    model_name: str = "scripted"

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if callable(self.script):
            reply = self.script(messages)
        else:
            turn = sum(isinstance(m, AIMessage) for m in messages)
            reply = self.script[min(turn, len(self.script) - 1)]
        usage = {
            "input_tokens": self.tokens_in,
            "output_tokens": self.tokens_out,
            "total_tokens": self.tokens_in + self.tokens_out,
        }
        message = reply.model_copy(
            update={
                "usage_metadata": usage,
                "response_metadata": {"model_name": self.model_name},
            }
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """The script already says which tools to call."""
        return self
