"""Version N+1 of the deployment of ``_upgrade_v1.py``: the same address and intent types, each
agent changed in its own way. Tool bodies append ``v2:<what>:<intent id>`` lines to the effects
file, so the test tells which version ran what.

- ``SAME``: the agent and the tools it was parked on keep their names; its instructions change
  (so every model question after the upgrade is a new one), the payment tool's body changes,
  and a tool is added (``send_receipt``), which the new model calls after the payment;
- ``TOOL_REMOVED``: the payment tool is gone;
- ``TOOL_RENAMED``: the payment tool is now ``pay_invoice``;
- ``AGENT_RENAMED``: the agent is now ``payments-v2``;
- ``EXTERNAL_REMOVED``: the KYC agent no longer has the long external call its runs wait on.

Run it as a worker: ``python -m tether worker tests.adapters.openai_agents._upgrade_v2:worker``.
"""

from __future__ import annotations

from typing import Any

import tether
from agents import Agent, RunContextWrapper, function_tool, set_tracing_disabled
from tether_openai_agents import DurableRunner, requires_approval
from tether_openai_agents.testing import ScriptedModel, tool_call

from ._app import Effects
from ._upgrade_v1 import (
    ADDRESS,
    AGENT_RENAMED,
    EXTERNAL_REMOVED,
    INVOICE,
    SAME,
    TOOL_REMOVED,
    TOOL_RENAMED,
    effects,
    intent_id_of,
)

set_tracing_disabled(True)


def v2_final(outputs: list[str]) -> str:
    return "v2: " + " | ".join(outputs)


def runners(record: Effects) -> dict[str, DurableRunner]:
    @function_tool
    def lookup_invoice(ctx: RunContextWrapper[str], invoice: str) -> str:
        """Look an invoice up in the new ledger."""
        record(f"v2:lookup:{ctx.context}")
        return INVOICE

    @requires_approval(timeout=7 * 86400)
    @function_tool
    def pay(ctx: RunContextWrapper[str], amount: int, payee: str) -> str:
        """Pay an amount to a payee, through the new payment provider."""
        record(f"v2:pay:{ctx.context}")
        return f"paid {amount} EUR to {payee} (v2)"

    @requires_approval(timeout=7 * 86400)
    @function_tool
    def pay_invoice(ctx: RunContextWrapper[str], amount: int, payee: str) -> str:
        """Pay an invoice's amount to its payee."""
        record(f"v2:pay_invoice:{ctx.context}")
        return f"paid {amount} EUR to {payee} (v2)"

    @function_tool
    def send_receipt(ctx: RunContextWrapper[str]) -> str:
        """Send the payee a receipt (new in this version)."""
        record(f"v2:receipt:{ctx.context}")
        return "receipt sent"

    @function_tool
    def kyc_lookup(ctx: RunContextWrapper[str], customer: str) -> str:
        """Look a customer's KYC status up (replaces the long check)."""
        record(f"v2:kyc-lookup:{ctx.context}")
        return "clear"

    lookup = tool_call("lookup_invoice", {"invoice": "42"})
    paying = {"amount": 32000, "payee": "ACME"}

    def payments(name: str, tools: list[Any], turns: list[list[Any]]) -> Agent[Any]:
        return Agent(
            name=name,
            instructions="Pay the invoices you are given, then send the payee a receipt.",
            tools=tools,
            model=ScriptedModel(turns, v2_final),
        )

    agents: dict[str, Agent[Any]] = {
        SAME: payments(
            "payments",
            [lookup_invoice, pay, send_receipt],
            [[lookup], [tool_call("pay", paying)], [tool_call("send_receipt", {})]],
        ),
        TOOL_REMOVED: payments("payments", [lookup_invoice], [[lookup]]),
        TOOL_RENAMED: payments(
            "payments",
            [lookup_invoice, pay_invoice],
            [[lookup], [tool_call("pay_invoice", paying)]],
        ),
        AGENT_RENAMED: payments(
            "payments-v2", [lookup_invoice, pay], [[lookup], [tool_call("pay", paying)]]
        ),
        EXTERNAL_REMOVED: Agent(
            name="kyc",
            instructions="Look the customer's KYC status up.",
            tools=[kyc_lookup],
            model=ScriptedModel([[tool_call("kyc_lookup", {"customer": "c-7"})]], v2_final),
        ),
    }
    return {
        kind: DurableRunner(agent, address=ADDRESS, intent_type=kind, context=intent_id_of)
        for kind, agent in agents.items()
    }


def worker() -> tether.Worker:
    """Version N+1's worker (``tether worker ..._upgrade_v2:worker``)."""
    w = tether.Worker(agent=ADDRESS, lease_seconds=30, poll_seconds=0.1)
    for kind, runner in runners(effects()).items():
        w.handler(kind)(runner.handle)
    return w
