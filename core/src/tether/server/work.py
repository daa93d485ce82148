"""tether's extensions, in AXP's style: waits, child intents, the human inbox, tool callbacks,
timers, the steps journal, opaque state and worker leases."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from ..clock import to_text
from ..engine.journal import MAX_KEYS
from ..errors import InvalidRequest
from ..model import Claim, NewIntent, Principal, WaitKind, WaitSpec
from ..model.principals import PrincipalKind
from ..store import work_for
from . import bodies as b
from .auth import ADMINS, AGENTS, ANYONE, require
from .deps import JSONModel, Lease, engine_call, engine_of, feed_of, on_engine

router = APIRouter(prefix="/v1", tags=["waits and work"])

# Routes here take ``request`` and read the engine (and change feed) from it, rather than
# depending on deps.engine: one dependency less for FastAPI to solve on every request.
Anyone = Annotated[Principal, Depends(require(*ANYONE))]
Agent = Annotated[Principal, Depends(require(*AGENTS))]
Admin = Annotated[Principal, Depends(require(*ADMINS))]


@router.post("/intents/{intent_id}/acknowledge", response_model=b.IntentOut)
@on_engine
def acknowledge(intent_id: str, who: Agent, request: Request, lease: Lease = None) -> JSONModel:
    e = engine_of(request)
    return JSONModel(b.IntentOut(intent=e.acknowledge(intent_id, lease_token=lease, actor=who)))


@router.post(
    "/intents/{intent_id}/start", response_model=b.LeaseOut, summary="Begin work under a lease"
)
@on_engine
def start(intent_id: str, body: b.Start, who: Agent, request: Request) -> JSONModel:
    e = engine_of(request)
    lease = e.start(
        intent_id, owner=body.owner or who.actor, lease_seconds=body.lease_seconds,
        lease_token=body.lease_token, actor=who,
    )  # fmt: skip
    return JSONModel(b.LeaseOut(lease=lease))


@router.post("/intents/{intent_id}/waits", response_model=b.WaitOut, summary="Open a wait")
@on_engine
def open_wait(
    intent_id: str, body: WaitSpec, who: Agent, request: Request, lease: Lease = None
) -> JSONModel:
    """A human task, a tool call (the wait carries its callback token), a child intent or a
    time. Idempotent by ``key``: the same key and spec return the same wait."""
    e = engine_of(request)
    return JSONModel(b.WaitOut(wait=e.open_wait(intent_id, body, lease_token=lease, actor=who)))


@router.get("/intents/{intent_id}/waits", response_model=b.WaitList)
@on_engine
def list_waits(intent_id: str, who: Anyone, request: Request) -> JSONModel:
    e = engine_of(request)
    return JSONModel(b.WaitList(waits=e.list_waits(intent_id, actor=who)))


@router.get("/waits/{wait_id}", response_model=b.WaitOut)
@on_engine
def get_wait(wait_id: str, who: Anyone, request: Request) -> JSONModel:
    e = engine_of(request)
    return JSONModel(b.WaitOut(wait=e.get_wait(wait_id, actor=who)))


@router.post("/intents/{intent_id}/children", response_model=b.ChildOut, summary="Wait for a child")
@on_engine
def wait_for_child(
    intent_id: str, body: b.Child, who: Agent, request: Request, lease: Lease = None
) -> JSONModel:
    """Create a child intent for another agent and wait until it ends, in one transaction."""
    e = engine_of(request)
    spec = WaitSpec(
        kind=WaitKind.AGENT, key=body.key, child_intent_id="pending",
        deadline_at=body.deadline_at, on_timeout=body.on_timeout,
    )  # fmt: skip
    child, wait = e.wait_for_child(
        intent_id, NewIntent.model_validate(body.child.model_dump()), key=body.key, spec=spec,
        lease_token=lease, actor=who,
    )  # fmt: skip
    return JSONModel(b.ChildOut(intent=child, wait=wait))


@router.post(
    "/intents/{intent_id}/respond", response_model=b.IntentOut, summary="Answer a human task"
)
@on_engine
def respond(intent_id: str, body: b.Respond, who: Anyone, request: Request) -> JSONModel:
    e = engine_of(request)
    intent = e.respond(
        intent_id, body.outcome, comment=body.comment, data=body.data, wait_id=body.wait_id,
        actor=who,
    )  # fmt: skip
    return JSONModel(b.IntentOut(intent=intent))


@router.get("/me/tasks", response_model=b.TaskList, summary="Tasks waiting for a person (AXP)")
def my_tasks(
    who: Anyone,
    request: Request,
    mine: bool = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONModel:
    """An approver's key lists the tasks it may answer; ``mine=false`` lists every open task."""
    e = engine_of(request)
    intents = e.list_tasks(mine=mine and who.kind is PrincipalKind.HUMAN, limit=limit, actor=who)
    tasks = []
    for intent in intents:
        assert intent.wait is not None and intent.wait.human_task is not None
        tasks.append(
            b.Task(
                intent_id=intent.intent_id,
                intent_type=intent.intent_type,
                status=intent.status,
                from_agent=intent.from_agent,
                assigned_at=to_text(intent.wait.opened_at),
                due_at=to_text(intent.wait.deadline_at) if intent.wait.deadline_at else None,
                human_task=intent.wait.human_task.model_dump(mode="json"),
                intent=intent,
            )
        )
    return JSONModel(b.TaskList(tasks=tasks))


@router.post("/callbacks/{token}", response_model=b.IntentOut, summary="A tool posts its result")
@on_engine
def tool_callback(token: str, body: b.Callback, request: Request) -> JSONModel:
    """The callback token is the credential: whoever holds it may post the result, once."""
    e = engine_of(request)
    return JSONModel(
        b.IntentOut(
            intent=e.complete_tool(
                token, result=body.result, error=body.error, actor=Principal.system("tool")
            )
        )
    )


@router.post("/callbacks/{token}/heartbeat", response_model=b.WaitOut, summary="A tool is alive")
@on_engine
def tool_heartbeat(token: str, body: b.Heartbeat, request: Request) -> JSONModel:
    e = engine_of(request)
    return JSONModel(
        b.WaitOut(
            wait=e.heartbeat_tool(
                token, extend_seconds=body.extend_seconds, actor=Principal.system("tool")
            )
        )
    )


@router.post("/timers/fire", response_model=b.Fired, summary="Fire due timers now")
def fire_timers(who: Admin, request: Request) -> JSONModel:
    e = engine_of(request)
    return JSONModel(b.Fired(fired=e.fire_due_timers()))


@router.get("/intents/{intent_id}/steps", response_model=b.StepList, summary="The steps journal")
def list_steps(intent_id: str, who: Anyone, request: Request) -> JSONModel:
    e = engine_of(request)
    return JSONModel(b.StepList(steps=e.list_steps(intent_id, actor=who)))


@router.get("/intents/{intent_id}/step", response_model=b.StepOut, summary="One journal step")
@on_engine
def get_step(
    intent_id: str,
    who: Anyone,
    request: Request,
    key: Annotated[str, Query(min_length=1, max_length=512)],
) -> JSONModel:
    e = engine_of(request)
    return JSONModel(b.StepOut(step=e.get_step(intent_id, key, actor=who)))


@router.post(
    "/intents/{intent_id}/steps", response_model=b.StepOut, summary="Record a finished step"
)
@on_engine
def record_step(
    intent_id: str, body: b.RecordStep, who: Agent, request: Request, lease: Lease = None
) -> JSONModel:
    """The first record of a key wins; recording it again returns the first result."""
    e = engine_of(request)
    return JSONModel(
        b.StepOut(
            step=e.record_step(
                intent_id, body.key, body.result, lease_token=lease, usage=body.usage, actor=who
            )
        )
    )


@router.get("/intents/{intent_id}/state", response_model=b.StateOut, summary="Read opaque state")
@on_engine
def get_state(
    intent_id: str,
    who: Anyone,
    request: Request,
    key: Annotated[str, Query(min_length=1, max_length=255)] = "default",
) -> JSONModel:
    e = engine_of(request)
    return JSONModel(b.StateOut(state=e.get_state(intent_id, key, actor=who)))


@router.put("/intents/{intent_id}/state", response_model=b.StateOut, summary="Write state (CAS)")
@on_engine
def put_state(
    intent_id: str, body: b.PutState, who: Agent, request: Request, lease: Lease = None
) -> JSONModel:
    """Compare-and-set: 409 unless ``expected_version`` is the stored version (0: none)."""
    e = engine_of(request)
    state = e.put_state(
        intent_id, body.data, expected_version=body.expected_version, key=body.key,
        lease_token=lease, actor=who,
    )  # fmt: skip
    return JSONModel(b.StateOut(state=state))


@router.get(
    "/intents/{intent_id}/state/keys", response_model=b.StateKeys, summary="List state keys"
)
def list_state(
    intent_id: str,
    who: Anyone,
    request: Request,
    prefix: Annotated[str, Query(max_length=255)] = "",
    after: Annotated[str, Query(max_length=255)] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_KEYS)] = 100,
) -> JSONModel:
    """Keys (version and time of the last write, no data) that start with ``prefix`` and
    sort after ``after``, in code point order: pass the last key back as ``after``."""
    e = engine_of(request)
    keys = e.list_state(intent_id, prefix=prefix, after=after, limit=limit, actor=who)
    return JSONModel(b.StateKeys(keys=keys))


@router.delete("/intents/{intent_id}/state", response_model=b.Deleted, summary="Delete state")
@on_engine
def delete_state(
    intent_id: str,
    who: Agent,
    request: Request,
    lease: Lease = None,
    key: Annotated[str, Query(min_length=1, max_length=255)] | None = None,
    prefix: Annotated[str, Query(max_length=255)] | None = None,
    expected_version: Annotated[int, Query(ge=0, le=b.MAX_SEQ)] | None = None,
) -> JSONModel:
    """One ``key`` (with ``expected_version``: 409 unless it is the stored version), or every
    key that starts with ``prefix`` (not empty); ``deleted`` says how many."""
    e = engine_of(request)
    if key is not None and prefix is None:
        done = e.delete_state(
            intent_id, key, expected_version=expected_version, lease_token=lease, actor=who
        )
        deleted = int(done)
    elif prefix is not None and key is None and expected_version is None:
        deleted = e.delete_state_prefix(intent_id, prefix, lease_token=lease, actor=who)
    else:
        raise InvalidRequest(
            "delete state by key (and expected_version, if any) or by prefix: exactly one"
        )
    return JSONModel(b.Deleted(deleted=deleted))


@router.post("/claims", response_model=b.ClaimOut, summary="Claim the next runnable intent")
async def claim(body: b.ClaimNext, who: Agent, request: Request) -> JSONModel:
    """With ``wait_seconds``, a long poll: an intent of the agent that becomes claimable
    (created, resumed, released, here or through another replica) ends it at once."""
    e = engine_of(request)
    feed = feed_of(request)
    if who.kind is PrincipalKind.AGENT and body.agent != who.name:
        from ..errors import Forbidden

        raise Forbidden("an agent key claims only its own agent's intents", code="wrong_agent")

    def attempt() -> Claim | None:  # an idle claimer looks first (see Engine.claim)
        return e.claim(
            body.agent, owner=body.owner or who.actor, lease_seconds=body.lease_seconds,
            intent_types=body.intent_types, start=body.start, journal=body.journal, actor=who,
        )  # fmt: skip

    topic = work_for(body.agent)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + body.wait_seconds
    while True:
        seen = e.store.topic_counter(topic)
        found = await engine_call(request, attempt)
        remaining = feed.remaining(deadline)
        if found is not None or remaining <= 0:
            return JSONModel(b.ClaimOut(claim=found))
        await feed.wait_topic(topic, seen, remaining)


@router.post("/intents/{intent_id}/claim", response_model=b.ClaimOut, summary="Claim one intent")
@on_engine
def claim_intent(intent_id: str, body: b.ClaimOne, who: Agent, request: Request) -> JSONModel:
    e = engine_of(request)
    return JSONModel(
        b.ClaimOut(
            claim=e.claim_intent(
                intent_id,
                owner=body.owner or who.actor,
                lease_seconds=body.lease_seconds,
                actor=who,
            )
        )
    )


@router.post("/intents/{intent_id}/lease/heartbeat", response_model=b.LeaseOut)
@on_engine
def heartbeat_lease(intent_id: str, body: b.LeaseRenew, who: Agent, request: Request) -> JSONModel:
    e = engine_of(request)
    return JSONModel(
        b.LeaseOut(
            lease=e.heartbeat_lease(
                intent_id, body.token, lease_seconds=body.lease_seconds, actor=who
            )
        )
    )


@router.post("/intents/{intent_id}/lease/release", response_model=b.Ok)
@on_engine
def release_lease(intent_id: str, body: b.LeaseRelease, who: Agent, request: Request) -> JSONModel:
    e = engine_of(request)
    e.release_lease(intent_id, body.token, actor=who)
    return JSONModel(b.Ok())
