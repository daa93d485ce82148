"""From a suspended run's interruptions to tether's waits, and from the waits' answers back to
``RunState.approve`` / ``reject``.

Each interrupted call has one wait, keyed by its ``call_id`` and arguments: a human task for an
approval, a tool wait (with a callback token) for a long external call. Waits are opened one at
a time (an intent waits for one thing at once), in the order of the interruptions; when all
are answered, the answers are applied to the state and the run continues.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import tether
from agents import Agent, FunctionTool, RunState, ToolApprovalItem
from agents.tool_context import ToolContext

from ._codec import approval_key, external_key, parse_arguments
from ._tools import inner_invoker
from .errors import AdapterError
from .tools import ApprovalPolicy, ApprovalRequest, ExternalCall, Policy, policy_of, starting_call


@dataclass(frozen=True)
class Pending:
    """One interrupted call."""

    item: ToolApprovalItem
    call_id: str
    tool_name: str
    arguments: str
    agent: Agent[Any]
    tool: FunctionTool | None
    policy: Policy

    @property
    def key(self) -> str:
        if isinstance(self.policy, ExternalCall):
            return external_key(self.call_id, self.arguments)
        return approval_key(self.call_id, self.arguments)


@dataclass
class Decisions:
    """The answers tether holds for a state's interruptions."""

    approved: set[str] = field(default_factory=set)
    tool_waits: dict[str, tether.Wait] = field(default_factory=dict)


def _find_tool(agent: Agent[Any], name: str) -> FunctionTool | None:
    for tool in agent.tools:
        if isinstance(tool, FunctionTool) and tool.name == name:
            return tool
    return None


def pending(state: RunState[Any, Any]) -> list[Pending]:
    out: list[Pending] = []
    for item in state.get_interruptions():
        call_id = item.call_id or ""
        name = item.tool_name or item.name or "tool"
        agent = item.agent
        tool = _find_tool(agent, name)
        policy = (policy_of(tool) if tool is not None else None) or ApprovalPolicy()
        out.append(Pending(item, call_id, name, item.arguments or "", agent, tool, policy))
    return out


def _check_not_gone(call: Pending, waits: dict[str, tether.Wait]) -> None:
    """A call whose tool the agent no longer has (a release removed or renamed it) is taken
    for an approval, since its code no longer says otherwise. If the run was parked on it as a
    long external call, asking a person would strand the run on a task for a tool that is gone:
    the run stops with an error instead (the intent fails with it)."""
    if external_key(call.call_id, call.arguments) in waits:
        raise AdapterError(
            f"the run waits on the long external call {call.tool_name!r} (call {call.call_id}), "
            f"but agent {call.agent.name!r} no longer has a tool {call.tool_name!r}: "
            "the run cannot go on"
        )


class Decider:
    """Finds the answer to each interrupted call, or opens its wait and raises
    ``tether.Suspended``."""

    def __init__(
        self, client: tether.Client, intent_id: str, lease: tether.Lease, context: Any
    ) -> None:
        self.client = client
        self.intent_id = intent_id
        self.lease = lease
        self.context = context

    async def decide(self, state: RunState[Any, Any]) -> Decisions:
        calls = pending(state)
        if not calls:
            return Decisions()
        waits = {w.key: w for w in await asyncio.to_thread(self.client.list_waits, self.intent_id)}
        decisions = Decisions()
        for call in calls:
            wait = waits.get(call.key)
            if wait is None and call.tool is None:
                _check_not_gone(call, waits)
            if wait is None:
                # Opening a wait releases the lease, so the run stops here even when the wait
                # is already closed (an external call whose start failed); it continues when
                # the intent is claimed again.
                raise tether.Suspended(await self._open(call))
            if wait.is_open:
                raise tether.Suspended(wait)
            self._apply(state, call, wait, decisions)
        return decisions

    def _apply(
        self, state: RunState[Any, Any], call: Pending, wait: tether.Wait, decisions: Decisions
    ) -> None:
        if isinstance(call.policy, ExternalCall):
            # "Approving" lets the SDK invoke the tool; the wrapper then returns the posted
            # result from this wait instead of running anything.
            decisions.tool_waits[call.call_id] = wait
            state.approve(call.item)
        elif wait.outcome == "approved":
            decisions.approved.add(call.key)
            state.approve(call.item)
        else:
            state.reject(call.item, rejection_message=call.policy.message_for(wait, call.tool_name))

    async def _open(self, call: Pending) -> tether.Wait:
        policy = call.policy
        if isinstance(policy, ExternalCall):
            wait = await asyncio.to_thread(
                self.client.wait_for_tool, self.intent_id, call.tool_name, key=call.key,
                timeout=policy.timeout, heartbeat_timeout=policy.heartbeat_timeout,
                on_timeout=policy.on_timeout, lease=self.lease,
            )  # fmt: skip
            return await self._start(call, wait)
        request = ApprovalRequest(
            tool_name=call.tool_name,
            arguments=parse_arguments(call.arguments),
            call_id=call.call_id,
            agent_name=call.agent.name,
            intent_id=self.intent_id,
        )
        return await asyncio.to_thread(
            self.client.wait_for_human, self.intent_id, policy.human_task(request), key=call.key,
            timeout=policy.timeout, on_timeout=policy.on_timeout, lease=self.lease,
        )  # fmt: skip

    async def _start(self, call: Pending, wait: tether.Wait) -> tether.Wait:
        """Run the external tool's body with the wait's callback token. A body that fails ends
        the call as failed at once, so the run goes on instead of waiting for nothing."""
        assert wait.callback_token is not None and call.tool is not None
        ctx = ToolContext(
            context=self.context, tool_name=call.tool_name, tool_call_id=call.call_id,
            tool_arguments=call.arguments, agent=call.agent,
        )  # fmt: skip
        try:
            with starting_call(wait.callback_token):
                await inner_invoker(call.tool)(ctx, call.arguments)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            await asyncio.to_thread(self.client.complete_tool, wait.callback_token, error=error)
            return await asyncio.to_thread(self.client.get_wait, wait.wait_id)
        return wait
