"""The web inbox at ``/inbox``: people sign in with an approver key, see what waits for them
(overdue first), open a task (payload, context, audit trail) and answer it with its form.

Server-rendered pages and a few lines of JavaScript (the list refreshes itself over SSE); no
front-end build. The key is kept in an HttpOnly, SameSite=Strict cookie, and every form post
must come from this origin.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from ..engine import Engine
from ..errors import Forbidden, InvalidRequest, StaleGeneration, TetherError, Unauthorized
from ..model import AgentStatus, Intent, PrincipalKind
from ..model.keys import ApiKey

router = APIRouter(prefix="/inbox", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
COOKIE = "tether_key"


def _engine(request: Request) -> Engine:
    e: Engine = request.app.state.engine
    return e


async def _who(request: Request) -> ApiKey | None:
    key = request.cookies.get(COOKIE)
    if not key:
        return None
    found = await run_in_threadpool(_engine(request).authenticate, key)
    if found is None or found.role.value == "agent":
        return None
    request.app.state.limiter.check(found.key_id)  # a page counts as the API's requests do
    return found


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("cross-site form posts are refused")


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


def _short(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else ""


def _rows(tasks: list[Intent]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    rows = []
    for intent in tasks:
        assert intent.wait is not None and intent.wait.human_task is not None
        task, wait = intent.wait.human_task, intent.wait
        rows.append(
            {
                "intent_id": intent.intent_id,
                "title": task.title,
                "intent_type": intent.intent_type,
                "from_agent": intent.from_agent,
                "since": _short(wait.opened_at),
                "due": _short(wait.deadline_at),
                "overdue": wait.deadline_at is not None and wait.deadline_at < now,
                "deadline": wait.deadline_at,
                "assigned": ", ".join(task.assignees + [f"group {g}" for g in task.groups]),
            }
        )
    far = datetime.max.replace(tzinfo=UTC)
    rows.sort(key=lambda r: (not r["overdue"], r["deadline"] or far))
    return rows


async def _tasks(request: Request, who: ApiKey) -> list[dict[str, Any]]:
    engine = _engine(request)
    mine = who.principal.kind is PrincipalKind.HUMAN
    tasks = await run_in_threadpool(
        lambda: engine.list_tasks(mine=mine, limit=200, actor=who.principal)
    )
    return _rows(tasks)


@router.get("", response_class=HTMLResponse)
async def inbox(request: Request) -> Response:
    who = await _who(request)
    if who is None:
        return _page(request, "login.html", who=None)
    return _page(request, "list.html", who=who.principal.name, tasks=await _tasks(request, who))


@router.get("/tasks-fragment", response_class=HTMLResponse)
async def tasks_fragment(request: Request) -> Response:
    who = await _who(request)
    if who is None:
        return Response(status_code=401)
    return _page(request, "tasks.html", tasks=await _tasks(request, who))


@router.post("/login")
async def login(request: Request, key: str = Form(...)) -> Response:
    _same_origin(request)
    found = await run_in_threadpool(_engine(request).authenticate, key)
    if found is None or found.role.value == "agent":
        return _page(request, "login.html", 401, who=None,
                     error="That key is not valid here: sign in with an approver (or admin) key.")  # fmt: skip
    request.app.state.limiter.check(found.key_id)
    response = RedirectResponse("/inbox", status_code=303)
    response.set_cookie(
        COOKIE, key, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    _same_origin(request)
    response = RedirectResponse("/inbox", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/live")
async def live(request: Request) -> Response:
    """Tell the list page when anything changed (it then fetches the fresh list)."""
    if await _who(request) is None:
        return Response(status_code=401)
    feed = request.app.state.changes

    async def events() -> AsyncIterator[str]:
        seen = feed.version
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 25
        yield "retry: 1000\n\n"
        while (remaining := feed.remaining(deadline)) > 0:
            now = await feed.wait(seen, remaining)
            if now != seen:
                seen = now
                yield "event: changed\ndata: {}\n\n"
        yield ": window over; the browser reconnects\n\n"

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


# -- agents ----------------------------------------------------------------------------------


async def _agents(request: Request, who: ApiKey) -> dict[str, Any]:
    agents = await run_in_threadpool(
        lambda: _engine(request).list_agents(limit=500, actor=who.principal)
    )
    rows = [
        {**a.model_dump(), "status": a.status, "health": a.health, "spend": a.spend,
         "last_heartbeat": _short(a.last_heartbeat_at)}
        for a in agents
    ]  # fmt: skip
    return {"agents": rows, "admin": who.principal.kind is PrincipalKind.ADMIN}


@router.get("/agents", response_class=HTMLResponse)
async def agents_page(request: Request) -> Response:
    """Every agent with its status, health and spend; admins kill, pause and resume here."""
    who = await _who(request)
    if who is None:
        return RedirectResponse("/inbox", status_code=303)
    return _page(request, "agents.html", who=who.principal.name, **await _agents(request, who))


@router.get("/agents-fragment", response_class=HTMLResponse)
async def agents_fragment(request: Request) -> Response:
    who = await _who(request)
    if who is None:
        return Response(status_code=401)
    return _page(request, "agents_table.html", **await _agents(request, who))


_ACTIONS = {"kill": AgentStatus.KILLED, "pause": AgentStatus.PAUSED, "resume": AgentStatus.ACTIVE}


@router.post("/agents/status", response_class=HTMLResponse)
async def agent_status(
    request: Request,
    address: str = Form(..., max_length=383),
    action: str = Form(...),
    generation: int = Form(..., ge=0),
) -> Response:
    _same_origin(request)
    who = await _who(request)
    if who is None:
        return RedirectResponse("/inbox", status_code=303)
    try:
        if who.principal.kind is not PrincipalKind.ADMIN:
            raise Forbidden("only an admin may kill, pause or resume an agent")
        if action not in _ACTIONS:
            raise InvalidRequest(f"unknown action {action!r}")
        await run_in_threadpool(
            lambda: _engine(request).set_agent_status(
                address, _ACTIONS[action], reason=f"from the web inbox by {who.principal.name}",
                generation=generation, actor=who.principal,
            )
        )  # fmt: skip
    except TetherError as exc:
        error = exc.message
        if isinstance(exc, StaleGeneration):
            error = f"{address} changed meanwhile; this is how it is now. Try again if you still want to."
        return _page(request, "agents.html", exc.status, who=who.principal.name, error=error,
                     **await _agents(request, who))  # fmt: skip
    return RedirectResponse("/inbox/agents", status_code=303)


def _property(given: Any) -> dict[str, Any]:
    """A property's schema as a dict: JSON Schema allows ``true`` (anything) and ``false``
    (nothing) too, which the form shows as a text field (the schema then judges the value)."""
    return given if isinstance(given, dict) else {}


def _type(prop: dict[str, Any]) -> str | None:
    """The property's type for the form: the first of a list of types that is not null."""
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind if isinstance(kind, str) else None


def _fields(
    schema: dict[str, Any] | None, values: dict[str, Any], errors: dict[str, str]
) -> list[dict[str, Any]]:
    if not schema or schema.get("type") != "object":
        return []
    required = set(schema.get("required", []))
    out = []
    for name, given in (schema.get("properties") or {}).items():
        prop = _property(given)
        kind = (
            "enum"
            if "enum" in prop
            else {"number": "number", "integer": "number", "boolean": "boolean"}.get(
                _type(prop) or "", "text"
            )
        )
        out.append(
            {
                "name": name, "title": prop.get("title", name.replace("_", " ").capitalize()),
                "description": prop.get("description"), "kind": kind, "options": prop.get("enum", []),
                "required": name in required, "value": values.get(name), "error": errors.get(name),
            }
        )  # fmt: skip
    return out


def _coerce(schema: dict[str, Any] | None, form: dict[str, str]) -> dict[str, Any]:
    props = (schema or {}).get("properties") or {}
    data: dict[str, Any] = {}
    for name, given in props.items():
        raw = form.get(f"field:{name}")
        kind = _type(_property(given))
        if kind == "boolean":
            data[name] = raw == "true"
            continue
        if raw is None or raw == "":
            continue
        if kind in ("number", "integer"):
            try:
                number = float(raw)
                data[name] = int(number) if kind == "integer" and number.is_integer() else number
            except ValueError:
                data[name] = raw  # the schema check reports it beside the field
        else:
            data[name] = raw
    return data


async def _task_page(
    request: Request, who: ApiKey, intent_id: str, status: int = 200, **extra: Any
) -> Response:
    engine = _engine(request)
    try:
        intent = await run_in_threadpool(engine.get_intent, intent_id, actor=who.principal)
        events = await run_in_threadpool(engine.list_events, intent_id, actor=who.principal)
    except TetherError as exc:
        return _page(request, "login.html" if isinstance(exc, Unauthorized) else "list.html", exc.status,
                     who=who.principal.name, tasks=[], error=exc.message)  # fmt: skip
    wait = intent.wait
    task = wait.human_task if wait is not None else None
    if task is None or wait is None:
        last = next((w for w in await run_in_threadpool(engine.list_waits, intent_id, actor=who.principal)
                     if w.human_task is not None), None)  # fmt: skip
        task = last.human_task if last else None
        if task is None:
            return _page(request, "list.html", 404, who=who.principal.name, tasks=[])
        extra.setdefault(
            "done", f"This task is closed ({intent.status.value.lower().replace('_', ' ')})."
        )
    context = {
        "who": who.principal.name, "intent": intent, "task": task, "wait_id": wait.wait_id if wait else "",
        "payload": json.dumps(intent.payload, indent=2, ensure_ascii=False),
        "events": [
            {"seq": e.seq, "event_type": e.event_type, "actor": e.actor, "at": _short(e.at),
             "outcome": e.details.get("outcome")}
            for e in events
        ],
        "fields": _fields(task.form_schema, extra.pop("values", {}), extra.pop("field_errors", {})),
        **extra,
    }  # fmt: skip
    return _page(request, "task.html", status, **context)


@router.get("/tasks/{intent_id}", response_class=HTMLResponse)
async def task(request: Request, intent_id: str) -> Response:
    who = await _who(request)
    if who is None:
        return RedirectResponse("/inbox", status_code=303)
    return await _task_page(request, who, intent_id)


@router.post("/tasks/{intent_id}", response_class=HTMLResponse)
async def answer(request: Request, intent_id: str) -> Response:
    _same_origin(request)
    who = await _who(request)
    if who is None:
        return RedirectResponse("/inbox", status_code=303)
    form = {k: str(v) for k, v in (await request.form()).items()}
    engine = _engine(request)
    intent = await run_in_threadpool(engine.get_intent, intent_id, actor=who.principal)
    schema = intent.human_task.form_schema if intent.human_task else None
    data = _coerce(schema, form)
    comment = form.get("comment") or None
    try:
        await run_in_threadpool(
            lambda: engine.respond(intent_id, form.get("outcome", ""), comment=comment, data=data or None,
                                   wait_id=form.get("wait_id") or None, actor=who.principal)
        )  # fmt: skip
    except InvalidRequest as exc:
        field_errors = {
            e["field"]: e["message"] for e in exc.details.get("errors", []) if e.get("field")
        }
        general = [e["message"] for e in exc.details.get("errors", []) if not e.get("field")]
        about_comment = exc.code == "comment_required"
        overall = None if field_errors or about_comment else ("; ".join(general) or exc.message)
        return await _task_page(
            request, who, intent_id, 422, values=data, field_errors=field_errors, comment=comment,
            comment_error=exc.message if about_comment else None, form_error=overall,
        )  # fmt: skip
    except TetherError as exc:
        return await _task_page(request, who, intent_id, exc.status, form_error=exc.message)
    return RedirectResponse("/inbox", status_code=303)
