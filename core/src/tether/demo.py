"""The refund story, across real process boundaries (``tether demo``).

1. An agent process submits a refund intent, starts it, records a policy check, asks a person
   to approve, and exits.
2. A person approves from another process with ``tether inbox approve``.
3. A new agent process claims the resumed intent, issues the refund once, and completes it.
4. ``tether intents events`` prints the trail and ``tether audit verify`` proves it intact.

Each step is a separate Python process on the same store file; no server runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from .client import connect
from .model import HumanTask, Principal

AGENT = "agent://demo/refunds"
APPROVER = "finance-lead@example.com"

console = Console()


def submit(db: str) -> str:
    """Agent side, first process: submit, start, check policy, ask for approval, exit."""
    with connect(db, actor=Principal.agent(AGENT)) as client:
        intent = client.create_intent(
            "refund.request.v1",
            AGENT,
            {"order": "A-1042", "amount": 120.0, "currency": "EUR", "reason": "arrived damaged"},
            idempotency_key="demo-refund-A-1042",
        )
        lease = client.start(intent.intent_id, owner="refund-agent-1")
        policy = client.step(
            intent.intent_id,
            "check-policy",
            lambda: {"auto_limit": 50.0, "needs_approval": True},
            lease=lease,
        )
        if policy["needs_approval"]:
            client.wait_for_human(
                intent.intent_id,
                HumanTask(
                    title="Refund 120.00 EUR for order A-1042?",
                    description="Customer reports the parcel arrived damaged; photos attached.",
                    assignees=[APPROVER],
                    form_schema={
                        "type": "object",
                        "properties": {"ticket": {"type": "string", "pattern": "^SUP-[0-9]+$"}},
                    },
                ),
                key="refund-approval",
                timeout=7 * 24 * 3600,
                lease=lease,
            )
        return intent.intent_id


def work(db: str) -> str:
    """Agent side, a new process: claim the resumed intent and finish the work."""
    with connect(db, actor=Principal.agent(AGENT)) as client:
        claim = client.claim(AGENT, owner="refund-agent-2")
        if claim is None:
            raise SystemExit("nothing to do: no resumed intent for " + AGENT)
        intent, lease = claim.intent, claim.lease
        decision = claim.last_wait
        if decision is None or decision.outcome != "approved":
            client.complete(
                intent.intent_id,
                {"refunded": False, "outcome": decision and decision.outcome},
                lease=lease,
            )
            return intent.intent_id
        refund = client.step(
            intent.intent_id,
            "issue-refund",
            lambda: {
                "refund_id": "rf_" + intent.intent_id[-8:],
                "amount": intent.payload["amount"],
            },
            lease=lease,
        )
        client.complete(intent.intent_id, {"refunded": True, **refund}, lease=lease)
        return intent.intent_id


def _run(title: str, args: list[str]) -> str:
    console.rule(f"[bold]{title}")
    console.print("[dim]$ " + " ".join(["tether" if a == "-m" else a for a in args[2:]]) + "[/dim]")
    env = {**os.environ, "COLUMNS": str(max(console.width, 150))}
    done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if done.stdout:
        console.print(done.stdout.rstrip(), markup=False, highlight=False)
    if done.returncode != 0:
        console.print(done.stderr, markup=False)
        raise SystemExit(f"step failed: {title}")
    return done.stdout.strip()


def run(path: str | Path = ".tether/demo.db") -> None:
    """Run the whole story on a fresh store file."""
    started = time.perf_counter()
    db_path = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    db = f"sqlite:///{db_path}"
    py = [sys.executable, "-m"]
    out = _run("1. agent process submits a refund and asks for approval, then exits",
               [*py, "tether.demo", "submit", db])  # fmt: skip
    intent_id = re.findall(r"[0-9a-f]{8}-[0-9a-f-]{27}", out)[0]
    _run("2. a person looks at the inbox", [*py, "tether", "inbox", "list", "--db", db])
    _run("   ... and approves, from another process",
         [*py, "tether", "inbox", "approve", intent_id, "--as", APPROVER,
          "--comment", "Photos confirm the damage", "--data", "ticket=SUP-311", "--db", db])  # fmt: skip
    _run("3. a new agent process claims the resumed intent and completes it",
         [*py, "tether.demo", "work", db])  # fmt: skip
    _run("4. the intent's audit trail", [*py, "tether", "intents", "events", intent_id, "--db", db])
    _run("   ... and its proof", [*py, "tether", "audit", "verify", "--db", db])
    console.rule()
    console.print(f"demo finished in {time.perf_counter() - started:.1f}s; store: {db_path}")


if __name__ == "__main__":
    action, db = sys.argv[1], sys.argv[2]
    if action == "submit":
        print(f"submitted intent {submit(db)} and exited while it waits for {APPROVER}")
    elif action == "work":
        print(f"claimed, refunded and completed intent {work(db)}")
    else:
        raise SystemExit(f"unknown demo step {action!r}")
