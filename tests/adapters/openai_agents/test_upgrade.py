"""A deploy never strands a parked approval: runs parked at a person's approval by version N of
an agent's code are resumed and finished by version N+1, in another process.

Process A runs version N (``_upgrade_v1.py``) until its runs wait for a person, and exits; the
person answers from the test; process B is a worker running version N+1 (``_upgrade_v2.py``).
Where N+1 kept the names the run was parked on, the run completes with N+1's behaviour and
none of N's finished tool calls is made again. Where N+1 removed or renamed the tool or the
agent the run was parked on, the run ends: it completes if nothing of what is gone has to run
(a rejected payment), or it fails with an error on the intent that names what is missing. It
never hangs, and it is not retried.

Both in-process SQLite (every process opens the file) and over HTTP (a server on loopback).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tether
from tether import Principal, Status
from tether_openai_agents.testing import journal

from ._procs import Process, Store, effect_lines, open_store, until, worker
from ._upgrade_v1 import (
    ADDRESS,
    AGENT_RENAMED,
    EXTERNAL_REMOVED,
    INVOICE,
    SAME,
    TOOL_REMOVED,
    TOOL_RENAMED,
)

V2_WORKER = "tests.adapters.openai_agents._upgrade_v2:worker"
REJECTED = (
    "The call to pay was rejected by human:alice@example.com with the comment: not this one. "
    "The tool was not run."
)


@pytest.fixture(params=["sqlite", "http"])
def store(request: pytest.FixtureRequest, db_url: str) -> Iterator[Store]:
    with open_store(request.param, db_url, ADDRESS) as opened:
        yield opened


def park(store: Store, effects: Path, **counts: int) -> dict[str, list[str]]:
    """Process A: version N submits runs of each kind and runs them until they wait, then
    exits. The parked runs' ids, by kind."""
    args = [f"{kind}={n}" for kind, n in counts.items()]
    proc = Process(["-m", "tests.adapters.openai_agents._upgrade_v1", *args],
                   {"TETHER_TEST_EFFECTS": str(effects), **store.env})  # fmt: skip
    assert proc.finish() == 0, proc.output()
    parked: dict[str, list[str]] = {kind: [] for kind in counts}
    for line in proc.lines:
        intent_id, kind, status = line.split()
        assert status == "WAITING", proc.output()
        parked[kind].append(intent_id)
    assert {kind: len(ids) for kind, ids in parked.items()} == counts, proc.output()
    return parked


def settled(client: tether.Client, waits: dict[str, list[str]]) -> bool:
    """Has every run ended, or stopped at a wait it was not parked at (a stranded run)?"""
    for intent_id, parked_at in waits.items():
        intent = client.get_intent(intent_id)
        moved_on = intent.wait is not None and intent.wait.wait_id not in parked_at
        if not (intent.status.terminal or (intent.status is Status.WAITING and moved_on)):
            return False
    return True


def tool_steps(client: tether.Client, intent_id: str) -> list[str]:
    return sorted(k.split(":")[1] for k in journal(client, intent_id) if k.startswith("tool:"))


@pytest.mark.slow
def test_runs_parked_by_version_n_are_finished_by_version_n_plus_1(
    store: Store, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.log"
    runs = park(store, effects, **{SAME: 4})[SAME]
    client = store.client
    alice = client.as_actor(Principal.human("alice@example.com"))
    waits = {i: [w.wait_id for w in client.list_waits(i)] for i in runs}
    assert all(len(ids) == 1 for ids in waits.values())  # each waits for its payment's approval
    assert sorted(effect_lines(effects)) == sorted(f"v1:lookup:{i}" for i in runs)

    # two answered before the deploy, two while version N+1's worker runs (one rejected)
    first, second, third, rejected = runs
    alice.approve(first, comment="ok")
    alice.approve(second, comment="ok")
    with worker(V2_WORKER, store, {"TETHER_TEST_EFFECTS": str(effects)}) as b:
        alice.approve(third, comment="ok")
        alice.reject(rejected, comment="not this one")
        until(lambda: settled(client, waits), b)

    paid = f"v2: {INVOICE} | paid 32000 EUR to ACME (v2) | receipt sent"
    for intent_id in runs:
        intent = client.get_intent(intent_id)
        assert intent.status is Status.COMPLETED, (intent_id, intent.error)
        # version N+1's code ran from where version N stopped: its new payment body, then
        # its new tool, under its new instructions
        if intent_id == rejected:
            assert intent.result == f"v2: {INVOICE} | {REJECTED} | receipt sent"
        else:
            assert intent.result == paid
        # the approval version N asked for was the one applied: no other was asked for
        assert [w.wait_id for w in client.list_waits(intent_id)] == waits[intent_id]
        assert tool_steps(client, intent_id) == (
            ["lookup_invoice", "send_receipt"]
            if intent_id == rejected
            else ["lookup_invoice", "pay", "send_receipt"]
        )
        assert client.verify_audit(intent_id).ok

    # each tool body ran once: the lookup by version N (never again), the rest by N+1
    expected = [f"v1:lookup:{i}" for i in runs]
    expected += [f"v2:pay:{i}" for i in (first, second, third)]
    expected += [f"v2:receipt:{i}" for i in runs]
    assert sorted(effect_lines(effects)) == sorted(expected)


@pytest.mark.slow
def test_a_run_parked_on_what_version_n_plus_1_no_longer_has_ends_with_a_clear_error(
    store: Store, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.log"
    parked = park(store, effects, **{TOOL_REMOVED: 2, TOOL_RENAMED: 1, AGENT_RENAMED: 1,
                                      EXTERNAL_REMOVED: 1})  # fmt: skip
    client = store.client
    alice = client.as_actor(Principal.human("alice@example.com"))
    pay_gone, rejected = parked[TOOL_REMOVED]
    [renamed_tool] = parked[TOOL_RENAMED]
    [renamed_agent] = parked[AGENT_RENAMED]
    [external] = parked[EXTERNAL_REMOVED]
    runs = [pay_gone, rejected, renamed_tool, renamed_agent, external]
    waits = {i: [w.wait_id for w in client.list_waits(i)] for i in runs}
    assert all(len(ids) == 1 for ids in waits.values())

    for intent_id in (pay_gone, renamed_tool, renamed_agent):
        alice.approve(intent_id, comment="ok")
    alice.reject(rejected, comment="not this one")
    [token] = [line.rsplit(":", 1)[1] for line in effect_lines(effects)
               if line.startswith(f"v1:kyc-start:{external}:")]  # fmt: skip
    client.complete_tool(token, {"verdict": "clear"})  # the KYC provider answers

    with worker(V2_WORKER, store, {"TETHER_TEST_EFFECTS": str(effects)}) as b:
        until(lambda: settled(client, waits), b)

    # nothing of what is gone had to run: the model reads the rejection, the run completes
    done = client.get_intent(rejected)
    assert done.status is Status.COMPLETED, done.error
    assert done.result == f"v2: {INVOICE} | {REJECTED}"

    # what was approved, or posted, cannot run any more: the run fails, and says why
    gone = {
        pay_gone: "Tool pay not found in agent payments",
        renamed_tool: "Tool pay not found in agent payments",
        renamed_agent: "agent not found",
        external: "the run waits on the long external call 'kyc_check' (call call_",
    }
    for intent_id, says in gone.items():
        intent = client.get_intent(intent_id)
        assert intent.status is Status.FAILED, (intent_id, intent.status, intent.pending_with)
        assert intent.error is not None and intent.error.code == "handler_error"
        assert says in intent.error.message, intent.error.message
        events = [e.event_type for e in client.list_events(intent_id)]
        assert events.count("intent.failed") == 1  # failed once, not retried
    error = client.get_intent(external).error
    assert error is not None
    assert error.message.endswith(
        "but agent 'kyc' no longer has a tool 'kyc_check': the run cannot go on"
    )

    for intent_id in runs:
        assert [w.wait_id for w in client.list_waits(intent_id)] == waits[intent_id]  # no new wait
        assert client.verify_audit(intent_id).ok
    # version N+1 ran no tool for any of these runs: nothing that is gone, nothing new
    assert not [line for line in effect_lines(effects) if line.startswith("v2:")]
