"""Real processes, killed with SIGKILL: while the run waits, and in the middle of a tool call.
Each ends with the run complete and every tool body finished exactly once.

The processes run ``_app.py``: ``python -m tests.adapters.openai_agents._app start`` (submit a
run, run it until it waits, exit) and ``python -m tether worker ..._app:worker``. Their tool
bodies append to an effects file, which is what the tests count.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tether import Principal, Status

from ._app import ADDRESS, SLOW
from ._procs import Process, Store, effect_lines, open_store, until, worker

WORKER = "tests.adapters.openai_agents._app:worker"


@pytest.fixture(params=["sqlite", "http"])
def store(request: pytest.FixtureRequest, db_url: str) -> Iterator[Store]:
    with open_store(request.param, db_url, ADDRESS) as opened:
        yield opened


@pytest.mark.slow
def test_a_run_outlives_its_process_and_a_worker_killed_while_it_waits(
    store: Store, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.log"
    # process A submits the payment run, runs it until the payment waits for a person, exits
    start = Process(["-m", "tests.adapters.openai_agents._app", "start", "-", "invoice-42"],
                    {"TETHER_TEST_EFFECTS": str(effects), **store.env})  # fmt: skip
    assert start.finish(120) == 0, start.output()
    intent_id, status = start.lines[-1].split()
    assert status == "WAITING" and effect_lines(effects) == ["lookup:42"]

    # a worker comes up while the run waits, and is killed there
    with worker(WORKER, store, {"TETHER_TEST_EFFECTS": str(effects)}) as doomed:
        doomed.kill()
    assert store.client.get_intent(intent_id).status is Status.WAITING

    store.client.as_actor(Principal.human("alice@example.com")).approve(intent_id, comment="ok")
    with worker(WORKER, store, {"TETHER_TEST_EFFECTS": str(effects)}) as rescuer:
        until(lambda: store.client.get_intent(intent_id).status is Status.COMPLETED, rescuer)

    done = store.client.get_intent(intent_id)
    assert done.result == "final: invoice 42: 32000 EUR to ACME | paid 32000 EUR to ACME"
    assert effect_lines(effects) == ["lookup:42", "pay:32000:ACME"]
    assert store.client.verify_audit(intent_id).ok


@pytest.mark.slow
def test_a_worker_killed_inside_a_tool_is_taken_over_and_each_tool_finishes_once(
    store: Store, tmp_path: Path
) -> None:
    effects, hold = tmp_path / "effects.log", tmp_path / "hold"
    hold.touch()  # the notify tool blocks while this file exists
    intent = store.client.create_intent(SLOW, ADDRESS, {"input": "Pay invoice 42 and tell finance"})
    env = {"TETHER_TEST_EFFECTS": str(effects), "TETHER_TEST_LEASE": "2"}
    with worker(WORKER, store, {**env, "TETHER_TEST_HOLD": str(hold)}) as doomed:
        until(lambda: "notify-start" in effect_lines(effects), doomed)
        doomed.kill()  # inside the notify tool, after lookup_invoice finished
    assert store.client.get_intent(intent.intent_id).status is Status.IN_PROGRESS

    hold.unlink()
    with worker(WORKER, store, env) as rescuer:
        until(lambda: store.client.get_intent(intent.intent_id).status is Status.COMPLETED,
               rescuer)  # fmt: skip

    done = store.client.get_intent(intent.intent_id)
    assert done.result == "final: invoice 42: 32000 EUR to ACME | finance notified"
    # lookup_invoice finished before the kill: the rescuer replayed it from the journal (with the
    # same call id, which only the journaled model turn could give it: the scripted model makes
    # new ids each time it is asked); notify died midway and ran again, to its end once.
    assert effect_lines(effects) == [
        "lookup:42",
        "notify-start",
        "notify-start",
        "notify:invoice 42 paid",
    ]
    claimed = [e for e in store.client.list_events(intent.intent_id)
               if e.event_type == "intent.claimed"]  # fmt: skip
    assert claimed, "the rescuer took the run over after the lease lapsed"
