"""A crew through DurableCrew, in-process and over HTTP: gated tasks suspend and resume with
the person's decision, finished tasks are neither run again nor cost a model call, and a
rejection, a timeout and a review each end as their own outcome."""

from __future__ import annotations

from pathlib import Path

import pytest
import tether
from tether import Client, FrozenClock, Status
from tether_crewai import DurableCrew, decision_of

from ._apps import AGENT, build_crew, lines


def _durable(client: Client, workdir: Path, gate: str = "approval", **options: object):
    return DurableCrew(lambda: build_crew(workdir, gate, **options), client, agent=AGENT)


def test_an_approval_suspends_the_crew_and_the_task_gets_the_decision(
    client: Client, editor: Client, tmp_path: Path
) -> None:
    first = _durable(client, tmp_path)
    run = first.run({"topic": "durable agents"}, key="post-1")
    assert run.waiting and run.wait is not None
    assert run.wait.human_task is not None and run.wait.human_task.title == "Publish this post?"
    assert lines(tmp_path / "effects.log") == ["search:durable agents", "fact_check:agents crash"]
    assert lines(tmp_path / "calls.log") == ["RESEARCH"] * 3 + ["WRITE"]
    assert client.get_step(run.intent_id, "crew/task/1/output") is not None

    editor.approve(run.intent_id, comment="ship it")
    second = _durable(client, tmp_path)  # as a new process would: a new crew, a new runner
    assert second.worker(poll_seconds=0.01).run_once()
    done = client.get_intent(run.intent_id)
    assert done.status is Status.COMPLETED
    # the research and write tasks were not run again, and no model was called for them
    assert lines(tmp_path / "calls.log") == ["RESEARCH"] * 3 + ["WRITE"] + ["PUBLISH"] * 2
    assert lines(tmp_path / "effects.log") == [
        "search:durable agents",
        "fact_check:agents crash",
        "publish:Durable agents",
    ]
    assert done.result["raw"].startswith("published. A person decided on this task before it ran")
    assert "approved by human:editor@example.com; their comment: ship it" in done.result["raw"]
    assert [t["raw"] for t in done.result["tasks"]][:2] == [
        "notes: agents crash, and tether resumes them",
        "draft v1",
    ]
    assert done.result["decisions"]["crew/task/2/approval"]["outcome"] == "approved"
    # and a repeat of the submission reports the run instead of running it again
    assert first.run({"topic": "durable agents"}, key="post-1").completed
    assert client.verify_audit(run.intent_id).ok


def test_the_decision_reaches_the_tasks_code(
    client: Client, editor: Client, tmp_path: Path
) -> None:
    seen: list[object] = []

    def build():
        crew = build_crew(tmp_path)
        crew.tasks[2].callback = lambda output: seen.append(decision_of(crew.tasks[2]))
        return crew

    durable = DurableCrew(build, client, agent=AGENT)
    run = durable.run({"topic": "t"})
    editor.approve(run.intent_id, comment="fine", channel="blog")
    assert durable.resume(run.intent_id).completed
    [decision] = seen
    assert decision.approved and decision.comment == "fine"  # type: ignore[attr-defined]
    assert decision.data == {"channel": "blog"}  # type: ignore[attr-defined]


def test_a_rejection_stops_the_crew_before_the_task(
    client: Client, editor: Client, tmp_path: Path
) -> None:
    durable = _durable(client, tmp_path)
    run = durable.run({"topic": "durable agents"})
    editor.reject(run.intent_id, comment="not this week")
    result = durable.resume(run.intent_id)
    assert result.completed and result.output["status"] == "stopped"
    assert result.output["stopped_at"] == {"index": 2, "name": "publish"}
    assert result.output["decision"]["outcome"] == "rejected"
    assert result.output["decision"]["comment"] == "not this week"
    assert [t["raw"] for t in result.output["tasks"]] == [
        "notes: agents crash, and tether resumes them",
        "draft v1",
    ]
    assert "PUBLISH" not in lines(tmp_path / "calls.log")
    assert not any(e.startswith("publish") for e in lines(tmp_path / "effects.log"))


def test_a_timeout_is_not_a_rejection(client: Client, clock: FrozenClock, tmp_path: Path) -> None:
    durable = _durable(client, tmp_path, timeout=3600, on_reject="stop", on_timeout="skip")
    run = durable.run({"topic": "durable agents"})
    clock.advance(3601)
    client.fire_due_timers()
    result = durable.resume(run.intent_id)
    assert result.completed and result.output["status"] == "completed"
    assert result.output["decisions"]["crew/task/2/approval"]["outcome"] == tether.TIMEOUT
    # skipped: the publish task did not run; its output says why
    assert result.output["raw"].startswith("This task was not done: nobody answered")
    assert "PUBLISH" not in lines(tmp_path / "calls.log")


def test_a_timeout_can_fail_the_run(client: Client, clock: FrozenClock, tmp_path: Path) -> None:
    durable = _durable(client, tmp_path, timeout=60, on_timeout="fail")
    run = durable.run({"topic": "durable agents"})
    clock.advance(61)
    client.fire_due_timers()
    assert client.get_intent(run.intent_id).status is Status.FAILED


def test_a_review_sends_the_output_back_until_it_is_accepted(
    client: Client, editor: Client, tmp_path: Path
) -> None:
    durable = _durable(client, tmp_path, "review")
    run = durable.run({"topic": "durable agents"})
    assert run.waiting and run.wait is not None and run.wait.human_task is not None
    assert "draft v1" in (run.wait.human_task.description or "")
    assert run.wait.key == "crew/task/1/review/1"
    editor.reject(run.intent_id, comment="make it shorter")
    again = durable.resume(run.intent_id)
    assert again.waiting and again.wait is not None and again.wait.key == "crew/task/1/review/2"
    assert "draft v2 (shorter)" in (again.wait.human_task.description or "")  # type: ignore[union-attr]
    editor.approve(run.intent_id)
    done = durable.resume(run.intent_id)
    assert done.completed
    assert [t["raw"] for t in done.output["tasks"]][1] == "draft v2 (shorter)"
    assert lines(tmp_path / "calls.log").count("RESEARCH") == 3  # research ran once
    assert lines(tmp_path / "calls.log").count("WRITE") == 2  # the first draft and the revision
    assert lines(tmp_path / "effects.log").count("publish:Durable agents") == 1


def test_a_review_stops_after_its_last_round(
    client: Client, editor: Client, tmp_path: Path
) -> None:
    durable = _durable(client, tmp_path, "review", max_rounds=1)
    run = durable.run({"topic": "durable agents"})
    editor.reject(run.intent_id, comment="no")
    result = durable.resume(run.intent_id)
    assert result.completed and result.output["status"] == "stopped"
    assert result.output["stopped_at"]["name"] == "write"


def test_gated_tasks_must_be_crewai_tasks() -> None:
    from tether_crewai import requires_approval

    with pytest.raises(TypeError):
        requires_approval("publish")  # type: ignore[arg-type]


def test_an_empty_tool_result_is_replayed_as_the_empty_result_it_was(client: Client) -> None:
    """A tool that returns "" (a payment that prints nothing) is journaled. Replayed after
    a pause, the model gets "" again, not crewai's 'blocked by hook' message, which would
    lead it to call the tool a second time."""
    from crewai import Agent, Crew, Task
    from crewai.hooks import before_tool_call
    from crewai.tools import BaseTool
    from tether_crewai.testing import ScriptedLLM, final_answer, tool_call

    ran: list[str] = []
    seen: list[str] = []

    class Charge(BaseTool):
        name: str = "charge"
        description: str = "Charge a card; prints nothing."

        def _run(self, amount: str) -> str:
            ran.append(f"charge {amount}")
            return ""

    class Notify(Charge):
        name: str = "notify"
        description: str = "Tell someone."

        def _run(self, who: str) -> str:  # type: ignore[override]
            ran.append(f"notify {who}")
            return "sent"

    def second(text: str) -> str:
        last = text.rsplit("Observation:", 1)[-1][:80].strip()
        seen.append(last)
        if "blocked by hook" in last:  # as a model told its call did not run: again
            return tool_call("charge", '{"amount": "5"}')
        return tool_call("notify", '{"who": "ops"}')

    def build() -> Crew:
        llm = ScriptedLLM(
            replies={"PAY": [tool_call("charge", '{"amount": "5"}'), second, final_answer("paid")]}
        )
        payer = Agent(role="payer", goal="g", backstory="b", llm=llm, tools=[Charge(), Notify()],
                      max_iter=5)  # fmt: skip
        return Crew(agents=[payer],
                    tasks=[Task(description="PAY the bill", expected_output="x", agent=payer)])  # fmt: skip

    paused: list[int] = []

    @before_tool_call
    def pause_before_notify(ctx: object) -> None:
        if getattr(ctx, "tool_name", "") == "notify" and not paused:
            paused.append(1)
            client.pause_agent(AGENT, reason="deploy")

    durable = DurableCrew(build, client, agent=AGENT)
    run = durable.run({})
    assert client.get_intent(run.intent_id).status is Status.IN_PROGRESS  # held by the pause
    assert ran == ["charge 5"]
    client.resume_agent(AGENT)
    seen.clear()
    done = durable.resume(run.intent_id)
    assert done.status is Status.COMPLETED
    assert ran == ["charge 5", "notify ops"]  # charge once in all
    assert seen and "blocked by hook" not in seen[0]


def test_a_skipped_conditional_task_does_not_make_later_tasks_run_again(
    client: Client, editor: Client
) -> None:
    """crewai skips a ConditionalTask without its hooks; its skipped output is recorded when
    the next task starts, so a resume restores every finished task after it too."""
    from crewai import Agent, Crew, Task
    from crewai.tasks.conditional_task import ConditionalTask
    from tether_crewai import requires_approval
    from tether_crewai.testing import ScriptedLLM, final_answer

    ran: list[str] = []

    def build() -> Crew:
        def reply(name: str) -> object:
            def answer(text: str) -> str:
                ran.append(f"model {name}")
                return final_answer("ok")

            return answer

        llm = ScriptedLLM(replies={n: [reply(n)] for n in ("FIRST", "COND", "THIRD", "LAST")})
        a = Agent(role="worker", goal="g", backstory="b", llm=llm, max_iter=3)
        return Crew(agents=[a], tasks=[
            Task(description="FIRST", expected_output="x", agent=a),
            ConditionalTask(description="COND", expected_output="x", agent=a,
                            condition=lambda out: False),
            Task(description="THIRD", expected_output="x", agent=a,
                 callback=lambda out: ran.append("callback THIRD")),
            requires_approval(Task(description="LAST", expected_output="x", agent=a)),
        ])  # fmt: skip

    durable = DurableCrew(build, client, agent=AGENT)
    run = durable.run({})
    assert run.status is Status.WAITING
    assert ran == ["model FIRST", "model THIRD", "callback THIRD"]
    editor.approve(run.intent_id)
    ran.clear()
    done = DurableCrew(build, client, agent=AGENT).resume(run.intent_id)
    assert done.status is Status.COMPLETED
    assert ran == ["model LAST"]  # FIRST and THIRD restored, COND still skipped
