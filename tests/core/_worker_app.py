"""A worker used by the tests from real processes (``tether worker tests.core._worker_app:worker``).

Every side effect appends a line to the file named by ``TETHER_TEST_EFFECTS``, so a test can
count how often each one really ran.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import tether

AGENT = "agent://test/refunds"
worker = tether.Worker(agent=AGENT, lease_seconds=float(os.environ.get("TETHER_TEST_LEASE", "30")),
                       poll_seconds=0.1)  # fmt: skip


def effect(name: str) -> str:
    with Path(os.environ["TETHER_TEST_EFFECTS"]).open("a") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())
    return name


@worker.handler("refund.request.v1")
def refund(ctx: tether.WorkContext) -> dict[str, object]:
    amount = ctx.intent.payload["amount"]
    ctx.step("reserve", lambda: effect(f"reserve:{ctx.intent.intent_id}"))
    if amount > 100:
        decision = ctx.wait_for_human(tether.HumanTask(title=f"Refund {amount}?"), key="approval")
        if decision.outcome != "approved":
            return {"refunded": False, "outcome": decision.outcome}
    slow = float(os.environ.get("TETHER_TEST_SLOW", "0"))

    def pay() -> str:
        time.sleep(slow)  # a long call: the test may SIGKILL the worker here
        return effect(f"pay:{ctx.intent.intent_id}")

    ctx.step("pay", pay)
    return {"refunded": True, "amount": amount}


@worker.handler("batch.process.v1")
def batch(ctx: tether.WorkContext) -> dict[str, object]:
    """Many small steps: each is a boundary where a kill or pause stops the handler."""
    pause = float(os.environ.get("TETHER_TEST_ITEM_SECONDS", "0.02"))
    for n in range(int(ctx.intent.payload["items"])):

        def item(n: int = n) -> str:
            time.sleep(pause)
            return effect(f"item:{n}")

        ctx.step(f"item:{n}", item)
    return {"items": ctx.intent.payload["items"]}
