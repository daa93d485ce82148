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
from tether_langgraph import TetherSaver, _layout

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


def _thread_keys(saver: TetherSaver, thread_id: str) -> list[str]:
    """The thread's keys in the store, as the store lists them."""
    intent_id = saver.store.thread(thread_id).intent_id
    prefix = _layout.thread_prefix(thread_id)
    return [e.key for e in saver.client.list_state(intent_id, prefix=prefix, limit=1000)]


def test_listing_without_a_thread_lists_every_thread_of_the_namespace(client: Client) -> None:
    writer = TetherSaver(client, namespace="shop")
    plain, hashed, gone = str(uuid.uuid4()), "order 42 / ü " + "x" * 100, str(uuid.uuid4())
    for thread_id in (plain, hashed, gone):
        _ask_graph(writer).invoke({"log": []}, _config(thread_id), durability="sync")
    writer.delete_thread(gone)
    _ask_graph(TetherSaver(client, namespace="elsewhere")).invoke({"log": []}, _config())

    reader = TetherSaver(client, namespace="shop")  # nothing cached: as a new process would
    listed = list(reader.list(None))
    by_thread: dict[str, list[str]] = {}
    for item in listed:
        by_thread.setdefault(item.config["configurable"]["thread_id"], []).append(
            item.checkpoint["id"]
        )
    assert set(by_thread) == {plain, hashed}
    for thread_id, ids in by_thread.items():
        assert ids == [c.checkpoint["id"] for c in reader.list(_config(thread_id))]
    assert len(list(reader.list(None, limit=5))) == 5
    inputs = list(reader.list(None, filter={"source": "input"}))
    assert len(inputs) == 2 and {i.metadata["source"] for i in inputs} == {"input"}
    assert list(TetherSaver(client, namespace="empty").list(None)) == []


def test_a_deleted_thread_leaves_only_its_epoch_record(client: Client) -> None:
    saver = TetherSaver(client)
    config = _config()
    big = "x" * 300_000  # stored in parts (blobs)
    _ask_graph(saver).invoke({"log": [], "big": big}, config, durability="sync")
    thread_id = config["configurable"]["thread_id"]
    intent_id = saver.store.thread(thread_id).intent_id
    blobs = saver.client.list_state(intent_id, prefix=f"{_layout.SCHEMA}/b/")
    # checkpoint records and pending-writes records (how many writes records depends on
    # whether a task's writes rode with the next checkpoint, within write_delay)
    before = _thread_keys(saver, thread_id)
    assert [k for k in before if "/c/" in k] and [k for k in before if "/w/" in k] and blobs

    TetherSaver(client).delete_thread(thread_id)
    assert _thread_keys(saver, thread_id) == [_layout.epoch_key(thread_id)]
    # parts are shared by content with other threads: they stay
    assert saver.client.list_state(intent_id, prefix=f"{_layout.SCHEMA}/b/") == blobs
    assert saver.get_tuple(config) is None
    _ask_graph(saver).invoke({"log": []}, config, durability="sync")
    assert saver.get_tuple(config) is not None


def test_a_deletion_cut_short_is_finished_by_deleting_again(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    saver = TetherSaver(client)
    config = _config()
    thread_id = config["configurable"]["thread_id"]
    _ask_graph(saver).invoke({"log": []}, config, durability="sync")
    with monkeypatch.context() as patch:  # the process dies after switching the epoch
        patch.setattr(saver.store, "delete_epoch", lambda *a: (_ for _ in ()).throw(OSError()))
        with pytest.raises(OSError):
            saver.delete_thread(thread_id)
    assert saver.get_tuple(config) is None and len(_thread_keys(saver, thread_id)) > 1
    TetherSaver(client).delete_thread(thread_id)
    assert _thread_keys(saver, thread_id) == [_layout.epoch_key(thread_id)]


def test_pruning_deletes_what_it_does_not_keep(client: Client) -> None:
    saver = TetherSaver(client)
    config = _config()
    thread_id = config["configurable"]["thread_id"]
    graph = _ask_graph(saver)
    graph.invoke({"log": []}, config, durability="sync")
    before = graph.get_state(config)
    saver.prune([thread_id])
    keys = _thread_keys(saver, thread_id)
    epoch = TetherSaver(client).store.read(thread_id, lambda thread: thread.epoch)
    assert epoch is not None and epoch != "0"
    assert all(k == _layout.epoch_key(thread_id) or f"/{epoch}/" in k for k in keys)
    assert len([k for k in keys if "/c/" in k]) == 1  # the latest checkpoint, alone
    after = _ask_graph(TetherSaver(client)).get_state(config)
    assert (after.values, after.next, after.interrupts) == (
        before.values,
        before.next,
        before.interrupts,
    )
    done = _ask_graph(TetherSaver(client)).invoke(Command(resume="red"), config, durability="sync")
    assert done == {"log": ["a", "ask", "c"], "answer": "red"}


def test_a_read_racing_with_a_prune_sees_the_thread_whole(client: Client) -> None:
    config = _config()
    thread_id = config["configurable"]["thread_id"]
    _ask_graph(TetherSaver(client)).invoke({"log": []}, config, durability="sync")
    expected = TetherSaver(client).get_tuple(config)
    assert expected is not None and expected.pending_writes
    pruner, reader = TetherSaver(client), TetherSaver(client)
    pruned: list[bool] = []

    class Racing:
        """The reader's client: the thread is pruned (its records deleted) under the
        reader right after the reader's first read of a checkpoint record."""

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        def get_state(self, intent_id: str, key: str = "default") -> Any:
            found = client.get_state(intent_id, key)
            if "/c/" in key and not pruned:
                pruned.append(True)
                pruner.prune([thread_id])
            return found

    reader.store.client = Racing()  # type: ignore[assignment]
    seen = reader.get_tuple(config)
    assert pruned and seen is not None
    assert seen.checkpoint["id"] == expected.checkpoint["id"]
    assert seen.checkpoint["channel_values"] == expected.checkpoint["channel_values"]
    assert seen.pending_writes == expected.pending_writes


def test_deleting_the_checkpoints_of_runs_keeps_the_others_whole(client: Client) -> None:
    saver = TetherSaver(client)
    config = _config()
    thread_id = config["configurable"]["thread_id"]
    graph = _ask_graph(saver)

    def run(run_id: str, inputs: Any, thread: RunnableConfig = config) -> None:
        graph.invoke(inputs, {**thread, "metadata": {"run_id": run_id}}, durability="sync")

    run("first", {"log": []})
    run("second", Command(resume="red"))
    other = _config()
    run("first", {"log": []}, other)

    def history(of: RunnableConfig) -> list[tuple[Any, Any, Any]]:
        states = _ask_graph(TetherSaver(client)).get_state_history(of)
        return [(h.values, h.next, h.metadata["run_id"]) for h in states]  # type: ignore[index]

    before = history(config)
    assert {h[2] for h in before} == {"first", "second"}
    TetherSaver(client).delete_for_runs(["first", "nobody's"])
    kept = [h for h in before if h[2] == "second"]
    assert history(config) == kept  # values the deleted checkpoints held are still there
    assert history(other) == []
    assert all("/0/" not in k for k in _thread_keys(saver, thread_id))  # the old epoch is gone
    TetherSaver(client).delete_for_runs([])  # nothing to do


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
