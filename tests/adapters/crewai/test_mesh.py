"""The mesh at a crew's boundaries: a tool outside the agent's scope is refused and the model
is told, a kill or pause stops the run at its next task, tool call or model turn (held, not
failed) and it goes on after a resume without repeating what it did, and every model turn
is reported as spend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tether
from crewai.hooks import before_tool_call
from tether import AgentPolicy, Client, Status, ToolPolicy
from tether_crewai import DurableCrew

from ._apps import AGENT, build_crew, lines
from .conftest import agent_events


def _crew(workdir: Path, built: list[Any]) -> Any:
    crew = build_crew(workdir, "none")
    built.append(crew)
    return crew


def test_a_tool_outside_the_scope_is_refused_and_the_model_is_told(
    client: Client, tmp_path: Path
) -> None:
    client.set_policy(AGENT, AgentPolicy(tools=ToolPolicy(deny=["publish"])))
    built: list[Any] = []
    run = DurableCrew(lambda: _crew(tmp_path, built), client, agent=AGENT).run({"topic": "t"})
    assert run.completed
    assert "publish:Durable agents" not in lines(tmp_path / "effects.log")
    assert [d["tool"] for d in run.output["tool_denials"]] == ["publish"]
    assert "tool.denied" in agent_events(client, run.intent_id)
    llm = built[-1].agents[2].llm
    told = [text for text in llm.calls if "PUBLISH" in text][-1]
    assert "The tool 'publish' was not run" in told and "tool scope" in told


def test_a_denied_tool_can_fail_the_run_instead(client: Client, tmp_path: Path) -> None:
    client.set_policy(AGENT, AgentPolicy(tools=ToolPolicy(allow=["search", "fact_check"])))
    durable = DurableCrew(
        lambda: build_crew(tmp_path, "none"), client, agent=AGENT, on_tool_denied="fail"
    )
    with pytest.raises(tether.ToolDenied):
        durable.run({"topic": "t"}, key="k")
    failed = client.get_intent(durable.run({"topic": "t"}, key="k").intent_id)
    assert failed.status is Status.FAILED and "publish" in (failed.error.message or "")  # type: ignore[union-attr]


@pytest.mark.parametrize("stop", ["kill", "pause"])
def test_a_stopped_agent_stops_at_the_next_task_and_goes_on_after_a_resume(
    client: Client, tmp_path: Path, stop: str
) -> None:
    resumed: list[bool] = []

    def build() -> Any:
        crew = build_crew(tmp_path, "none")
        if not resumed:  # an admin stops the agent while its first task ends
            crew.tasks[0].callback = lambda _: getattr(client, f"{stop}_agent")(AGENT)
        return crew

    durable = DurableCrew(build, client, agent=AGENT)
    run = durable.run({"topic": "t"})
    held = client.get_intent(run.intent_id)
    assert held.status is Status.IN_PROGRESS and held.lease is None  # held, not failed
    assert "intent.held" in agent_events(client, run.intent_id)
    assert "WRITE" not in lines(tmp_path / "calls.log")
    assert client.claim(AGENT) is None  # nothing is claimed while the agent is stopped

    resumed.append(True)
    client.resume_agent(AGENT)
    assert durable.worker(poll_seconds=0.01).run_once()
    assert client.get_intent(run.intent_id).status is Status.COMPLETED
    assert lines(tmp_path / "calls.log").count("RESEARCH") == 3  # not run again
    assert lines(tmp_path / "effects.log").count("search:durable agents") == 1


def test_a_pause_stops_the_run_at_its_next_tool_call(client: Client, tmp_path: Path) -> None:
    paused: list[bool] = []

    @before_tool_call
    def pause_before_fact_check(ctx: Any) -> None:
        if ctx.tool_name == "fact_check" and not paused:
            paused.append(True)
            client.pause_agent(AGENT, reason="deploying")

    durable = DurableCrew(lambda: build_crew(tmp_path, "none"), client, agent=AGENT)
    run = durable.run({"topic": "t"})
    assert client.get_intent(run.intent_id).status is Status.IN_PROGRESS
    assert lines(tmp_path / "effects.log") == ["search:durable agents"]  # not fact_check
    client.resume_agent(AGENT)
    assert durable.resume(run.intent_id).completed
    # search was journaled: the resumed task got its result without running it again
    assert lines(tmp_path / "effects.log") == [
        "search:durable agents",
        "fact_check:agents crash",
        "publish:Durable agents",
    ]


def test_each_model_turn_is_reported_as_spend(client: Client, tmp_path: Path) -> None:
    durable = DurableCrew(
        lambda: build_crew(tmp_path, "none"), client, agent=AGENT,
        price=lambda model, tokens_in, tokens_out: (tokens_in + 4 * tokens_out) / 1e6,
    )  # fmt: skip
    run = durable.run({"topic": "t"})
    usage = client.intent_usage(run.intent_id)
    assert usage.turns == len(lines(tmp_path / "calls.log")) == 6
    assert usage.tokens_in > 0 and usage.tokens_out > 0
    assert usage.cost_usd == pytest.approx((usage.tokens_in + 4 * usage.tokens_out) / 1e6)
    assert agent_events(client, run.intent_id).count("model.usage") == 6


def test_a_spend_cap_holds_the_run_for_a_person(client: Client, tmp_path: Path) -> None:
    client.set_policy(AGENT, AgentPolicy(cost=tether.CostPolicy(
        max_cost_per_day_usd=0.0001, action_on_breach="require_approval")))  # fmt: skip
    durable = DurableCrew(
        lambda: build_crew(tmp_path, "none"), client, agent=AGENT,
        price=lambda model, tokens_in, tokens_out: 0.001,
    )  # fmt: skip
    run = durable.run({"topic": "t"})
    assert run.waiting  # the turn that crossed the cap opened a person's task
    assert lines(tmp_path / "calls.log") == ["RESEARCH"]
