"""AXP's inbox: threads (one per intent), approve, reject, reply, delegate, and changes.

A thread's id is its intent's id. An agent's inbox (``owner_agent``) holds the intents that
reply to it, so a completion is delivered there (AXP's completion delivery); a person's inbox
holds the human tasks they may answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from ..clock import to_text
from ..engine import Engine
from ..errors import Forbidden, InvalidRequest
from ..model import Event, Intent, Principal, PrincipalKind
from .auth import ANYONE, require
from .bodies import Body
from .deps import JSONModel, engine, on_engine

router = APIRouter(prefix="/v1/inbox", tags=["inbox"])

Anyone = Annotated[Principal, Depends(require(*ANYONE))]
EngineDep = Annotated[Engine, Depends(engine)]


class TimelineItem(Body):
    event_id: str
    event_type: str
    actor: str
    at: str
    details: dict[str, object]


class Thread(Body):
    thread_id: str
    intent_id: str
    status: str
    title: str | None = None
    owner_agent: str | None = None
    from_agent: str | None = None
    to_agent: str
    created_at: str
    updated_at: str
    human_task: dict[str, object] | None = None
    timeline: list[TimelineItem]


class ThreadOut(Body):
    ok: bool = True
    thread: Thread


class ThreadList(Body):
    ok: bool = True
    threads: list[Thread]


class Change(Body):
    cursor: str
    thread: Thread


class Changes(Body):
    ok: bool = True
    changes: list[Change]
    next_cursor: str | None = None
    has_more: bool


class Comment(Body):
    comment: Annotated[str, Field(max_length=2000)] | None = None


class Reply(Body):
    message: Annotated[str, Field(min_length=1, max_length=5000)]


class Delegate(Body):
    delegate_to: Annotated[str, Field(min_length=1, max_length=255)]
    note: Annotated[str, Field(max_length=2000)] | None = None


def _status(intent: Intent) -> str:
    if intent.terminal:
        return "done"
    return "pending" if intent.human_task is not None else "active"


def thread(intent: Intent, events: list[Event]) -> Thread:
    task = intent.human_task
    return Thread(
        thread_id=intent.intent_id, intent_id=intent.intent_id, status=_status(intent),
        title=task.title if task else intent.intent_type, owner_agent=intent.reply_to,
        from_agent=intent.from_agent, to_agent=intent.to_agent, created_at=to_text(intent.created_at),
        updated_at=to_text(intent.updated_at),
        human_task=task.model_dump(mode="json") if task else None,
        timeline=[
            TimelineItem(event_id=f"{e.intent_id}:{e.seq}", event_type=e.event_type, actor=e.actor,
                         at=to_text(e.at), details=e.details)
            for e in events
        ],
    )  # fmt: skip


def _owner(who: Principal, owner_agent: str | None) -> str | None:
    if who.kind is PrincipalKind.AGENT:
        if owner_agent is not None and owner_agent != who.name:
            raise Forbidden("an agent key reads only its own inbox", code="wrong_owner")
        return who.name
    return owner_agent


def _thread(e: Engine, intent_id: str, who: Principal) -> Thread:
    intent = e.get_intent(intent_id, actor=who)
    return thread(intent, e.list_events(intent_id, actor=who))


@router.get("", response_model=ThreadList, summary="Inbox threads (AXP)")
def list_threads(
    who: Anyone, e: EngineDep, owner_agent: str | None = None,
    status: Annotated[str | None, Query(pattern="^(pending|active|done)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONModel:  # fmt: skip
    """With ``owner_agent`` (an agent's own key implies it): intents that reply to that agent,
    ended ones included (completion delivery), the most recently changed first (follow
    ``/v1/inbox/changes`` with its cursor to see every change). Otherwise: the human tasks
    this key may answer."""
    owner = _owner(who, owner_agent)
    if owner is not None:
        latest = e.inbox_changes(
            reply_to=owner, limit=limit, latest=True, thread_status=status, actor=who
        )
        found = [intent for _, intent in latest]
    else:
        found = e.list_tasks(mine=who.kind is PrincipalKind.HUMAN, limit=limit, actor=who)
    timelines = e.events_of_many([i.intent_id for i in found], actor=who)
    threads = [thread(i, timelines.get(i.intent_id, [])) for i in found]
    return JSONModel(
        ThreadList(threads=[t for t in threads if status is None or t.status == status])
    )


@router.get("/changes", response_model=Changes, summary="Threads changed after a cursor (AXP)")
def changes(
    who: Anyone, e: EngineDep, owner_agent: str | None = None, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JSONModel:  # fmt: skip
    after = ("", "")
    if cursor:
        at, sep, intent_id = cursor.partition("|")
        if not sep:
            raise InvalidRequest("a cursor is the next_cursor of a previous page")
        after = (at, intent_id)
    found = e.inbox_changes(
        reply_to=_owner(who, owner_agent), after=after, limit=limit + 1, actor=who
    )
    page = found[:limit]
    timelines = e.events_of_many([i.intent_id for _, i in page], actor=who)
    items = [Change(cursor=c, thread=thread(i, timelines.get(i.intent_id, []))) for c, i in page]
    more = len(found) > limit
    return JSONModel(
        Changes(changes=items, next_cursor=page[-1][0] if page else cursor, has_more=more)
    )


@router.get("/{thread_id}", response_model=ThreadOut, summary="One thread (AXP)")
@on_engine
def get_thread(thread_id: str, who: Anyone, e: EngineDep) -> JSONModel:
    return JSONModel(ThreadOut(thread=_thread(e, thread_id, who)))


@router.post("/{thread_id}/approve", response_model=ThreadOut, summary="Approve the thread's task")
@on_engine
def approve(thread_id: str, body: Comment, who: Anyone, e: EngineDep) -> JSONModel:
    e.respond(thread_id, "approved", comment=body.comment, actor=who)
    return JSONModel(ThreadOut(thread=_thread(e, thread_id, who)))


@router.post("/{thread_id}/reject", response_model=ThreadOut, summary="Reject the thread's task")
@on_engine
def reject(thread_id: str, body: Comment, who: Anyone, e: EngineDep) -> JSONModel:
    e.respond(thread_id, "rejected", comment=body.comment, actor=who)
    return JSONModel(ThreadOut(thread=_thread(e, thread_id, who)))


@router.post("/{thread_id}/reply", response_model=ThreadOut, summary="Add a message")
@on_engine
def reply(thread_id: str, body: Reply, who: Anyone, e: EngineDep) -> JSONModel:
    e.reply(thread_id, body.message, actor=who)  # 409 once the thread's intent has ended
    return JSONModel(ThreadOut(thread=_thread(e, thread_id, who)))


@router.post("/{thread_id}/delegate", response_model=ThreadOut, summary="Hand the task to someone")
@on_engine
def delegate(thread_id: str, body: Delegate, who: Anyone, e: EngineDep) -> JSONModel:
    e.delegate(thread_id, body.delegate_to, note=body.note, actor=who)
    return JSONModel(ThreadOut(thread=_thread(e, thread_id, who)))
