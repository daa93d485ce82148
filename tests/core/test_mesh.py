"""The mesh: per-agent kill switch, pause, spend caps, tool scope, limits and send policy,
each the same in-process on SQLite, over HTTP, and on PostgreSQL."""

from __future__ import annotations

import threading

import pytest
import tether
from tether import (
    AgentKilled,
    AgentPaused,
    AgentPolicy,
    AgentStatus,
    ApprovalPending,
    Client,
    CostPolicy,
    FrozenClock,
    Health,
    LimitPolicy,
    Principal,
    RateLimited,
    SenderNotAllowed,
    SendPolicy,
    StaleGeneration,
    Status,
    ToolDenied,
    ToolPolicy,
)

from .conftest import AGENT, new_intent, outsider, person

FRONT_DESK = "agent://test/frontdesk"


def started(client: Client) -> tuple[tether.Intent, tether.Lease]:
    intent = new_intent(client)
    return intent, client.start(intent.intent_id)


def event_types(client: Client, intent_id: str) -> list[str]:
    return [e.event_type for e in client.list_events(intent_id)]


def test_an_agent_exists_once_used_with_status_health_and_spend(
    client: Client, clock: FrozenClock
) -> None:
    new_intent(client)
    agent = client.get_agent(AGENT)
    assert (agent.status, agent.health, agent.generation) == (AgentStatus.ACTIVE, Health.UNKNOWN, 0)
    assert agent.spend.day.cost_usd == 0
    beat = client.agent_heartbeat(AGENT, {"intents_total": 3, "bogus": "dropped"})
    assert beat.health is Health.ACTIVE and beat.metrics == {"intents_total": 3}
    assert [a.address for a in client.list_agents(health=Health.ACTIVE)] == [AGENT]
    clock.advance(91)
    assert client.get_agent(AGENT).health is Health.STALE
    assert [a.address for a in client.list_agents(health=Health.STALE)] == [AGENT]
    client.agent_heartbeat(AGENT)
    health_events = client.mesh_events(agent=AGENT, event_type="agent.health")
    assert [e.details["from"] for e in health_events] == ["unknown", "stale"]
    with pytest.raises(tether.NotFound):
        client.get_agent("agent://test/nobody")


def test_a_killed_agent_gets_and_sends_no_new_intents_until_resumed(client: Client) -> None:
    killed = client.kill_agent(AGENT, reason="runaway loop")
    assert killed.status is AgentStatus.KILLED and killed.status_reason == "runaway loop"
    with pytest.raises(AgentKilled) as refused:
        new_intent(client)
    assert refused.value.status == 403 and refused.value.code == "agent_killed"
    sender = client.as_actor(Principal.agent(AGENT))
    with pytest.raises(AgentKilled):
        sender.create_intent("refund.request.v1", FRONT_DESK, {})
    assert client.list_intents().items == []
    refusals = client.mesh_events(agent=AGENT, event_type="intent.refused")
    assert [e.details["code"] for e in refusals] == ["agent_killed", "agent_killed"]
    client.resume_agent(AGENT)
    assert new_intent(client).status is Status.SUBMITTED
    assert sender.create_intent("refund.request.v1", FRONT_DESK, {}).from_agent == AGENT


def test_a_running_intent_stops_at_its_next_boundary_held_not_failed(client: Client) -> None:
    intent, lease = started(client)
    client.check(intent.intent_id, lease=lease)  # active: the work goes on
    client.kill_agent(AGENT)
    for _ in range(2):
        with pytest.raises(AgentKilled):
            client.check(intent.intent_id, lease=lease)
    held = client.get_intent(intent.intent_id)
    assert held.status is Status.IN_PROGRESS and held.lease is None
    assert event_types(client, intent.intent_id).count("intent.held") == 1
    assert client.claim(AGENT) is None
    with pytest.raises(AgentKilled):
        client.claim_intent(intent.intent_id)
    client.resume_agent(AGENT)
    claim = client.claim(AGENT)
    assert claim is not None and claim.intent.intent_id == intent.intent_id
    assert claim.intent.status is Status.IN_PROGRESS  # taken up where it was held
    client.complete(intent.intent_id, {"ok": True}, lease=claim.lease)


def test_pause_holds_work_without_failing_it_and_resume_releases_it(client: Client) -> None:
    running, lease = started(client)
    client.pause_agent(AGENT, reason="maintenance")
    queued = new_intent(client)  # a paused agent's inbox still fills up
    assert queued.status is Status.SUBMITTED
    with pytest.raises(AgentPaused) as stopped:
        client.check(running.intent_id, lease=lease)
    assert stopped.value.code == "agent_paused"
    assert client.claim(AGENT) is None
    with pytest.raises(AgentPaused):
        client.as_actor(Principal.agent(AGENT)).create_intent("refund.request.v1", FRONT_DESK, {})
    client.resume_agent(AGENT)
    claimed = {c.intent.intent_id for c in (client.claim(AGENT), client.claim(AGENT)) if c}
    assert claimed == {running.intent_id, queued.intent_id}
    assert {i.status for i in client.list_intents().items} == {Status.IN_PROGRESS, Status.DELIVERED}


def test_tool_scope_with_wildcards_and_each_denial_on_the_trail(client: Client) -> None:
    client.set_policy(
        AGENT, AgentPolicy(tools=ToolPolicy(allow=["search_*", "refund"], deny=["search_internal"]))
    )
    intent, lease = started(client)
    client.authorize_tool(intent.intent_id, "search_web", lease=lease)
    client.authorize_tool(intent.intent_id, "refund", lease=lease)
    for tool in ("search_internal", "delete_account"):
        with pytest.raises(ToolDenied) as denied:
            client.authorize_tool(intent.intent_id, tool, lease=lease)
        assert denied.value.code == "tool_not_allowed" and denied.value.details["tool"] == tool
    denials = [e for e in client.list_events(intent.intent_id) if e.event_type == "tool.denied"]
    assert [e.details["tool"] for e in denials] == ["search_internal", "delete_account"]
    assert client.get_intent(intent.intent_id).status is Status.IN_PROGRESS  # it can go on
    assert client.verify_audit(intent.intent_id).ok


def test_usage_per_model_turn_adds_up_per_intent_and_per_agent_hour_and_day(
    client: Client, clock: FrozenClock
) -> None:
    first, lease = started(client)
    client.report_usage(first.intent_id, model="m-1", tokens_in=100, tokens_out=20,
                        cost_usd=0.25, lease=lease)  # fmt: skip
    report = client.report_usage(first.intent_id, model="m-1", tokens_in=50, tokens_out=10,
                                 cost_usd=0.5, lease=lease)  # fmt: skip
    assert (report.intent.cost_usd, report.intent.tokens_in, report.intent.turns) == (0.75, 150, 2)
    usage = [e for e in client.list_events(first.intent_id) if e.event_type == "model.usage"]
    assert [e.details["cost_usd"] for e in usage] == [0.25, 0.5]
    clock.advance(3600)  # the next hour, the same day
    second, lease2 = started(client)
    client.report_usage(second.intent_id, tokens_in=1, tokens_out=1, cost_usd=1.0, lease=lease2)
    spend = client.get_agent(AGENT).spend
    assert (spend.hour.cost_usd, spend.day.cost_usd, spend.day.turns) == (1.0, 1.75, 3)
    assert client.intent_usage(first.intent_id).cost_usd == 0.75
    clock.advance(86400)
    assert client.get_agent(AGENT).spend.day.cost_usd == 0
    with pytest.raises(tether.InvalidRequest):
        client.report_usage(second.intent_id, cost_usd=-1, lease=lease2)


def test_a_block_cap_refuses_new_work_with_429_until_the_window_ends(
    client: Client, clock: FrozenClock
) -> None:
    client.set_policy(AGENT, AgentPolicy(cost=CostPolicy(max_cost_per_day_usd=1.0)))
    intent, lease = started(client)
    client.report_usage(intent.intent_id, cost_usd=1.2, lease=lease)  # the running one goes on
    client.check(intent.intent_id, lease=lease)
    with pytest.raises(RateLimited) as refused:
        new_intent(client)
    assert refused.value.code == "spend_cap_exceeded"
    assert refused.value.retry_after == 86400  # the UTC day ends then (the clock is at 00:00)
    clock.advance(86400)
    assert new_intent(client).status is Status.SUBMITTED


def test_require_approval_opens_a_human_task_and_work_goes_on_only_if_approved(
    client: Client,
) -> None:
    policy = CostPolicy(max_cost_per_hour_usd=1.0, action_on_breach="require_approval",
                        approver_groups=["finance"])  # fmt: skip
    client.set_policy(AGENT, AgentPolicy(cost=policy))
    approved, lease = started(client)
    client.report_usage(approved.intent_id, cost_usd=0.6, lease=lease)
    with pytest.raises(ApprovalPending):
        client.report_usage(approved.intent_id, cost_usd=0.6, lease=lease)
    waiting = client.get_intent(approved.intent_id)
    assert waiting.status is Status.WAITING and waiting.human_task is not None
    assert waiting.human_task.groups == ["finance"]
    with pytest.raises(ApprovalPending):
        client.check(approved.intent_id)
    assert new_intent(client).status is Status.SUBMITTED  # new work is not blocked
    person(client, "bob", "finance").approve(approved.intent_id, comment="worth it")
    claim = client.claim_intent(approved.intent_id)
    client.check(approved.intent_id, lease=claim.lease)
    again = client.report_usage(approved.intent_id, cost_usd=0.1, lease=claim.lease)
    assert again.approval_wait_id is None  # approved for the rest of this hour
    client.complete(approved.intent_id, {"done": True}, lease=claim.lease)

    rejected, lease = started(client)
    with pytest.raises(ApprovalPending):
        client.report_usage(rejected.intent_id, cost_usd=0.01, lease=lease)
    person(client, "bob", "finance").reject(rejected.intent_id, comment="too expensive")
    failed = client.get_intent(rejected.intent_id)
    assert failed.status is Status.FAILED and failed.error is not None
    assert failed.error.code == "spend_cap_exceeded"
    assert failed.error.details == {"comment": "too expensive"}


def test_intent_limits_per_hour_and_day(client: Client, clock: FrozenClock) -> None:
    client.set_policy(AGENT, AgentPolicy(limits=LimitPolicy(max_intents_per_hour=2,
                                                            max_intents_per_day=3)))  # fmt: skip
    new_intent(client)
    new_intent(client)
    with pytest.raises(RateLimited) as refused:
        new_intent(client)
    assert refused.value.code == "intent_limit_exceeded" and refused.value.retry_after == 3600
    clock.advance(3600)
    new_intent(client)
    with pytest.raises(RateLimited) as daily:
        new_intent(client)
    assert daily.value.details["window"] == "day"


def test_send_policy_allowlist_and_denylist(client: Client) -> None:
    front = client.as_actor(Principal.agent(FRONT_DESK))
    other = client.as_actor(Principal.agent("agent://test/stranger"))
    client.set_policy(AGENT, AgentPolicy(send=SendPolicy(mode="allowlist",
                                                         senders=["agent://test/front*"])))  # fmt: skip
    assert front.create_intent("refund.request.v1", AGENT, {}).from_agent == FRONT_DESK
    for sender in (other, client):  # an admin is matched by its actor name, not let through
        with pytest.raises(SenderNotAllowed) as refused:
            sender.create_intent("refund.request.v1", AGENT, {})
        assert refused.value.code == "sender_not_allowed"
    client.set_policy(AGENT, AgentPolicy(send=SendPolicy(mode="denylist", senders=["*stranger"])))
    with pytest.raises(SenderNotAllowed):
        other.create_intent("refund.request.v1", AGENT, {})
    assert front.create_intent("refund.request.v1", AGENT, {}).to_agent == AGENT
    assert client.create_intent("refund.request.v1", AGENT, {}).to_agent == AGENT


def test_every_change_is_a_new_generation_with_compare_and_set_and_an_audit_entry(
    client: Client,
) -> None:
    client.register_agent(AGENT)
    one = client.set_policy(AGENT, AgentPolicy(tools=ToolPolicy(deny=["rm"])), generation=0)
    assert one.generation == 1 and one.policy.tools.deny == ["rm"]
    with pytest.raises(StaleGeneration) as stale:
        client.set_policy(AGENT, AgentPolicy(), generation=0)
    assert stale.value.status == 409 and stale.value.details["generation"] == 1
    with pytest.raises(StaleGeneration):
        client.pause_agent(AGENT, generation=0)
    assert client.pause_agent(AGENT, generation=1).generation == 2
    assert client.pause_agent(AGENT).generation == 2  # no change, no new generation
    assert client.get_agent(AGENT).policy.tools.deny == ["rm"]
    log = client.mesh_events(agent=AGENT)
    assert [e.event_type for e in log] == ["agent.policy_updated", "agent.paused"]
    update = log[0]
    assert update.details["old_generation"] == 0 and update.details["generation"] == 1
    assert update.details["changed"] == ["tools"] and update.actor.startswith("admin:")
    assert client.mesh_events(agent=AGENT, after=log[0].event_id) == log[1:]


def test_a_guard_answers_a_boundary_right_after_a_change_made_here(client: Client) -> None:
    """A boundary asks the guard first: a pause or scope change made through this process is
    seen by the very next boundary, not once the watcher catches up."""
    guard = client.guard(AGENT)
    assert guard.allows() and guard.allows("search")
    for _ in range(3):
        client.pause_agent(AGENT, reason="deploying")
        assert not guard.allows()  # at once, every time
        client.resume_agent(AGENT)
        assert guard.allows()
    client.set_policy(AGENT, AgentPolicy(tools=ToolPolicy(allow=["lookup.*"])))
    assert not guard.allows("search") and guard.allows("lookup.order")


def test_a_guard_learns_of_a_kill_without_asking(client: Client) -> None:
    guard = client.guard(AGENT)
    assert not guard.stopped
    seen = threading.Event()
    guard.on_change(lambda agent: seen.set() if agent.status is AgentStatus.KILLED else None)
    client.kill_agent(AGENT)
    assert seen.wait(30)
    assert guard.stopped and guard.status is AgentStatus.KILLED
    with pytest.raises(AgentKilled):
        guard.raise_if_stopped()
    client.resume_agent(AGENT)
    assert guard.wait_until_active(30)
    watched = client.watch_agent(AGENT, after_generation=guard.agent.generation, timeout=0.1)
    assert watched.generation == guard.agent.generation  # nothing new: it times out as is


def test_a_worker_handler_meets_the_policy_at_its_steps_tools_and_model_turns(
    db_url: str,
) -> None:
    with tether.connect(db_url) as client:
        client.set_policy(AGENT, AgentPolicy(tools=ToolPolicy(deny=["delete_*"])))
        worker = tether.Worker(client, agent=AGENT, poll_seconds=1.0)
        calls: list[str] = []

        @worker.handler("refund.request.v1")
        def refund(ctx: tether.WorkContext) -> dict[str, object]:
            ctx.report_usage(model="m", tokens_in=10, tokens_out=2, cost_usd=0.01)
            looked_up = ctx.tool("lookup", lambda: calls.append("lookup") or "found")
            try:
                ctx.tool("delete_account", lambda: calls.append("delete"))
            except ToolDenied:
                return {"looked_up": looked_up, "deleted": False}
            return {"deleted": True}

        intent = new_intent(client)
        assert worker.run_once()
        done = client.get_intent(intent.intent_id)
        assert done.status is Status.COMPLETED and done.result == {"looked_up": "found",
                                                                   "deleted": False}  # fmt: skip
        assert calls == ["lookup"]
        assert client.intent_usage(intent.intent_id).turns == 1
        assert client.get_agent(AGENT).health is Health.ACTIVE  # the worker beats for its agent
        held = new_intent(client)
        client.pause_agent(AGENT)
        assert not worker.run_once()  # nothing is claimed while paused
        client.resume_agent(AGENT)
        assert worker.run_once()  # the worker's guard saw the resume
        assert client.get_intent(held.intent_id).status is Status.COMPLETED


def test_a_worker_with_an_agent_key_over_http_guards_and_beats_for_its_own_agent(
    db_url: str,
) -> None:
    from ..server_harness import running_server

    with tether.connect(db_url) as local, running_server(local.engine) as url:
        key = local.engine.create_key(tether.KeyRole.AGENT, agent=AGENT).secret
        with tether.connect(url, api_key=key) as remote:
            worker = tether.Worker(remote, agent=AGENT, poll_seconds=0.5)
            worker.handler("refund.request.v1")(lambda ctx: ctx.step("s", lambda: 1))
            intent = new_intent(local)
            assert worker.run_once()
            assert local.get_intent(intent.intent_id).status is Status.COMPLETED
            assert local.get_agent(AGENT).health is Health.ACTIVE
            with pytest.raises(tether.Forbidden):  # its own agent only
                remote.register_agent("agent://test/other")


def test_a_step_can_carry_its_model_turns_usage_in_the_same_write(client: Client) -> None:
    client.set_policy(AGENT, AgentPolicy(cost=CostPolicy(max_cost_per_day_usd=1.0,
                                                         action_on_breach="require_approval")))  # fmt: skip
    intent, lease = started(client)
    turn = tether.TurnUsage(model="m", tokens_in=100, tokens_out=10, cost_usd=0.4)
    client.record_step(intent.intent_id, "model:1", {"text": "hi"}, lease=lease, usage=turn)
    client.record_step(intent.intent_id, "model:1", {"text": "hi"}, lease=lease, usage=turn)
    assert client.intent_usage(intent.intent_id).turns == 1  # a replayed record reports nothing
    with pytest.raises(ApprovalPending):  # recorded, and now over the cap: a person decides
        client.record_step(intent.intent_id, "model:2", {"text": "more"}, lease=lease,
                           usage=turn.model_copy(update={"cost_usd": 0.7}))  # fmt: skip
    assert client.get_step(intent.intent_id, "model:2") is not None
    assert client.get_intent(intent.intent_id).status is Status.WAITING
    types = event_types(client, intent.intent_id)
    assert types.count("model.usage") == 2 and types[-1] == "intent.human_task_assigned"


def test_concurrent_creates_do_not_pass_an_intent_limit() -> None:
    """PostgreSQL: twelve creates at once against a limit of three. Each counts the agent's
    intents under the agent's lock, so exactly three are made."""
    from ..pg import fresh_schema

    with fresh_schema() as url, tether.connect(url) as client:
        client.set_policy(AGENT, AgentPolicy(limits=LimitPolicy(max_intents_per_hour=3)))
        start = threading.Barrier(12)
        made: list[str] = []
        refused: list[str] = []

        def create() -> None:
            start.wait()
            try:
                made.append(new_intent(client).intent_id)
            except RateLimited as exc:
                refused.append(exc.code)

        threads = [threading.Thread(target=create) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert (len(made), refused) == (3, ["intent_limit_exceeded"] * 9)
        assert len(client.list_intents().items) == 3


def test_each_workspace_has_its_own_agent_of_an_address(client: Client) -> None:
    """An address used first by another workspace is still this workspace's to use, see and
    stop; neither workspace's kill stops the other's agent."""
    with outsider(client) as other:
        theirs = other.create_intent("refund.request.v1", AGENT, {"n": 1})
        other.kill_agent(AGENT, reason="theirs")
        assert other.get_agent(AGENT).status is AgentStatus.KILLED
        ours = new_intent(client)  # accepted: ours is not killed
        assert client.get_agent(AGENT).status is AgentStatus.ACTIVE
        claim = client.claim(AGENT)
        assert claim is not None and claim.intent.intent_id == ours.intent_id
        client.pause_agent(AGENT, reason="ours")
        assert other.get_agent(AGENT).status_reason == "theirs"
        assert [a.address for a in client.list_agents()] == [AGENT]
        other.resume_agent(AGENT)
        theirs_claim = other.claim(AGENT)
        assert theirs_claim is not None and theirs_claim.intent.intent_id == theirs.intent_id
        assert client.get_agent(AGENT).status is AgentStatus.PAUSED


@pytest.mark.parametrize("bad", ["agent://demo/x#y", "a b c", "agent://", "agent://a/b/c/d"])
def test_an_agent_address_is_checked_the_same_on_every_transport(client: Client, bad: str) -> None:
    with pytest.raises(tether.InvalidRequest):
        client.register_agent(bad)
    with pytest.raises((tether.InvalidRequest, tether.NotFound)):
        client.kill_agent(bad)
    assert [a.address for a in client.list_agents()] == []
