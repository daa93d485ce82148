"""Durable payments with the OpenAI Agents SDK on tether, across real processes.

A payments agent looks an invoice up, has the payee screened by a compliance system (a long
external call: the system answers whenever it answers), and pays, with a person approving
any payment over 10,000 EUR. Every step of the story below is its own Python process on one
store file; no process waits for another, and none of them keeps anything in memory:

1. an agent process submits the run; it stops when the screening is requested, and exits;
2. the compliance system posts its verdict with the wait's callback token;
3. a worker continues the run; the payment now waits for the finance lead, and it exits;
4. the finance lead approves with ``tether inbox approve``;
5. a worker continues the run: the payment is made, once, and the run completes;
6. ``tether intents events`` prints the trail, ``tether audit verify`` proves it intact.

Run it (``make demo`` does) with the adapter's environment::

    adapters/openai_agents/.venv/bin/python examples/openai_agents_payments.py

Offline by default: a scripted model plays the agent, and the SDK's tracing is off, so nothing
leaves the machine. With ``OPENAI_API_KEY`` set, a real model (``OPENAI_MODEL``, default
``gpt-4.1-mini``) runs the same agent instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

OFFLINE = not os.environ.get("OPENAI_API_KEY")
if OFFLINE:
    os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"  # nothing leaves the machine

import tether  # noqa: E402
from agents import Agent, function_tool  # noqa: E402
from rich.console import Console  # noqa: E402
from tether_openai_agents import (  # noqa: E402
    ApprovalRequest,
    DurableRunner,
    callback_token,
    requires_approval,
    wait_for_tool,
)
from tether_openai_agents.testing import ScriptedModel, tool_call  # noqa: E402

ADDRESS = "agent://demo/payments"
APPROVER = "finance-lead@example.com"
HOME = Path(".tether") / "openai_agents_payments"  # the store, the outbox, the ledger
DB = f"sqlite:///{HOME / 'store.db'}"
OUTBOX = HOME / "compliance-outbox"  # requests to the compliance system
LEDGER = HOME / "payments.log"  # what the bank did

console = Console(width=None if sys.stdout.isatty() else 150)  # no wrapping when piped

INVOICES = {
    "INV-42": {
        "amount": 32000,
        "currency": "EUR",
        "payee": "ACME GmbH",
        "iban": "DE89 3704 0044 0532 0130 00",
    },
}


@function_tool
def lookup_invoice(invoice_id: str) -> str:
    """Look an invoice up: amount, currency, payee and the payee's IBAN."""
    return json.dumps({"invoice_id": invoice_id, **INVOICES[invoice_id]})


@wait_for_tool(timeout=3 * 86400)
def screen_payee(payee: str) -> None:
    """Have the compliance system screen a payee against the sanctions lists. It answers
    within three days; the answer says whether the payee may be paid."""
    OUTBOX.mkdir(parents=True, exist_ok=True)
    token = callback_token()
    request = {"payee": payee, "callback_token": token}
    (OUTBOX / f"{token[-12:]}.json").write_text(json.dumps(request))


def approval_task(request: ApprovalRequest) -> tether.HumanTask:
    args = request.arguments
    return tether.HumanTask(
        title=f"Pay {args['amount']} EUR to {args['payee']} ({args['invoice_id']})?",
        description=f"The payments agent wants to pay invoice {args['invoice_id']}; "
        "the payee passed the sanctions screening.",
        assignees=[APPROVER],
    )


@requires_approval(when=lambda args: args["amount"] > 10_000, task=approval_task,
                   timeout=7 * 86400)  # fmt: skip
@function_tool
def pay(invoice_id: str, amount: int, payee: str) -> str:
    """Pay an invoice's amount to its payee. Returns the bank's receipt."""
    with LEDGER.open("a") as ledger:
        ledger.write(f"{invoice_id} {amount} EUR to {payee}\n")
    return f"receipt PAY-{invoice_id}: {amount} EUR to {payee}"


def _model() -> ScriptedModel | str:
    if not OFFLINE:
        return os.environ.get("OPENAI_MODEL", "gpt-4.1-mini")
    return ScriptedModel(
        [[tool_call("lookup_invoice", {"invoice_id": "INV-42"})],
         [tool_call("screen_payee", {"payee": "ACME GmbH"})],
         [tool_call("pay", {"invoice_id": "INV-42", "amount": 32000, "payee": "ACME GmbH"})]],
        final=lambda outputs: f"Invoice INV-42 is paid: {outputs[-1]}",
    )  # fmt: skip


agent = Agent(
    name="payments",
    instructions=(
        "You pay invoices. Look the invoice up, have its payee screened, and pay it only if "
        "the screening clears the payee. Report what you did in one sentence."
    ),
    tools=[lookup_invoice, screen_payee, pay],
    model=_model(),
)
runner = DurableRunner(agent, address=ADDRESS, intent_type="payments.invoice.v1")


def _client() -> tether.Client:
    return tether.connect(DB, actor=tether.Principal.agent(ADDRESS))


# -- the processes of the story -------------------------------------------------------------


def _describe(intent: tether.Intent) -> str:
    waiting = f" ({intent.waiting_reason.value})" if intent.waiting_reason else ""
    result = f": {intent.result}" if intent.result is not None else ""
    return f"intent {intent.intent_id}: {intent.status.value}{waiting}{result}"


def start() -> None:
    """An agent process: submit the run and run it until it waits."""
    with _client() as client:
        outcome = asyncio.run(runner.run(client, "Pay invoice INV-42", key="pay-INV-42"))
        print(_describe(client.get_intent(outcome.intent_id)))


def compliance() -> None:
    """The compliance system, days later: screen each requested payee, post the verdict."""
    with tether.connect(DB) as client:
        for request_file in sorted(OUTBOX.glob("*.json")):
            request = json.loads(request_file.read_text())
            verdict = {"payee": request["payee"], "sanctioned": False,
                       "lists": ["EU consolidated", "OFAC SDN"]}  # fmt: skip
            client.complete_tool(request["callback_token"], verdict)
            request_file.unlink()
            print(f"screened {request['payee']}: {verdict}")


def work() -> None:
    """A worker process: continue every run that can go on, then exit."""
    with _client() as client:
        worker = runner.worker(client, poll_seconds=0.2)
        handled = 0
        while worker.run_once():
            handled += 1
        for intent in client.list_intents(to_agent=ADDRESS).items:
            print(_describe(intent))
        print(f"(this worker continued {handled} run{'s' if handled != 1 else ''})")


# -- the story, one process per step ----------------------------------------------------------


def _step(title: str, args: list[str]) -> str:
    console.rule(f"[bold]{title}")
    shown = ["tether", *args[3:]] if args[1] == "-m" else ["python", _SCRIPT, *args[2:]]
    console.print("[dim]$ " + " ".join(shown) + "[/dim]", markup=True, highlight=False)
    env = {**os.environ, "COLUMNS": str(max(console.width, 150))}
    done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if done.stdout:
        console.print(done.stdout.rstrip(), markup=False, highlight=False)
    if done.returncode != 0:
        console.print(done.stderr, markup=False)
        raise SystemExit(f"step failed: {title}")
    return done.stdout.strip()


_SCRIPT = "examples/openai_agents_payments.py"


def story() -> None:
    started = time.perf_counter()
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    me = [sys.executable, __file__]
    cli = [sys.executable, "-m", "tether"]
    mode = "a scripted model, offline" if OFFLINE else f"the model {_model()}"
    console.print(f"[bold]Durable payments with the OpenAI Agents SDK[/bold] ({mode})")
    out = _step("1. an agent process submits the run; it waits for the screening; it exits",
                [*me, "start"])  # fmt: skip
    intent_id = re.findall(r"[0-9a-f]{8}-[0-9a-f-]{27}", out)[0]
    _step("2. days later, the compliance system posts its verdict", [*me, "compliance"])
    _step("3. a worker continues the run: the payment waits for the finance lead",
          [*me, "work"])  # fmt: skip
    _step("4. the finance lead looks at the inbox", [*cli, "inbox", "list", "--db", DB])
    _step("   ... and approves, from another process",
          [*cli, "inbox", "approve", intent_id, "--as", APPROVER, "--comment",
           "Screened and within budget", "--db", DB])  # fmt: skip
    _step("5. a worker continues the run: the payment is made, once", [*me, "work"])
    console.rule("[bold]   ... the bank's ledger")
    console.print(LEDGER.read_text().rstrip(), markup=False)
    _step("6. the intent's audit trail", [*cli, "intents", "events", intent_id, "--db", DB])
    _step("   ... and its proof", [*cli, "audit", "verify", "--db", DB])
    console.rule()
    console.print(f"finished in {time.perf_counter() - started:.1f}s; store: {HOME / 'store.db'}")


if __name__ == "__main__":
    steps = {"start": start, "compliance": compliance, "work": work}
    action = sys.argv[1] if len(sys.argv) > 1 else "story"
    if action == "story":
        story()
    elif action in steps:
        steps[action]()
    else:
        raise SystemExit(f"usage: {sys.argv[0]} [story|start|compliance|work]")
