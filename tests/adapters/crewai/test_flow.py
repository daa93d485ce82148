"""A flow through DurableFlow: a decorated method pauses through HumanFeedbackPending under
@persist with its state in tether, and is resumed by Flow.from_pending(...).resume(...) with
the decision as JSON, once per pause."""

from __future__ import annotations

from pathlib import Path

import pytest
import tether
from tether import Client, FrozenClock, Status
from tether_crewai import Decision, DurableFlow, TetherFlowPersistence

from ._apps import FLOW_AGENT, build_flow, lines


def _durable(client: Client, workdir: Path) -> DurableFlow:
    return DurableFlow(build_flow(workdir), client, agent=FLOW_AGENT)


def test_a_flow_pauses_for_a_person_and_resumes_with_the_decision(
    client: Client, editor: Client, tmp_path: Path
) -> None:
    run = _durable(client, tmp_path).run({"topic": "durable agents"}, key="post-1")
    assert run.waiting and run.wait is not None and run.wait.human_task is not None
    assert run.wait.human_task.title == "Publish this post?"
    assert "a post about durable agents" in (run.wait.human_task.description or "")
    record = client.get_state(run.intent_id, "crewai.flow")
    assert record is not None and record.data["pending"]["context"]["method_name"] == "review"
    assert record.data["state"]["draft"] == "a post about durable agents"

    editor.approve(run.intent_id, comment="good")
    resumed = _durable(client, tmp_path)  # a new flow class, as in a new process
    assert resumed.worker(poll_seconds=0.01).run_once()
    done = client.get_intent(run.intent_id)
    assert done.status is Status.COMPLETED
    assert done.result["output"] == "published: a post about durable agents (good)"
    assert done.result["state"]["outcome"] == "approved"
    # the method bodies before the pause ran once; the pause was resumed once
    assert lines(tmp_path / "effects.log") == [
        "write",
        "review",
        "publish:a post about durable agents",
    ]
    with pytest.raises(ValueError, match="No pending feedback"):
        resumed.flow.from_pending(run.intent_id, TetherFlowPersistence(client=client))
    assert client.get_state(run.intent_id, "crewai.flow").data["resuming"] is None  # type: ignore[union-attr]


def test_a_rejection_and_a_timeout_take_different_paths(
    client: Client, editor: Client, clock: FrozenClock, tmp_path: Path
) -> None:
    durable = _durable(client, tmp_path)
    rejected = durable.run({"topic": "a"})
    timed_out = durable.run({"topic": "b"})
    editor.reject(rejected.intent_id, comment="off topic")
    clock.advance(3601)
    client.fire_due_timers()
    assert durable.resume(rejected.intent_id).output["output"] == "shelved: off topic"
    late = durable.resume(timed_out.intent_id)
    assert late.output["output"] == "nobody answered"
    assert late.output["state"]["outcome"] == tether.TIMEOUT
    assert sorted(lines(tmp_path / "effects.log")) == sorted(
        ["write", "review", "write", "review", "shelve", "give_up"]
    )


def test_the_decision_travels_as_json() -> None:
    decision = Decision("approved", "ok", {"channel": "blog"}, "human:alice")
    assert Decision.from_json(decision.to_json()) == decision
    assert Decision.from_feedback(decision.to_json()).approved
    with pytest.raises(ValueError):
        Decision.from_json('{"no": "outcome"}')


def test_the_flow_id_is_the_intent_id(client: Client, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="intent id"):
        _durable(client, tmp_path).run({"id": "mine"})


def test_a_router_that_waits_is_refused(client: Client) -> None:
    """crewai resumes a paused flow method by its own name's listeners, never by the route
    it returned: the routed branch would be skipped and the run end as if it had run."""
    from crewai.flow import Flow, listen, persist, router, start
    from tether_crewai import wait_for_human

    @persist(TetherFlowPersistence())
    class Routed(Flow[dict]):  # type: ignore[type-arg]
        @start()
        def write(self) -> str:
            return "draft"

        @router(write)
        @wait_for_human("Ship it?")
        def route(self) -> str:
            return "ship"

        @listen("ship")
        def publish(self) -> str:
            return "published"

    with pytest.raises(TypeError, match="router"):
        DurableFlow(Routed, client, agent=FLOW_AGENT)
