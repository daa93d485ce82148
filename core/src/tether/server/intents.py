"""AXP's intents family: create, read, list, events, the SSE stream, resume and resolve."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from ..clock import to_text
from ..errors import InvalidRequest
from ..model import TERMINAL, ErrorInfo, Principal, Status
from . import bodies as b
from .auth import AGENTS, ANYONE, require
from .bodies import MAX_SEQ
from .deps import JSONModel, Lease, engine_call, engine_of, feed_of, on_engine

_SEQ = re.compile(r"[0-9]{1,19}")  # (ASCII digits: str.isdigit takes any script's)

router = APIRouter(prefix="/v1/intents", tags=["intents"])

# Routes here take ``request`` and read the engine (and change feed) from it, rather than
# depending on deps.engine: one dependency less for FastAPI to solve on every request.
Anyone = Annotated[Principal, Depends(require(*ANYONE))]
Agent = Annotated[Principal, Depends(require(*AGENTS))]


@router.post("", response_model=b.Created, summary="Create an intent (AXP)")
@on_engine
def create_intent(
    body: b.CreateIntent,
    who: Agent,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONModel:
    """Create an intent. The same ``Idempotency-Key`` with the same body returns the same
    intent; with another body, 409. With ``human_task`` it waits for a person at once."""
    e = engine_of(request)
    try:
        new = body.to_new_intent()
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    intent = e.create_intent(new, idempotency_key=idempotency_key, actor=who)
    return JSONModel(
        b.Created(
            intent_id=intent.intent_id,
            status=intent.status,
            created_at=to_text(intent.created_at),
            intent=intent,
        )
    )


@router.get("", response_model=b.IntentList, summary="List intents")
def list_intents(
    who: Anyone,
    request: Request,
    status: Annotated[list[Status] | None, Query()] = None,
    to_agent: str | None = None,
    from_agent: str | None = None,
    intent_type: str | None = None,
    correlation_id: str | None = None,
    parent_intent_id: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JSONModel:
    e = engine_of(request)
    page = e.list_intents(
        status=status, to_agent=to_agent, from_agent=from_agent, intent_type=intent_type,
        correlation_id=correlation_id, parent_intent_id=parent_intent_id, cursor=cursor,
        limit=limit, actor=who,
    )  # fmt: skip
    return JSONModel(b.IntentList(intents=page.items, next_cursor=page.next_cursor))


@router.get("/{intent_id}", response_model=b.IntentOut, summary="Read an intent (AXP), long-poll")
async def get_intent(
    intent_id: str,
    who: Anyone,
    request: Request,
    wait_seconds: Annotated[float, Query(ge=0, le=60)] = 0,
    after_seq: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
) -> JSONModel:
    """With ``wait_seconds``, returns as soon as the intent changes past ``after_seq`` (default:
    its seq when the request arrived), or ends, or the time is up."""
    e = engine_of(request)
    feed = feed_of(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    seen = feed.version
    intent = await engine_call(request, e.get_intent, intent_id, actor=who)
    mark = intent.seq if after_seq is None else after_seq
    while intent.seq <= mark and not intent.terminal:
        remaining = feed.remaining(deadline)
        if remaining <= 0:
            break
        seen = await feed.wait(seen, remaining)
        intent = await engine_call(request, e.get_intent, intent_id, actor=who)
    return JSONModel(b.IntentOut(intent=intent))


@router.get("/{intent_id}/events", response_model=b.EventList, summary="The event log after a seq")
def list_events(
    intent_id: str,
    who: Anyone,
    request: Request,
    since: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> JSONModel:
    e = engine_of(request)
    return JSONModel(
        b.EventList(events=e.list_events(intent_id, since=since, limit=limit, actor=who))
    )


@router.get(
    "/{intent_id}/events/stream",
    summary="SSE stream of the event log (AXP)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_events(
    intent_id: str,
    who: Anyone,
    request: Request,
    since: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    wait_seconds: Annotated[int, Query(ge=1, le=60)] = 15,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Frames ``id: seq``, ``event: type``, ``data: json``; after ``wait_seconds`` with nothing
    new, ``event: stream.timeout`` with ``next_seq``. Resume with ``since`` (or
    ``Last-Event-ID``) and no event is skipped."""
    e = engine_of(request)
    feed = feed_of(request)
    if last_event_id:  # (the id of the last frame the client saw: an event's seq)
        if not _SEQ.fullmatch(last_event_id) or int(last_event_id) > MAX_SEQ:
            raise InvalidRequest(
                f"Last-Event-ID is the seq of an event, 0 to {MAX_SEQ}",
                details={"last_event_id": last_event_id[:40]},
            )
        since = max(since, int(last_event_id))
    await engine_call(request, e.get_intent, intent_id, actor=who)  # 404 before the stream starts

    async def frames() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        next_seq = since
        while True:
            seen = feed.version
            events = await engine_call(request, e.list_events, intent_id, since=next_seq, actor=who)
            for event in events:
                data = event.model_dump_json()
                yield f"id: {event.seq}\nevent: {event.event_type}\ndata: {data}\n\n"
                next_seq = event.seq
            if events and events[-1].status in TERMINAL:
                return
            remaining = feed.remaining(deadline)
            if remaining <= 0:
                break
            await feed.wait(seen, remaining)
        yield f"event: stream.timeout\ndata: {json.dumps({'next_seq': next_seq})}\n\n"

    return StreamingResponse(
        frames(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.post(
    "/{intent_id}/resume", response_model=b.IntentOut, summary="Continue a waiting intent (AXP)"
)
@on_engine
def resume(
    intent_id: str, body: b.Resume, who: Anyone, request: Request, lease: Lease = None
) -> JSONModel:
    """A person's ``task_result`` (outcome, comment, and the form's fields) resolves a human
    task; an agent resolves its tool, agent or time wait with ``outcome`` and ``result``."""
    e = engine_of(request)
    if body.task_result is not None:
        extra: dict[str, Any] = dict(body.task_result.model_extra or {})
        data = extra.pop("data", None) if isinstance(extra.get("data"), dict) else None
        intent = e.respond(
            intent_id, body.task_result.outcome, comment=body.task_result.comment,
            data={**extra, **(data or {})} or None, wait_id=body.wait_id, actor=who,
        )  # fmt: skip
    elif body.outcome is not None or body.approve_current_step is not None:
        outcome = body.outcome or ("approved" if body.approve_current_step else "rejected")
        intent = e.resume(
            intent_id, outcome, result=body.result, comment=body.comment or body.reason,
            wait_id=body.wait_id, lease_token=lease, actor=who,
        )  # fmt: skip
    else:
        raise InvalidRequest("resume needs task_result (a person) or outcome (an agent)")
    return JSONModel(b.IntentOut(intent=intent))


@router.post("/{intent_id}/resolve", response_model=b.Resolved, summary="End an intent (AXP)")
@on_engine
def resolve(
    intent_id: str, body: b.Resolve, who: Anyone, request: Request, lease: Lease = None
) -> JSONModel:
    """COMPLETED (``result``), FAILED (``error``) or CANCELED (``reason``); 409 once terminal."""
    e = engine_of(request)
    if body.status is Status.CANCELED and not body.reason:
        raise InvalidRequest("canceling an intent needs a reason")
    error = ErrorInfo(message=body.error) if isinstance(body.error, str) else body.error
    intent, event = e.resolve_with_event(
        intent_id, body.status, result=body.result, error=error, reason=body.reason,
        lease_token=lease, actor=who,
    )  # fmt: skip
    return JSONModel(
        b.Resolved(
            intent=intent,
            event=event,
            completion_delivery=b.CompletionDelivery(
                delivered=intent.reply_to is not None,
                reason="reply_to_not_set" if intent.reply_to is None else None,
                reply_to=intent.reply_to,
                thread_id=intent.intent_id if intent.reply_to is not None else None,
            ),
        )
    )
