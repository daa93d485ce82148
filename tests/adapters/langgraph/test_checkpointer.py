"""TetherSaver under real graphs: what one saver stored, another (a new process) reads."""

from __future__ import annotations

import asyncio
import operator
import time
import uuid
from typing import Annotated, Any, TypedDict

import pytest
import tether
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from tether import Client
from tether_langgraph import TetherSaver

from ...server_harness import running_server


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    big: str
    answer: str


def _config(thread_id: str | None = None) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id or str(uuid.uuid4())}}


def _ask_graph(saver: TetherSaver) -> Any:
    def a(state: State) -> dict[str, Any]:
        return {"log": ["a"]}

    def ask(state: State) -> dict[str, Any]:
        return {"answer": interrupt("which colour?"), "log": ["ask"]}

    def c(state: State) -> dict[str, Any]:
        return {"log": ["c"]}

    g = StateGraph(State)
    g.add_node("a", a)
    g.add_node("ask", ask)
    g.add_node("c", c)
    g.add_edge(START, "a")
    g.add_edge("a", "ask")
    g.add_edge("ask", "c")
    g.add_edge("c", END)
    return g.compile(checkpointer=saver)


def test_a_run_interrupted_under_one_saver_resumes_under_another(client: Client) -> None:
    config = _config()
    first = _ask_graph(TetherSaver(client))
    out = first.invoke({"log": []}, config, durability="sync", version="v2")
    assert out.interrupts and out.interrupts[0].value == "which colour?"

    second = _ask_graph(TetherSaver(client))  # nothing cached: as a new process would
    snapshot = second.get_state(config)
    assert snapshot.next == ("ask",)
    assert snapshot.interrupts[0].id == out.interrupts[0].id
    done = second.invoke(Command(resume="blue"), config, durability="sync", version="v2")
    assert done.value == {"log": ["a", "ask", "c"], "answer": "blue"}
    assert not done.interrupts


def test_history_is_the_same_as_with_langgraphs_own_saver(client: Client) -> None:
    def history(saver: Any, reader: Any) -> list[tuple[Any, Any]]:
        config = _config()
        _ask_graph(saver).invoke({"log": []}, config, durability="sync")
        _ask_graph(saver).invoke(Command(resume="red"), config, durability="sync")
        return [(h.values, h.next) for h in _ask_graph(reader).get_state_history(config)]

    memory = InMemorySaver()
    expected = history(memory, memory)
    # unchanged channels are stored once and referenced; each checkpoint still shows the
    # values it had, read by a saver that cached nothing
    assert history(TetherSaver(client), TetherSaver(client)) == expected
    assert len(expected) == 5


def test_any_checkpoint_is_read_back_by_its_id(client: Client) -> None:
    config = _config()
    graph = _ask_graph(TetherSaver(client))
    graph.invoke({"log": []}, config, durability="sync")
    graph.invoke(Command(resume="red"), config, durability="sync")
    fresh = _ask_graph(TetherSaver(client))
    for past in list(fresh.get_state_history(config)):
        again = _ask_graph(TetherSaver(client)).get_state(past.config)
        assert (again.values, again.next) == (past.values, past.next)


def test_values_larger_than_a_request_are_stored_in_parts(client: Client) -> None:
    big = "x" * 300_000 + "end"  # well over the server's 128 KiB body limit

    def fill(state: State) -> dict[str, Any]:
        return {"big": big, "log": ["fill"]}

    g = StateGraph(State)
    g.add_node("fill", fill)
    g.add_edge(START, "fill")
    g.add_edge("fill", END)
    config = _config()
    g.compile(checkpointer=TetherSaver(client)).invoke({"log": []}, config, durability="sync")

    reread = g.compile(checkpointer=TetherSaver(client)).get_state(config)
    assert reread.values["big"] == big


def test_writes_of_a_task_reach_the_store_without_a_next_checkpoint(client: Client) -> None:
    saver = TetherSaver(client, write_delay=0.05)
    graph = _ask_graph(saver)
    config = _config()
    graph.invoke({"log": []}, config, durability="sync")
    stored = saver.get_tuple(config)
    assert stored is not None
    task = str(uuid.uuid4())
    saver.put_writes(stored.config, [("log", ["late"])], task)

    reader = TetherSaver(client)
    deadline = time.monotonic() + 30
    while True:
        seen = reader.get_tuple(stored.config)
        assert seen is not None
        if any(w[0] == task for w in seen.pending_writes or []):
            break
        assert time.monotonic() < deadline, "the waiting write was never stored"
        time.sleep(0.02)
    # the interrupt's own writes were stored at once
    assert any(w[1] == "__interrupt__" for w in seen.pending_writes or [])


def test_an_input_checkpoint_alone_reaches_the_store(client: Client) -> None:
    saver = TetherSaver(client, write_delay=0.05)
    config = _config()
    checkpoint = empty_checkpoint()
    saver.put(config, checkpoint, {"source": "input", "step": -1, "parents": {}}, {})

    reader = TetherSaver(client)
    deadline = time.monotonic() + 30
    while (seen := reader.get_tuple(config)) is None:
        assert time.monotonic() < deadline, "the waiting checkpoint was never stored"
        time.sleep(0.02)
    assert seen.checkpoint["id"] == checkpoint["id"]
    assert seen.metadata["source"] == "input"


def test_a_deleted_thread_is_gone_for_every_saver(client: Client) -> None:
    writer, reader = TetherSaver(client), TetherSaver(client)
    config = _config()
    _ask_graph(writer).invoke({"log": []}, config, durability="sync")
    assert reader.get_tuple(config) is not None
    reader.delete_thread(config["configurable"]["thread_id"])
    assert writer.get_tuple(config) is None
    assert list(writer.list(config)) == []
    # the thread can be used again from scratch
    out = _ask_graph(writer).invoke({"log": []}, config, durability="sync", version="v2")
    assert out.interrupts


def test_a_subgraph_interrupt_resumes_under_another_saver(client: Client) -> None:
    class Inner(TypedDict, total=False):
        log: Annotated[list[str], operator.add]

    def ask(state: Inner) -> dict[str, Any]:
        return {"log": [f"inner:{interrupt('ok?')}"]}

    inner = StateGraph(Inner)
    inner.add_node("ask", ask)
    inner.add_edge(START, "ask")
    inner.add_edge("ask", END)

    def build(saver: TetherSaver) -> Any:
        outer = StateGraph(State)
        outer.add_node("sub", inner.compile())
        outer.add_edge(START, "sub")
        outer.add_edge("sub", END)
        return outer.compile(checkpointer=saver)

    config = _config()
    out = build(TetherSaver(client)).invoke({"log": []}, config, durability="sync", version="v2")
    assert out.interrupts
    resumed = build(TetherSaver(client)).invoke(
        Command(resume="yes"), config, durability="sync", version="v2"
    )
    assert resumed.value["log"] == ["inner:yes"]


def test_async_graphs_use_the_async_client(db_url: str) -> None:
    async def main() -> dict[str, Any]:
        async with tether.connect_async(db_url) as client:
            saver = TetherSaver(client)

            async def a(state: State) -> dict[str, Any]:
                return {"log": ["a"]}

            async def ask(state: State) -> dict[str, Any]:
                return {"answer": interrupt("?"), "log": ["ask"]}

            g = StateGraph(State)
            g.add_node("a", a)
            g.add_node("ask", ask)
            g.add_edge(START, "a")
            g.add_edge("a", "ask")
            g.add_edge("ask", END)
            config = _config()
            graph = g.compile(checkpointer=saver)
            await graph.ainvoke({"log": []}, config, durability="sync")
            again = g.compile(checkpointer=TetherSaver(client))
            result: dict[str, Any] = await again.ainvoke(
                Command(resume="green"), config, durability="sync"
            )
            return result

    assert asyncio.run(main()) == {"log": ["a", "ask"], "answer": "green"}


def test_listing_every_thread_is_refused_with_a_reason(client: Client) -> None:
    with pytest.raises(ValueError, match="one thread at a time"):
        list(TetherSaver(client).list(None))


def test_every_principal_of_a_workspace_shares_the_checkpoints(db_url: str) -> None:
    # an admin in-process writes; an agent's key over HTTP reads and continues
    with tether.connect(db_url) as local, running_server(local.engine) as url:
        key = local.engine.create_key(tether.KeyRole.AGENT, agent="agent://test/elsewhere")
        with tether.connect(url, api_key=key.secret) as remote:
            config = _config()
            _ask_graph(TetherSaver(local)).invoke({"log": []}, config, durability="sync")
            assert _ask_graph(TetherSaver(remote)).get_state(config).next == ("ask",)
            done = _ask_graph(TetherSaver(remote)).invoke(
                Command(resume="teal"), config, durability="sync"
            )
            assert done["answer"] == "teal"
            assert _ask_graph(TetherSaver(local)).get_state(config).values == done
