"""Graph runs as tether intents: start, wait, answer, resume by a worker; in-process and
over HTTP."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import pytest
import tether
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from tether import Client, FrozenClock, HumanTask, Status, WaitKind
from tether_langgraph import (
    Decision,
    DurableGraph,
    TetherSaver,
    ToolResult,
    awaits_tool,
    requires_approval,
    wait_for_tool,
)

from ...server_harness import running_server
from .conftest import AGENT, person


class State(TypedDict, total=False):
    amount: int
    status: str
    log: Annotated[list[str], operator.add]


def _graph(client: Client, *nodes: tuple[str, Any]) -> Any:
    """A chain START -> nodes... -> END, checkpointed in tether."""
    g = StateGraph(State)
    previous = START
    for name, fn in nodes:
        g.add_node(name, fn)
        g.add_edge(previous, name)
        previous = name
    g.add_edge(previous, END)
    return g.compile(checkpointer=TetherSaver(client, agent=AGENT))


def _refund_nodes(calls: list[str]) -> list[tuple[str, Any]]:
    def check(state: State) -> dict[str, Any]:
        calls.append("check")
        return {"log": ["check"]}

    def task(state: State) -> HumanTask:
        calls.append("asked")  # each time the decorator runs: on the first run and on resume
        return HumanTask(title=f"Refund {state['amount']} EUR?")

    @requires_approval(task, when=lambda s: s["amount"] > 100)
    def refund(state: State, decision: Decision) -> dict[str, Any]:
        calls.append(f"refund:{decision.outcome}")
        if decision.approved:
            return {"status": "refunded", "log": ["refund"]}
        return {"status": "timed out" if decision.timed_out else decision.outcome}

    return [("check", check), ("refund", refund)]


def _work(durable: DurableGraph) -> None:
    """A worker takes every run that can go on (here, in the test's process)."""
    worker = durable.worker(poll_seconds=0.01)
    while worker.run_once():
        pass


def _resume_all(durable: DurableGraph) -> None:
    """Every run that can go on, run here: by a worker in-process; over HTTP by ``run``
    (a worker over HTTP keeps a long-poll open that holds up the test server's shutdown by
    seconds; the first test covers the worker over HTTP)."""
    if durable.client.url is None:
        _work(durable)
        return
    for intent in durable.client.list_intents(to_agent=AGENT, status=Status.IN_PROGRESS).items:
        durable.run(intent.intent_id)


def test_a_run_waits_for_a_person_and_a_worker_finishes_it(any_client: Client) -> None:
    client = any_client
    calls: list[str] = []
    durable = DurableGraph(_graph(client, *_refund_nodes(calls)), client, agent=AGENT)
    run = durable.start({"amount": 500})
    assert run.status == "waiting" and run.wait is not None
    intent = client.get_intent(run.intent_id)
    assert intent.status is Status.WAITING and intent.human_task is not None
    assert intent.human_task.title == "Refund 500 EUR?"
    assert calls == ["check", "asked"]

    person(client).approve(run.intent_id, comment="fine")
    _work(durable)
    done = client.get_intent(run.intent_id)
    assert done.status is Status.COMPLETED
    assert done.result == {"amount": 500, "status": "refunded", "log": ["check", "refund"]}
    # the node ran again from its start on resume; still one wait, and check ran once
    assert calls == ["check", "asked", "asked", "refund:approved"]
    assert len(client.list_waits(run.intent_id)) == 1


def test_a_rejection_reaches_the_node(client: Client) -> None:
    calls: list[str] = []
    durable = DurableGraph(_graph(client, *_refund_nodes(calls)), client, agent=AGENT)
    run = durable.start({"amount": 500})
    person(client).reject(run.intent_id, comment="not this one")
    again = durable.run(run.intent_id)  # resumed here rather than by a worker
    assert again.status == "completed" and again.output["status"] == "rejected"
    decision = durable.decision(run.intent_id)
    assert decision is not None and decision.rejected and decision.comment == "not this one"


@pytest.fixture(params=["local", "http"])
def frozen(request: pytest.FixtureRequest, db_url: str) -> Iterator[tuple[Client, FrozenClock]]:
    clock = FrozenClock()
    with tether.connect(db_url, clock=clock) as local:
        if request.param == "local":
            yield local, clock
            return
        with running_server(local.engine) as url:
            admin = local.engine.create_key(tether.KeyRole.ADMIN, subject="admin")
            with tether.connect(url, api_key=admin.secret, clock=clock) as remote:
                yield remote, clock


def test_a_timeout_reaches_the_node_as_its_own_outcome(
    frozen: tuple[Client, FrozenClock],
) -> None:
    client, clock = frozen

    @requires_approval("Refund?", timeout=3600)
    def refund(state: State, decision: Decision) -> dict[str, Any]:
        return {"status": "expired" if decision.timed_out else decision.outcome}

    durable = DurableGraph(_graph(client, ("refund", refund)), client, agent=AGENT)
    run = durable.start({"amount": 500})
    assert run.wait is not None and run.wait.deadline_at is not None
    clock.advance(3601)
    assert client.fire_due_timers() >= 1
    _resume_all(durable)
    done = client.get_intent(run.intent_id)
    assert done.status is Status.COMPLETED and done.result["status"] == "expired"
    decision = durable.decision(run.intent_id)
    assert decision is not None and decision.timed_out and not decision.rejected


def test_small_amounts_need_no_one(client: Client) -> None:
    calls: list[str] = []
    durable = DurableGraph(_graph(client, *_refund_nodes(calls)), client, agent=AGENT)
    run = durable.start({"amount": 50})
    assert run.status == "completed" and run.output["status"] == "refunded"
    assert client.list_waits(run.intent_id) == []


def test_parallel_waits_are_asked_one_after_the_other(client: Client) -> None:
    calls: list[str] = []

    def approval(name: str) -> Any:
        def task(state: State) -> str:
            calls.append(f"asked:{name}")
            return f"{name}?"

        @requires_approval(task)
        def node(state: State, decision: Decision) -> dict[str, Any]:
            calls.append(f"ran:{name}")
            return {"log": [f"{name}:{decision.outcome}"]}

        return node

    g = StateGraph(State)
    g.add_node("legal", approval("legal"))
    g.add_node("finance", approval("finance"))
    g.add_edge(START, "legal")
    g.add_edge(START, "finance")
    g.add_edge("legal", END)
    g.add_edge("finance", END)
    durable = DurableGraph(g.compile(checkpointer=TetherSaver(client)), client, agent=AGENT)
    run = durable.start({"amount": 1})
    assert run.status == "waiting"
    first = run.wait
    assert first is not None and first.human_task is not None
    person(client).approve(run.intent_id)
    _resume_all(durable)
    intent = client.get_intent(run.intent_id)
    assert intent.status is Status.WAITING and intent.human_task is not None
    assert {first.human_task.title, intent.human_task.title} == {"legal?", "finance?"}
    person(client).reject(run.intent_id)
    _resume_all(durable)
    done = client.get_intent(run.intent_id)
    assert done.status is Status.COMPLETED
    assert sorted(done.result["log"]) == sorted(
        [f"{first.human_task.title[:-1]}:approved", f"{intent.human_task.title[:-1]}:rejected"]
    )
    # one wait per node, each node's body once, however often the nodes re-ran
    assert len(client.list_waits(run.intent_id)) == 2
    assert sorted(c for c in calls if c.startswith("ran:")) == ["ran:finance", "ran:legal"]


def test_a_long_tool_call_posts_its_result_with_the_token(client: Client) -> None:
    tokens: list[str] = []

    def read(state: State) -> dict[str, Any]:
        ocr = wait_for_tool("ocr", tokens.append, timeout=3600)
        return {"status": f"{ocr.outcome}:{ocr.result}"}

    durable = DurableGraph(_graph(client, ("read", read)), client, agent=AGENT)
    run = durable.start({"amount": 1})
    assert run.status == "waiting" and run.wait is not None and run.wait.kind is WaitKind.TOOL
    assert len(tokens) == 1, "the tool was started once, with the wait's token"
    client.complete_tool(tokens[0], {"text": "invoice 42"})
    _resume_all(durable)
    done = client.get_intent(run.intent_id)
    assert done.status is Status.COMPLETED
    assert done.result["status"] == "completed:{'text': 'invoice 42'}"
    assert len(tokens) == 1


def test_a_failed_tool_call_reaches_the_decorated_node(client: Client) -> None:
    tokens: list[str] = []

    @awaits_tool("ocr", lambda state, token: tokens.append(token))
    def read(state: State, tool_result: ToolResult) -> dict[str, Any]:
        return {"status": f"failed:{tool_result.error}" if tool_result.failed else "ok"}

    durable = DurableGraph(_graph(client, ("read", read)), client, agent=AGENT)
    run = durable.start({"amount": 1})
    client.complete_tool(tokens[0], error="scanner jammed")
    assert durable.run(run.intent_id).output["status"] == "failed:scanner jammed"


def test_a_plain_interrupt_becomes_a_task_for_a_person(client: Client) -> None:
    def ask(state: State) -> dict[str, Any]:
        answer = interrupt("Which order is it about?")
        return {"status": f"{answer['outcome']}:{answer['data']['order']}"}

    durable = DurableGraph(_graph(client, ("ask", ask)), client, agent=AGENT)
    run = durable.start({"amount": 1})
    task = client.get_intent(run.intent_id).human_task
    assert task is not None and task.title == "Which order is it about?"
    person(client).respond(run.intent_id, "answered", data={"order": 42})
    assert durable.run(run.intent_id).output["status"] == "answered:42"


def test_runs_of_async_graphs(client: Client) -> None:
    @requires_approval("Go?")
    async def go(state: State, decision: Decision) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"status": decision.outcome}

    durable = DurableGraph(_graph(client, ("go", go)), client, agent=AGENT, run_async=True)
    run = asyncio.run(durable.astart({"amount": 1}))
    assert run.status == "waiting"
    person(client).approve(run.intent_id)
    _resume_all(durable)
    assert client.get_intent(run.intent_id).result["status"] == "approved"


def test_a_thread_carries_a_conversation_across_runs(client: Client) -> None:
    def note(state: State) -> dict[str, Any]:
        return {"log": [f"run with {state['amount']}"]}

    durable = DurableGraph(_graph(client, ("note", note)), client, agent=AGENT)
    first = durable.start({"amount": 1}, thread_id="conversation-7")
    second = durable.start({"amount": 2}, thread_id="conversation-7")
    assert first.thread_id == second.thread_id == "conversation-7"
    assert second.output["log"] == ["run with 1", "run with 2"]


def test_submitting_twice_with_one_key_is_one_run(client: Client) -> None:
    durable = DurableGraph(_graph(client, *_refund_nodes([])), client, agent=AGENT)
    one = durable.submit({"amount": 5}, idempotency_key="order-42")
    two = durable.submit({"amount": 5}, idempotency_key="order-42")
    assert one.intent_id == two.intent_id
    assert durable.run(one.intent_id).status == "completed"
    assert durable.run(one.intent_id).output["status"] == "refunded"  # reported, not rerun


def test_a_failing_node_fails_the_run(client: Client) -> None:
    def broken(state: State) -> dict[str, Any]:
        raise LookupError("no such order")

    durable = DurableGraph(_graph(client, ("broken", broken)), client, agent=AGENT)
    with pytest.raises(LookupError):
        durable.start({"amount": 1})
    failed = client.list_intents(to_agent=AGENT, status=Status.FAILED).items
    assert len(failed) == 1 and failed[0].error is not None
    assert "no such order" in failed[0].error.message


def test_a_graph_without_a_checkpointer_is_refused(client: Client) -> None:
    g = StateGraph(State)
    g.add_node("n", lambda s: {})
    g.add_edge(START, "n")
    with pytest.raises(ValueError, match="needs a checkpointer"):
        DurableGraph(g.compile(), client, agent=AGENT)


def test_a_node_of_a_subgraph_waits_and_resumes(client: Client) -> None:
    @requires_approval("Inner step?")
    def inner_step(state: State, decision: Decision) -> dict[str, Any]:
        return {"log": [f"inner:{decision.outcome}"]}

    inner = StateGraph(State)
    inner.add_node("inner_step", inner_step)
    inner.add_edge(START, "inner_step")
    inner.add_edge("inner_step", END)
    durable = DurableGraph(
        _graph(client, ("sub", inner.compile()), ("after", lambda s: {"log": ["after"]})),
        client,
        agent=AGENT,
    )
    run = durable.start({"amount": 1})
    assert run.status == "waiting" and run.wait is not None
    person(client).approve(run.intent_id)
    done = durable.run(run.intent_id)
    assert done.status == "completed" and done.output["log"] == ["inner:approved", "after"]
    assert len(client.list_waits(run.intent_id)) == 1
