"""An agent's work: its feed of intents that changed status, polled or streamed (AXP)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from ..engine import Engine
from ..errors import InvalidRequest
from ..model import FeedItem, Principal, Status
from .auth import AGENTS, require
from .bodies import MAX_SEQ, Body
from .changes import ChangeFeed
from .deps import JSONModel, changes, engine, engine_call
from .mesh import address_of, own_agent

router = APIRouter(prefix="/v1/agents", tags=["agents"])

Agent = Annotated[Principal, Depends(require(*AGENTS))]
EngineDep = Annotated[Engine, Depends(engine)]
Feed = Annotated[ChangeFeed, Depends(changes)]


class FeedOut(Body):
    ok: bool = True
    intents: list[FeedItem]
    next_seq: int


def _address(path: str, who: Principal) -> str:
    return own_agent(address_of(path), who)


def _statuses(status: str | None) -> list[Status] | None:
    if not status:
        return None
    try:
        return [Status(s.strip().upper()) for s in status.split(",") if s.strip()]
    except ValueError as exc:
        raise InvalidRequest(f"unknown status in {status!r}") from exc


@router.get("/{address:path}/intents/stream", summary="SSE stream of an agent's work (AXP)",
            response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})  # fmt: skip
async def stream(
    address: str,
    who: Agent,
    e: EngineDep,
    feed: Feed,
    since: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    wait_seconds: Annotated[int, Query(ge=1, le=60)] = 15,
    status: str | None = None,
) -> StreamingResponse:
    """Intents addressed to the agent as their status changes (ended ones left out unless
    ``status`` asks for them); ``id`` is the feed position to resume from with ``since``."""
    agent, wanted = _address(address, who), _statuses(status)

    async def frames() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        next_seq = since
        while True:
            seen = feed.version
            items = await engine_call(
                e, e.agent_feed, agent, since=next_seq, statuses=wanted, actor=who
            )
            for item in items:
                yield f"id: {item.seq}\nevent: {item.event_type}\ndata: {item.model_dump_json()}\n\n"
                next_seq = item.seq
            remaining = feed.remaining(deadline)
            if remaining <= 0:
                break
            if not items:
                await feed.wait(seen, remaining)
        yield f"event: stream.timeout\ndata: {json.dumps({'next_seq': next_seq})}\n\n"

    return StreamingResponse(
        frames(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get("/{address:path}/intents", response_model=FeedOut, summary="Poll an agent's work")
async def poll(
    address: str,
    who: Agent,
    e: EngineDep,
    feed: Feed,
    since: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    wait_seconds: Annotated[float, Query(ge=0, le=60)] = 0,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONModel:
    """The poll twin of the stream; with ``wait_seconds`` it returns as soon as there is work."""
    agent, wanted = _address(address, who), _statuses(status)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        seen = feed.version
        items = await engine_call(
            e, e.agent_feed, agent, since=since, statuses=wanted, limit=limit, actor=who
        )
        remaining = feed.remaining(deadline)
        if items or remaining <= 0:
            break
        await feed.wait(seen, remaining)
    return JSONModel(FeedOut(intents=items, next_seq=items[-1].seq if items else since))
