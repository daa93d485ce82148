"""``tether intents list|show|events``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from ..model import Status
from ._common import DbOption, JsonOption, client, console, dump, short

app = typer.Typer(help="Read intents and their audit trails.", no_args_is_help=True)


@app.command("list")
def list_(
    status: Annotated[
        list[Status] | None, typer.Option("--status", "-s", help="Repeatable.")
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Only intents to this agent.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List intents, newest first."""
    with client(db) as c:
        page = c.list_intents(status=status, to_agent=agent, limit=limit, cursor=cursor)
    if as_json:
        dump(page)
        return
    table = Table("intent", "type", "to", "status", "waiting for", "updated")
    for i in page.items:
        table.add_row(
            i.intent_id, i.intent_type, i.to_agent, i.status.value,
            i.waiting_reason.value.removeprefix("WAITING_FOR_").lower() if i.waiting_reason else "",
            short(i.updated_at),
        )  # fmt: skip
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}")


@app.command()
def show(intent_id: str, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show one intent, with its open wait."""
    with client(db) as c:
        intent = c.get_intent(intent_id)
    if as_json:
        dump(intent)
        return
    console.print(f"[bold]{intent.intent_id}[/bold]  {intent.intent_type}  ->  {intent.to_agent}")
    console.print(
        f"status: [bold]{intent.status.value}[/bold]"
        + (f" ({intent.waiting_reason.value})" if intent.waiting_reason else "")
    )
    console.print(
        f"created {short(intent.created_at)}, updated {short(intent.updated_at)}, seq {intent.seq}"
    )
    console.print(f"payload: {json.dumps(intent.payload)}")
    if intent.wait is not None:
        w = intent.wait
        console.print(
            f"wait {w.wait_id}: {w.kind.value}"
            + (f", deadline {short(w.deadline_at)}" if w.deadline_at else "")
        )
        if w.human_task is not None:
            t = w.human_task
            console.print(f"  task: {t.title}  outcomes: {', '.join(t.allowed_outcomes)}")
            if t.assignees or t.groups:
                console.print(
                    f"  assigned to: {', '.join(t.assignees + ['group:' + g for g in t.groups])}"
                )
    if intent.result is not None:
        console.print(f"result: {json.dumps(intent.result)}")
    if intent.error is not None:
        console.print(f"error: {intent.error.code}: {intent.error.message}")


@app.command()
def events(
    intent_id: str,
    since: Annotated[int, typer.Option(min=0, help="Only events after this seq.")] = 0,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the intent's audit trail."""
    with client(db) as c:
        trail = c.list_events(intent_id, since=since)
    if as_json:
        dump(trail)
        return
    table = Table("seq", "at", "event", "status", "actor", "details")
    for e in trail:
        status = e.status.value + (f" ({e.waiting_reason.value})" if e.waiting_reason else "")
        details = json.dumps(e.details, ensure_ascii=False)
        table.add_row(str(e.seq), short(e.at), e.event_type, status, e.actor,
                      details if len(details) < 120 else details[:117] + "...")  # fmt: skip
    console.print(table)
