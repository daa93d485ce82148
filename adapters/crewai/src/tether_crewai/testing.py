"""Helpers to test crews and flows on tether without a network: a scripted model.

Example::

    llm = ScriptedLLM(replies={
        "Draft a post": [
            'Thought: search first\\nAction: search\\nAction Input: {"query": "tether"}',
            "Thought: I now know the final answer\\nFinal Answer: a post about tether",
        ],
    })
    writer = Agent(role="writer", goal="...", backstory="...", llm=llm, tools=[search])

A reply is chosen by the first key found in the conversation (the task's prompt), and by how
many tool results the conversation holds already (crewai's ReAct protocol appends each one as
``Observation:`` to the assistant's message), never by a counter: a fresh process resuming a
run gets the same reply the first process would have got.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from crewai.llms.base_llm import BaseLLM
from pydantic import Field, PrivateAttr

Reply = str | Callable[[str], str]
"""A reply, or a function of the conversation's text that makes one."""

FINAL = "Thought: I now know the final answer\nFinal Answer: "


def final_answer(text: str) -> str:
    """A ReAct reply that ends the task with ``text``."""
    return FINAL + text


def tool_call(tool: str, arguments: str) -> str:
    """A ReAct reply that calls ``tool`` with ``arguments`` (JSON text)."""
    return f"Thought: I should use {tool}\nAction: {tool}\nAction Input: {arguments}"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", part)) for part in content if part is not None)
    return str(content)


class ScriptedLLM(BaseLLM):
    """A crewai model that answers from a script: offline, deterministic, and with token
    counts (a quarter of the characters in and out, as crewai itself estimates them), so the
    adapter's spend reports have something to report."""

    model: str = "scripted"
    replies: dict[str, Sequence[Reply]] = Field(default_factory=dict)
    default: Reply = final_answer("done")
    _calls: list[str] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, **data: Any) -> None:
        data.setdefault("model", "scripted")
        super().__init__(**data)

    @property
    def calls(self) -> list[str]:
        """The conversations this model was called with (its text), in order."""
        return list(self._calls)

    def call(
        self,
        messages: str | list[Any],
        tools: list[dict[str, Any]] | None = None,
        callbacks: list[Any] | None = None,
        available_functions: dict[str, Any] | None = None,
        from_task: Any | None = None,
        from_agent: Any | None = None,
        response_model: Any | None = None,
    ) -> str:
        """The scripted reply to ``messages``."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        text = "\n".join(_text(m.get("content")) for m in messages)
        seen = sum(
            _text(m.get("content")).count("\nObservation:")
            for m in messages
            if m.get("role") != "system"
        )
        reply: Reply = self.default
        for key, script in self.replies.items():
            if key in text:
                reply = script[min(seen, len(script) - 1)]
                break
        answer = reply(text) if callable(reply) else reply
        with self._lock:
            self._calls.append(text)
        self._track_token_usage_internal(
            {"prompt_tokens": len(text) // 4, "completion_tokens": len(answer) // 4}
        )
        return answer

    def supports_function_calling(self) -> bool:
        return False

    def get_context_window_size(self) -> int:
        return 128_000
