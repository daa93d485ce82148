"""A deploy never strands a run that waits for a person.

Runs parked at a person's answer by version 1 of an agent's graph (``_upgrade_v1.py``, in a
process that then exits) are resumed by version 2 (``_upgrade_v2.py``, in a new process): the
nodes where they wait keep their names, their bodies changed, and a node was added after them.
Each run continues with v2's code from where it waited, and nothing v1 recorded runs again.

A release that renamed or removed the node a run waits in cannot give that run its answer:
the run then fails with the error code ``graph_changed`` on its intent, rather than end as if
the node had run, or wait for ever.
"""

from __future__ import annotations

import operator
import time
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
import tether
from langchain_core.messages import HumanMessage
from langgraph.func import entrypoint, task
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from tether import Client, Status
from tether_langgraph import DurableGraph, GraphChanged, RunResult, TetherSaver, wait_for_human

from . import _external, _upgrade_v1, _upgrade_v2
from ._procs import spawn, stop, target, until
from .conftest import AGENT, person

# (order, amount, review): where each run waits in v1, and what happens after the upgrade
RUNS = [
    ("A-500", 500, False),  # in pay; approved
    ("A-50", 50, True),  # in review, after its draft step; approved; v2's pay needs no one
    ("A-700", 700, True),  # in review; approved; v2's pay then asks a person (a v2 task)
    ("A-300", 300, False),  # in pay; rejected
]


def _submit(client: Client, order: str, amount: int, review: bool) -> str:
    durable = _upgrade_v1.build(client)
    run = {"messages": [HumanMessage(order)], "order": order, "amount": amount, "review": review}
    return durable.submit(run).intent_id


def _park(client: Client, env: dict[str, str], tmp_path: Path, runs: list[Any]) -> dict[str, str]:
    """Submit ``runs`` and let a v1 worker process take each once: it exits when all wait."""
    ids = {order: _submit(client, order, amount, review) for order, amount, review in runs}
    log = tmp_path / "v1.log"
    v1 = spawn("_upgrade_v1", env, log, RUNS=str(len(runs)))
    try:
        assert v1.wait(180) == 0, log.read_text()
    finally:
        stop(v1)
    for order, intent_id in ids.items():
        intent = client.get_intent(intent_id)
        assert intent.status is Status.WAITING, (order, intent.status, intent.error)
    done = _external.executions(tmp_path / "effects.db")
    assert done and {e.pid for e in done} == {v1.pid}
    assert {e.label.split(":")[1] for e in done} == {"v1"}
    return ids


def _labels(effects: Path) -> dict[str, list[str]]:
    by_run: dict[str, list[str]] = defaultdict(list)
    for e in _external.executions(effects):
        by_run[e.intent_id].append(e.label)
    return by_run


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["local", "http"])
def test_runs_parked_by_one_version_are_finished_by_the_next(
    kind: str, db_url: str, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.db"
    _external.create(effects)
    env = {"EFFECTS": str(effects)}
    with target(kind, db_url) as (client, store):
        ids = _park(client, {**store, **env}, tmp_path, RUNS)
        alice = person(client)
        for order in ("A-500", "A-50", "A-700"):
            alice.approve(ids[order], comment="ok")
        alice.reject(ids["A-300"], comment="no")

        v2 = spawn("_upgrade_v2", {**store, **env}, tmp_path / "v2.log")
        asked_by_v2: list[str] = []

        def settled() -> bool:
            for task in alice.list_tasks():  # v2's pay asks about A-700
                assert task.wait is not None and task.wait.human_task is not None
                asked_by_v2.append(task.wait.human_task.title)
                alice.approve(task.intent_id)
            return all(client.get_intent(i).status.terminal for i in ids.values())

        try:
            until(settled, what="every run ended")
        finally:
            stop(v2)
        log = (tmp_path / "v2.log").read_text()
        results = {}
        for order, intent_id in ids.items():
            intent = client.get_intent(intent_id)
            assert intent.status is Status.COMPLETED, (order, intent.error, log)
            results[order] = intent.result
        assert asked_by_v2 == ["v2: pay back 700 EUR on A-700?"]

        # after the resume point, v2's code; before it, what v1 did, as v1 recorded it
        for order in ("A-500", "A-50", "A-700"):
            result = results[order]
            amount = result["amount"]
            assert result["status"] == "paid"
            assert result["notified"] == "notify:v2 (paid)"  # the node v2 added
            contents = [m["content"] for m in result["messages"]]
            assert contents == [
                order,
                "",
                "charged back 1 EUR for " + order,  # v1's tool, not run again by v2
                "Charged back; the refund is next.",  # v1's model turn, not run again
                f"v2: your {amount} EUR are on their way.",
            ]
        for order in ("A-50", "A-700"):
            assert results[order]["note"] == "v2 read draft:v1, approved"  # v1's recorded draft
        assert results["A-300"]["status"] == "not paid (rejected)"
        assert results["A-300"]["notified"] == "notify:v2 (not paid (rejected))"

        # one wait per question: v1's stay as v1 asked them; v2 asked only what was new
        titles = {
            order: [w.human_task.title for w in client.list_waits(i) if w.human_task]
            for order, i in ids.items()
        }
        assert titles == {
            "A-500": ["v1: refund 500 EUR for A-500?"],
            "A-50": ["v1: check the refund note for A-50"],
            "A-700": ["v1: check the refund note for A-700", "v2: pay back 700 EUR on A-700?"],
            "A-300": ["v1: refund 300 EUR for A-300?"],
        }

        # every side effect once: v1's before the wait (in v1's process), v2's after it
        calls = _external.executions(effects)
        keys = [e.key for e in calls]
        assert len(keys) == len(set(keys)) and set(keys) == _external.applied(effects)
        for intent_id in ids.values():
            journal = {f"{intent_id}:{s.key}" for s in client.list_steps(intent_id)}
            assert journal == {e.key for e in calls if e.intent_id == intent_id}
        before = ["prepare:v1", "charge:v1"]
        assert _labels(effects) == {
            ids["A-500"]: [*before, "pay:v2", "notify:v2"],
            ids["A-50"]: [*before, "draft:v1", "pay:v2", "notify:v2"],
            ids["A-700"]: [*before, "draft:v1", "pay:v2", "notify:v2"],
            ids["A-300"]: [*before, "notify:v2"],
        }
        assert {e.pid for e in calls if e.label.endswith(":v2")} == {v2.pid}
        report = client.verify_audit()
        assert report.ok, report.problems


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["local", "http"])
def test_a_run_parked_in_a_node_the_next_version_renamed_fails_clearly(
    kind: str, db_url: str, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.db"
    _external.create(effects)
    env = {"EFFECTS": str(effects)}
    with target(kind, db_url) as (client, store):
        ids = _park(client, {**store, **env}, tmp_path, RUNS[:2])
        for intent_id in ids.values():
            person(client).approve(intent_id)
        v2 = spawn("_upgrade_v2", {**store, **env}, tmp_path / "v2.log", UPGRADE_VARIANT="renamed")
        try:
            until(lambda: all(client.get_intent(i).status.terminal for i in ids.values()))
        finally:
            stop(v2)
        # parked in pay, which v2 calls approve_refund: its answer has nowhere to go
        broken = client.get_intent(ids["A-500"])
        assert broken.status is Status.FAILED and broken.error is not None
        assert broken.error.code == "graph_changed"
        assert "'pay'" in broken.error.message and "renamed or removed" in broken.error.message
        assert broken.error.details["nodes"] == ["pay"]
        # parked in review, which v2 still has: it goes on through the renamed node
        fine = client.get_intent(ids["A-50"])
        assert fine.status is Status.COMPLETED, fine.error
        assert fine.result["status"] == "paid"
        assert fine.result["note"] == "v2 read draft:v1, approved"
        assert _labels(effects) == {
            ids["A-500"]: ["prepare:v1", "charge:v1"],  # nothing ran after the answer
            ids["A-50"]: ["prepare:v1", "charge:v1", "draft:v1", "pay:v2", "notify:v2"],
        }
        report = client.verify_audit()
        assert report.ok, report.problems


@pytest.mark.parametrize("run_async", [False, True])
def test_a_run_parked_in_a_node_the_next_version_removed_fails_clearly(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_async: bool
) -> None:
    effects = tmp_path / "effects.db"
    _external.create(effects)
    monkeypatch.setenv("EFFECTS", str(effects))
    order = {"messages": [HumanMessage("B-1")], "order": "B-1", "amount": 900, "review": False}
    run = _upgrade_v1.build(client).start(order)
    assert run.status == "waiting"
    person(client).approve(run.intent_id)
    graph = _upgrade_v2.build(client, variant="removed").graph  # review goes on to notify
    removed = DurableGraph(graph, client, agent=_upgrade_v1.AGENT, run_async=run_async)
    with pytest.raises(GraphChanged, match="renamed or removed") as raised:
        removed.run(run.intent_id)
    assert isinstance(raised.value, tether.IntentTerminal)  # the run has ended: failed
    intent = client.get_intent(run.intent_id)
    assert intent.status is Status.FAILED and intent.error is not None
    assert intent.error.code == "graph_changed"
    assert intent.error.details["nodes"] == ["pay"]
    assert intent.error.details["waits"] == [w.key for w in client.list_waits(run.intent_id)]
    assert list(_labels(effects).values()) == [["prepare:v1", "charge:v1"]]  # no notify


class _Crash(BaseException):
    """Stands for the process dying inside a node (no handler sees it)."""


@pytest.mark.parametrize("run_async", [False, True])
def test_a_run_stopped_between_nodes_before_a_renamed_node_fails_clearly(
    client: Client, run_async: bool
) -> None:
    """A worker died after ``draft`` and before ``send``; the next release renamed ``send``.
    The run must not end as if ``send`` had run: it fails with ``graph_changed``."""
    ran: list[str] = []

    def node(name: str, crash: bool = False) -> Any:
        def body(state: Fan) -> dict[str, Any]:
            if crash:
                raise _Crash(name)
            ran.append(name)
            return {"done": [name]}

        return body

    def graph(second: str, crash: bool) -> DurableGraph:
        g = StateGraph(Fan)
        g.add_node("draft", node("draft"))
        g.add_node(second, node(second, crash))
        g.add_edge(START, "draft")
        g.add_edge("draft", second)
        g.add_edge(second, END)
        return DurableGraph(g.compile(checkpointer=TetherSaver(client)), client, agent=AGENT,
                            run_async=run_async, lease_seconds=0.3)  # fmt: skip

    intent = graph("send", crash=True).submit({"items": []})
    with pytest.raises(_Crash):
        graph("send", crash=True).run(intent.intent_id)
    assert ran == ["draft"]
    deliver = graph("deliver", crash=False)  # the next release

    def resume() -> None:
        while True:  # once the dead attempt's lease has run out
            try:
                deliver.run(intent.intent_id)
                return
            except tether.Conflict as exc:
                if exc.code != "leased":
                    raise
                time.sleep(0.05)

    with pytest.raises(GraphChanged, match="stopped before node 'send'") as raised:
        resume()
    assert raised.value.details == {"nodes": ["send"], "waits": []}
    failed = client.get_intent(intent.intent_id)
    assert failed.status is Status.FAILED and failed.error is not None
    assert failed.error.code == "graph_changed"
    assert ran == ["draft"]  # neither the old nor the new node ran


class Fan(TypedDict, total=False):
    items: list[int]
    done: Annotated[list[str], operator.add]


def _answer_all(client: Client, durable: DurableGraph, run: RunResult) -> RunResult:
    """Answer the run's waits one at a time, resuming it after each answer."""
    while run.status == "waiting":
        person(client).approve(run.intent_id)
        run = durable.run(run.intent_id)
    return run


def test_a_graph_that_did_not_change_is_never_taken_for_one_that_did(client: Client) -> None:
    """Interrupts that no task of the graph shows are not all lost ones: a task sent with
    ``Send`` that has finished since it waited, a ``@task`` of the functional API (it waits
    through its entrypoint)."""

    def work(state: Fan) -> dict[str, Any]:
        decision = wait_for_human(f"Item {state['items'][0]}?")
        return {"done": [f"{state['items'][0]}:{decision.outcome}"]}

    g = StateGraph(Fan)
    g.add_node("work", work)
    g.add_conditional_edges(START, lambda s: [Send("work", {"items": [i]}) for i in s["items"]])
    g.add_edge("work", END)
    fan = DurableGraph(g.compile(checkpointer=TetherSaver(client)), client, agent=AGENT)
    run = _answer_all(client, fan, fan.start({"items": [1, 2, 3]}))
    assert run.status == "completed"
    assert sorted(run.output["done"]) == ["1:approved", "2:approved", "3:approved"]

    @task
    def ask(i: int) -> str:
        return wait_for_human(f"Step {i}?").outcome

    @entrypoint(checkpointer=TetherSaver(client))
    def steps(n: int) -> list[str]:
        return [ask(i).result() for i in range(n)]

    flow = DurableGraph(steps, client, agent=AGENT)
    run = _answer_all(client, flow, flow.start(3))
    assert run.status == "completed" and run.output == ["approved"] * 3


def test_a_release_that_removed_one_of_two_waiting_nodes_fails_the_run(client: Client) -> None:
    def waiting(name: str) -> Any:
        def node(state: Fan) -> dict[str, Any]:
            return {"done": [f"{name}:{wait_for_human(f'{name}?').outcome}"]}

        return node

    def graph(*names: str) -> DurableGraph:
        g = StateGraph(Fan)
        for name in names:
            g.add_node(name, waiting(name))
            g.add_edge(START, name)
            g.add_edge(name, END)
        return DurableGraph(g.compile(checkpointer=TetherSaver(client)), client, agent=AGENT)

    run = graph("left", "right").start({"items": []})
    assert run.status == "waiting"
    person(client).approve(run.intent_id)  # the first wait: left's
    with pytest.raises(GraphChanged):
        graph("left").run(run.intent_id)  # right's wait would be dropped
    intent = client.get_intent(run.intent_id)
    assert intent.status is Status.FAILED and intent.error is not None
    assert intent.error.details["nodes"] == ["right"]
