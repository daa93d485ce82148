"""The payments agents the tests run, in-process and from real processes.

From a real process::

    python -m tether worker tests.adapters.openai_agents._app:worker --db sqlite:///t.db
    python -m tests.adapters.openai_agents._app start sqlite:///t.db KEY   # submit, run, exit

(``start -`` takes the store from ``TETHER_DB``, or ``TETHER_URL`` and ``TETHER_API_KEY``.)

Every side effect appends a line to the file named by ``TETHER_TEST_EFFECTS`` (in-process:
to ``Effects.lines``), so a test counts how often each tool body really ran. The scripted models
give every tool call a fresh random call id, as a real model would: a run resumed in another
process sees the same ids only through tether's journal.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tether
from agents import Agent, function_tool, set_tracing_disabled
from tether_openai_agents import (
    DurableRunner,
    TetherSession,
    callback_token,
    requires_approval,
    wait_for_tool,
)
from tether_openai_agents.testing import ScriptedModel, tool_call

set_tracing_disabled(True)

ADDRESS = "agent://test/payments"
PAY = "test.payments.v1"  # look the invoice up, pay it (a person approves above 1000)
SLOW = "test.slow.v1"  # look the invoice up, notify finance (a long call the test may kill)
KYC = "test.kyc.v1"  # a long external check whose result is posted days later


@dataclass
class Effects:
    """Where tool bodies record that they ran."""

    path: Path | None = None
    lines: list[str] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        if self.path is None:
            self.lines.append(line)
            return
        with self.path.open("a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> list[str]:
        return self.path.read_text().split() if self.path is not None else list(self.lines)


def final(outputs: list[str]) -> str:
    return "final: " + " | ".join(outputs)


@dataclass
class App:
    effects: Effects
    models: dict[str, ScriptedModel]
    agents: dict[str, Agent[Any]]
    """The agents as the user wrote them."""
    runners: dict[str, DurableRunner]


def build(
    effects: Effects,
    *,
    amount: int = 32000,
    hold: Path | None = None,
    session: bool = False,
    lease_seconds: float = 60.0,
) -> App:
    """The agents, with tools that record into ``effects``. ``hold``: while that file exists,
    the notify tool blocks (a long call a test kills the process in)."""

    @function_tool
    def lookup_invoice(invoice: str) -> str:
        """Look an invoice up."""
        effects(f"lookup:{invoice}")
        return f"invoice {invoice}: {amount} EUR to ACME"

    @requires_approval(when=lambda args: args["amount"] > 1000, timeout=7 * 86400)
    @function_tool
    def pay(amount: int, payee: str) -> str:
        """Pay an amount to a payee."""
        effects(f"pay:{amount}:{payee}")
        return f"paid {amount} EUR to {payee}"

    @function_tool
    def notify(message: str) -> str:
        """Tell the finance team."""
        effects("notify-start")
        while hold is not None and hold.exists():
            time.sleep(0.05)
        effects(f"notify:{message}")
        return "finance notified"

    @wait_for_tool(timeout=3 * 86400)
    def kyc_check(customer: str) -> None:
        """Check a customer's identity with the KYC provider (it answers within days)."""
        effects(f"kyc-start:{customer}:{callback_token()}")

    models = {
        PAY: ScriptedModel(
            [[tool_call("lookup_invoice", {"invoice": "42"})],
             [tool_call("pay", {"amount": amount, "payee": "ACME"})]],
            final,
        ),
        SLOW: ScriptedModel(
            [[tool_call("lookup_invoice", {"invoice": "42"})],
             [tool_call("notify", {"message": "invoice 42 paid"})]],
            final,
        ),
        KYC: ScriptedModel([[tool_call("kyc_check", {"customer": "c-7"})]], final),
    }  # fmt: skip
    tools = {PAY: [lookup_invoice, pay], SLOW: [lookup_invoice, notify], KYC: [kyc_check]}
    agents: dict[str, Agent[Any]] = {
        kind: Agent(
            name=f"agent-{kind}",
            instructions="Handle the request.",
            tools=tools[kind],
            model=models[kind],
        )
        for kind in (PAY, SLOW, KYC)
    }
    runners = {
        kind: DurableRunner(
            agent,
            address=ADDRESS,
            intent_type=kind,
            lease_seconds=lease_seconds,
            session=TetherSession.for_intent if session else None,
        )
        for kind, agent in agents.items()
    }
    return App(effects, models, agents, runners)


def _env_app() -> App:
    hold = os.environ.get("TETHER_TEST_HOLD")
    return build(
        Effects(Path(os.environ["TETHER_TEST_EFFECTS"])),
        hold=Path(hold) if hold else None,
        lease_seconds=float(os.environ.get("TETHER_TEST_LEASE", "30")),
    )


def worker() -> tether.Worker:
    """The worker ``tether worker`` runs: every kind of run of this agent."""
    app = _env_app()
    lease = float(os.environ.get("TETHER_TEST_LEASE", "30"))
    w = tether.Worker(agent=ADDRESS, lease_seconds=lease, poll_seconds=0.1)
    for kind, runner in app.runners.items():
        w.handler(kind)(runner.handle)
    return w


def _start(url: str, key: str) -> None:
    """Process A: submit a payment run, run it until it waits, print where it stands, exit.
    ``url`` ``-``: the store named by ``TETHER_DB`` or ``TETHER_URL``/``TETHER_API_KEY``."""
    client = tether.connect(None if url == "-" else url)
    outcome = asyncio.run(_env_app().runners[PAY].run(client, "Pay invoice 42", key=key))
    print(outcome.intent_id, outcome.status.value, flush=True)
    client.close()


if __name__ == "__main__":
    _start(sys.argv[2], sys.argv[3])
