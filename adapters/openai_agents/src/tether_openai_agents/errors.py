"""The adapter's errors. tether's own errors (``tether.LeaseLost``, ...) pass through unchanged."""

from __future__ import annotations


class AdapterError(Exception):
    """Base of the errors this adapter raises itself."""


class UnapprovedToolCall(AdapterError):
    """A tool call that needs a person's approval was about to run without one on record.

    tether decides approvals from its human waits, never from the stored run state; this is
    raised when the run state says "approved" but tether has no approving answer for the call
    (for example, the stored state was edited). The run stops and the tool body never runs.
    """

    def __init__(self, tool_name: str, call_id: str, reason: str) -> None:
        super().__init__(f"tool call {call_id} of {tool_name!r} may not run: {reason}")
        self.tool_name = tool_name
        self.call_id = call_id


class NotInToolStart(AdapterError):
    """:func:`tether_openai_agents.callback_token` was called outside a ``wait_for_tool`` body."""


class StoredStateError(AdapterError):
    """The run state kept in tether cannot be read by this release (see the message)."""
