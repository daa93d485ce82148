"""Version N of a deployment's agents, for the upgrade test: runs parked by it are resumed by
version N+1 (``_upgrade_v2.py``).

Each intent type stands for one agent of the deployment, which version N+1 changes in its own
way (see ``_upgrade_v2.py``). In version N, four of them are the same payments agent: it looks
an invoice up, then pays it, which waits for a person. The fifth is a KYC agent whose check is
a long external call.

From a real process (process A: submit runs, run each until it waits, exit)::

    python -m tests.adapters.openai_agents._upgrade_v1 test.upgrade.same.v1=3 ...

The store is ``TETHER_DB``, or ``TETHER_URL`` and ``TETHER_API_KEY``. Each line printed is
``<intent id> <intent type> <status>``. Tool bodies append ``v1:<what>:<intent id>`` lines to the
file named by ``TETHER_TEST_EFFECTS``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import tether
from agents import Agent, RunContextWrapper, function_tool, set_tracing_disabled
from tether_openai_agents import DurableRunner, callback_token, requires_approval, wait_for_tool
from tether_openai_agents.testing import ScriptedModel, tool_call

from ._app import Effects

set_tracing_disabled(True)

ADDRESS = "agent://test/upgrade"
SAME = "test.upgrade.same.v1"
"""Version N+1 keeps the agent's and tools' names, changes its instructions and the payment
tool's body, and adds a tool."""
TOOL_REMOVED = "test.upgrade.tool_removed.v1"
"""Version N+1 has no payment tool any more."""
TOOL_RENAMED = "test.upgrade.tool_renamed.v1"
"""Version N+1 calls the payment tool ``pay_invoice``."""
AGENT_RENAMED = "test.upgrade.agent_renamed.v1"
"""Version N+1 calls the agent ``payments-v2``."""
EXTERNAL_REMOVED = "test.upgrade.external_removed.v1"
"""Parked on a long external call whose tool version N+1 no longer has."""
KINDS = (SAME, TOOL_REMOVED, TOOL_RENAMED, AGENT_RENAMED, EXTERNAL_REMOVED)

INVOICE = "invoice 42: 32000 EUR to ACME"


def intent_id_of(intent: tether.Intent) -> str:
    """The run context: the intent's id, so tool bodies say which run they belong to."""
    return intent.intent_id


def effects() -> Effects:
    return Effects(Path(os.environ["TETHER_TEST_EFFECTS"]))


def runners(record: Effects) -> dict[str, DurableRunner]:
    @function_tool
    def lookup_invoice(ctx: RunContextWrapper[str], invoice: str) -> str:
        """Look an invoice up."""
        record(f"v1:lookup:{ctx.context}")
        return INVOICE

    @requires_approval(timeout=7 * 86400)
    @function_tool
    def pay(ctx: RunContextWrapper[str], amount: int, payee: str) -> str:
        """Pay an amount to a payee."""
        record(f"v1:pay:{ctx.context}")
        return f"paid {amount} EUR to {payee}"

    @wait_for_tool(timeout=3 * 86400)
    def kyc_check(ctx: RunContextWrapper[str], customer: str) -> None:
        """Check a customer's identity with the KYC provider (it answers within days)."""
        record(f"v1:kyc-start:{ctx.context}:{callback_token()}")

    payments: Agent[Any] = Agent(
        name="payments",
        instructions="Pay the invoices you are given.",
        tools=[lookup_invoice, pay],
        model=ScriptedModel(
            [[tool_call("lookup_invoice", {"invoice": "42"})],
             [tool_call("pay", {"amount": 32000, "payee": "ACME"})]],
            lambda outputs: "v1: " + " | ".join(outputs),
        ),
    )  # fmt: skip
    kyc: Agent[Any] = Agent(
        name="kyc",
        instructions="Check the customer.",
        tools=[kyc_check],
        model=ScriptedModel([[tool_call("kyc_check", {"customer": "c-7"})]]),
    )
    agents = {kind: payments for kind in KINDS} | {EXTERNAL_REMOVED: kyc}
    return {
        kind: DurableRunner(agent, address=ADDRESS, intent_type=kind, context=intent_id_of)
        for kind, agent in agents.items()
    }


def worker() -> tether.Worker:
    """Version N's worker (``tether worker ..._upgrade_v1:worker``)."""
    w = tether.Worker(agent=ADDRESS, lease_seconds=30, poll_seconds=0.1)
    for kind, runner in runners(effects()).items():
        w.handler(kind)(runner.handle)
    return w


async def _park(client: tether.Client, counts: dict[str, int]) -> None:
    all_runners = runners(effects())
    for kind, n in counts.items():
        for i in range(n):
            outcome = await all_runners[kind].run(client, f"Pay invoice {i}", key=f"{kind}-{i}")
            print(outcome.intent_id, kind, outcome.status.value, flush=True)


if __name__ == "__main__":
    counts = {kind: int(n) for kind, n in (arg.split("=") for arg in sys.argv[1:])}
    with tether.connect() as client:
        asyncio.run(_park(client, counts))
