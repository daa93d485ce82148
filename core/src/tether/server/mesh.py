"""The mesh (AXP's ``/v1/mesh`` family): agents with their status, health, spend and policy;
kill, pause and resume; heartbeats; the mesh's audit; and the checks agents make at their
boundaries (``/v1/intents/{id}/check``, ``/v1/intents/{id}/usage``)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field, TypeAdapter, ValidationError

from ..engine import Engine
from ..errors import Forbidden, InvalidRequest
from ..model import (
    Agent,
    AgentPolicy,
    AgentStatus,
    BreachAction,
    CostPolicy,
    Health,
    LimitPolicy,
    MeshEvent,
    Principal,
    PrincipalKind,
    SendPolicy,
    SpendWindow,
    ToolPolicy,
    UsageReport,
)
from ..model.agents import Count, Pattern, Usd
from ..model.base import AgentAddress
from ..store import AGENT_CHANGES
from .auth import ADMINS, AGENTS, ANYONE, require
from .bodies import MAX_SEQ, Body
from .changes import ChangeFeed
from .deps import JSONModel, Lease, changes, engine, engine_call, on_engine

router = APIRouter(prefix="/v1", tags=["mesh"])

Anyone = Annotated[Principal, Depends(require(*ANYONE))]
AgentKey = Annotated[Principal, Depends(require(*AGENTS))]
Admin = Annotated[Principal, Depends(require(*ADMINS))]
EngineDep = Annotated[Engine, Depends(engine)]
Feed = Annotated[ChangeFeed, Depends(changes)]
Generation = Annotated[int, Field(ge=0, le=MAX_SEQ)] | None


class AgentOut(Body):
    ok: bool = True
    agent: Agent


class AgentList(Body):
    ok: bool = True
    agents: list[Agent]
    next_after: str | None = None


class Register(Body):
    address: AgentAddress


class StatusChange(Body):
    reason: Annotated[str, Field(max_length=500)] | None = None
    generation: Generation = None
    """The generation the caller read; 409 ``stale_generation`` if it changed since."""


class PolicyIn(Body):
    """A whole policy (sections left out get their defaults: open, no caps)."""

    cost: CostPolicy = Field(default_factory=CostPolicy)
    limits: LimitPolicy = Field(default_factory=LimitPolicy)
    tools: ToolPolicy = Field(default_factory=ToolPolicy)
    send: SendPolicy = Field(default_factory=SendPolicy)
    generation: Generation = None


class CostPolicyIn(Body):
    """AXP's cost policy shape; it sets the policy's cost caps and intent limits."""

    max_cost_per_hour_usd: Usd | None = None
    max_cost_per_day_usd: Usd | None = None
    max_intents_per_hour: Count | None = None
    max_intents_per_day: Count | None = None
    action_on_breach: BreachAction = BreachAction.BLOCK
    approver_groups: list[Pattern] = Field(default_factory=list, max_length=50)
    generation: Generation = None


class HeartbeatIn(Body):
    metrics: dict[str, Any] | None = None
    address: Annotated[str, Field(min_length=1, max_length=383)] | None = None
    """For an admin key beating for an agent; an agent key beats for its own address."""


class HeartbeatOut(Body):
    ok: bool = True
    health_status: str
    """``killed``, ``paused``, or the agent's health (AXP's heartbeat answer)."""
    agent: Agent


class EventList(Body):
    ok: bool = True
    events: list[MeshEvent]
    next_after: int


class CheckIn(Body):
    tool: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class UsageIn(Body):
    model: Annotated[str, Field(max_length=255)] | None = None
    tokens_in: Annotated[int, Field(ge=0, le=10**12)] = 0
    tokens_out: Annotated[int, Field(ge=0, le=10**12)] = 0
    cost_usd: Usd = 0.0


class UsageOut(Body):
    ok: bool = True
    usage: UsageReport


class IntentUsageOut(Body):
    ok: bool = True
    usage: SpendWindow


class Ok(Body):
    ok: bool = True


_ADDRESS: TypeAdapter[str] = TypeAdapter(AgentAddress)


def address_of(path: str) -> str:
    """An agent in a path or query: ``agent://ws/name`` (URL-encoded) or just ``ws/name``."""
    address = path if path.startswith("agent://") else f"agent://{path}"
    try:
        return _ADDRESS.validate_python(address)
    except ValidationError as exc:
        raise InvalidRequest(exc.errors()[0]["msg"], code="invalid_agent_address") from exc


def own_agent(address: str, who: Principal) -> str:
    """An agent key acts only for its own agent (403 ``wrong_agent``)."""
    if who.kind is PrincipalKind.AGENT and who.name != address:
        raise Forbidden("an agent key acts only for its own agent", code="wrong_agent")
    return address


@router.get("/mesh/agents", response_model=AgentList, summary="List agents (AXP)")
def list_agents(
    who: Anyone,
    e: EngineDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    health: Health | None = None,
    status: AgentStatus | None = None,
    after: Annotated[str | None, Query(max_length=383)] = None,
) -> JSONModel:
    agents = e.list_agents(status=status, health=health, after=after, limit=limit, actor=who)
    return JSONModel(
        AgentList(agents=agents, next_after=agents[-1].address if len(agents) == limit else None)
    )


@router.post("/mesh/agents", response_model=AgentOut, summary="Register an agent")
@on_engine
def register(body: Register, who: AgentKey, e: EngineDep) -> JSONModel:
    """An admin registers any agent of its workspace; an agent key registers its own."""
    address = own_agent(body.address, who)
    return JSONModel(AgentOut(agent=e.register_agent(address, actor=who)))


def _status_route(status: AgentStatus, verb: str) -> None:
    @router.post(
        f"/mesh/agents/{{address:path}}/{verb}",
        response_model=AgentOut,
        summary=f"{verb.capitalize()} an agent",
        name=f"{verb}_agent",
    )
    def change(
        address: str, who: Admin, e: EngineDep, body: StatusChange | None = None
    ) -> JSONModel:
        body = body or StatusChange()
        agent = e.set_agent_status(
            address_of(address), status, reason=body.reason, generation=body.generation,
            actor=who,
        )  # fmt: skip
        return JSONModel(AgentOut(agent=agent))


_status_route(AgentStatus.KILLED, "kill")
_status_route(AgentStatus.PAUSED, "pause")
_status_route(AgentStatus.ACTIVE, "resume")


@router.put("/mesh/agents/{address:path}/policy", response_model=AgentOut,
            summary="Replace an agent's policy")  # fmt: skip
def put_policy(address: str, body: PolicyIn, who: Admin, e: EngineDep) -> JSONModel:
    policy = AgentPolicy(cost=body.cost, limits=body.limits, tools=body.tools, send=body.send)
    agent = e.set_agent_policy(address_of(address), policy, generation=body.generation, actor=who)
    return JSONModel(AgentOut(agent=agent))


@router.put("/mesh/agents/{address:path}/policies/cost", response_model=AgentOut,
            summary="Set an agent's cost policy (AXP)")  # fmt: skip
def put_cost_policy(address: str, body: CostPolicyIn, who: Admin, e: EngineDep) -> JSONModel:
    """Sets the cost caps and intent limits; the tool and send policies are kept."""
    target = address_of(address)
    current = e.register_agent(target, actor=who)
    generation = body.generation if body.generation is not None else current.generation
    policy = current.policy.model_copy(
        update={
            "cost": CostPolicy(
                max_cost_per_hour_usd=body.max_cost_per_hour_usd,
                max_cost_per_day_usd=body.max_cost_per_day_usd,
                action_on_breach=body.action_on_breach,
                approver_groups=body.approver_groups,
            ),
            "limits": LimitPolicy(
                max_intents_per_hour=body.max_intents_per_hour,
                max_intents_per_day=body.max_intents_per_day,
            ),
        }
    )
    return JSONModel(
        AgentOut(agent=e.set_agent_policy(target, policy, generation=generation, actor=who))
    )


@router.get("/mesh/agents/{address:path}", response_model=AgentOut, summary="Get an agent (AXP)")
async def get_agent(
    address: str,
    who: Anyone,
    e: EngineDep,
    feed: Feed,
    after_generation: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
    wait_seconds: Annotated[float, Query(ge=0, le=60)] = 0,
) -> JSONModel:
    """With ``after_generation`` and ``wait_seconds`` this is a long poll: it answers as soon
    as the agent's generation passes ``after_generation`` (a kill, pause, resume or policy
    change), which is how every process of a fleet learns of a change within a second."""
    target = address_of(address)
    if after_generation is None or wait_seconds <= 0:
        return JSONModel(AgentOut(agent=await engine_call(e, e.get_agent, target, actor=who)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        seen = e.store.topic_counter(AGENT_CHANGES)
        agent = await engine_call(e, e.get_agent, target, actor=who)
        remaining = feed.remaining(deadline)
        if agent.generation > after_generation or remaining <= 0:
            return JSONModel(AgentOut(agent=agent))
        await feed.wait_topic(AGENT_CHANGES, seen, remaining)  # re-read once an agent changed


@router.post("/mesh/heartbeat", response_model=HeartbeatOut, summary="Agent heartbeat (AXP)")
@on_engine
def heartbeat(who: AgentKey, e: EngineDep, body: HeartbeatIn | None = None) -> JSONModel:
    body = body or HeartbeatIn()
    if who.kind is PrincipalKind.AGENT:
        address = own_agent(address_of(body.address) if body.address else who.name, who)
    elif body.address is None:
        raise InvalidRequest("an admin key names the agent it beats for (address)")
    else:
        address = address_of(body.address)
    agent = e.agent_heartbeat(address, body.metrics, actor=who)
    state = agent.status.value if agent.status is not AgentStatus.ACTIVE else agent.health.value
    return JSONModel(HeartbeatOut(health_status=state, agent=agent))


@router.get("/mesh/events", response_model=EventList, summary="The mesh's audit (AXP)")
def mesh_events(
    who: Anyone,
    e: EngineDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    event_type: Annotated[str | None, Query(max_length=100)] = None,
    agent: Annotated[str | None, Query(max_length=383)] = None,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
) -> JSONModel:
    """Kills, pauses, resumes, policy changes (with who made them), health changes and
    refused intents, oldest first; page with ``after``."""
    events = e.mesh_events(
        agent=address_of(agent) if agent else None, event_type=event_type, after=after,
        limit=limit, actor=who,
    )  # fmt: skip
    return JSONModel(EventList(events=events, next_after=events[-1].event_id if events else after))


@router.post("/intents/{intent_id}/check", response_model=Ok, summary="A boundary check")
@on_engine
def check(
    intent_id: str, who: AgentKey, e: EngineDep, lease: Lease = None, body: CheckIn | None = None
) -> JSONModel:
    """200 if the work may go on; 403 ``agent_killed``, ``agent_paused``,
    ``spend_approval_pending`` or ``tool_not_allowed``, or 409 ``intent_terminal`` if not."""
    e.check(intent_id, tool=body.tool if body else None, lease_token=lease, actor=who)
    return JSONModel(Ok())


@router.post("/intents/{intent_id}/usage", response_model=UsageOut,
             summary="Report a model turn's usage")  # fmt: skip
@on_engine
def report_usage(
    intent_id: str, body: UsageIn, who: AgentKey, e: EngineDep, lease: Lease = None
) -> JSONModel:
    report = e.report_usage(
        intent_id, model=body.model, tokens_in=body.tokens_in, tokens_out=body.tokens_out,
        cost_usd=body.cost_usd, lease_token=lease, actor=who,
    )  # fmt: skip
    return JSONModel(UsageOut(usage=report))


@router.get("/intents/{intent_id}/usage", response_model=IntentUsageOut,
            summary="An intent's total usage")  # fmt: skip
@on_engine
def intent_usage(intent_id: str, who: Anyone, e: EngineDep) -> JSONModel:
    return JSONModel(IntentUsageOut(usage=e.intent_usage(intent_id, actor=who)))
