"""``tether inbox list|approve|reject|respond``: the human side of waits."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from ._common import DbOption, JsonOption, client, console, dump, person, short

app = typer.Typer(help="Tasks waiting for a person.", no_args_is_help=True)

AsOption = Annotated[
    str | None,
    typer.Option("--as", help="Who you are (default TETHER_ACTOR, or your OS user)."),
]
GroupOption = Annotated[
    list[str] | None,
    typer.Option("--group", help="A group you belong to (repeatable; or TETHER_GROUPS)."),
]
CommentOption = Annotated[str | None, typer.Option("--comment", "-m", help="Your comment.")]
DataOption = Annotated[
    list[str] | None,
    typer.Option("--data", help="A form field, key=value (repeatable; JSON values allowed)."),
]
DataJsonOption = Annotated[
    str | None, typer.Option("--data-json", help="The whole form as a JSON object.")
]


def _form(data: list[str] | None, data_json: str | None) -> dict[str, Any] | None:
    form: dict[str, Any] = {}
    if data_json:
        try:
            loaded = json.loads(data_json)
        except ValueError as exc:
            raise typer.BadParameter(f"--data-json is not JSON: {exc}") from exc
        if not isinstance(loaded, dict):
            raise typer.BadParameter("--data-json must be a JSON object")
        form.update(loaded)
    for item in data or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--data takes key=value, got {item!r}")
        try:
            form[key] = json.loads(raw)
        except ValueError:
            form[key] = raw
    return form or None


@app.command("list")
def list_(
    mine: Annotated[bool, typer.Option("--mine", help="Only tasks you may act on.")] = False,
    who: AsOption = None,
    group: GroupOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List open human tasks, oldest first."""
    with client(db, person(who, group)) as c:
        c.fire_due_timers()
        tasks = c.list_tasks(mine=mine)
    if as_json:
        dump(tasks)
        return
    table = Table("intent", "task", "outcomes", "assigned to", "waiting since", "due")
    for i in tasks:
        assert i.wait is not None and i.wait.human_task is not None
        t = i.wait.human_task
        table.add_row(
            i.intent_id, t.title, ", ".join(t.allowed_outcomes),
            ", ".join(t.assignees + ["group:" + g for g in t.groups]) or "anyone",
            short(i.wait.opened_at), short(i.wait.deadline_at),
        )  # fmt: skip
    console.print(table)


def _act(
    intent_id: str,
    outcome: str,
    who: str | None,
    group: list[str] | None,
    comment: str | None,
    data: list[str] | None,
    data_json: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    form = _form(data, data_json)
    with client(db, person(who, group)) as c:
        intent = c.respond(intent_id, outcome, comment=comment, data=form)
    if as_json:
        dump(intent)
    else:
        console.print(f"{outcome}: intent {intent.intent_id} is {intent.status.value}")


@app.command()
def approve(
    intent_id: str,
    who: AsOption = None,
    group: GroupOption = None,
    comment: CommentOption = None,
    data: DataOption = None,
    data_json: DataJsonOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve the intent's task (outcome 'approved')."""
    _act(intent_id, "approved", who, group, comment, data, data_json, db, as_json)


@app.command()
def reject(
    intent_id: str,
    who: AsOption = None,
    group: GroupOption = None,
    comment: CommentOption = None,
    data: DataOption = None,
    data_json: DataJsonOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reject the intent's task (outcome 'rejected')."""
    _act(intent_id, "rejected", who, group, comment, data, data_json, db, as_json)


@app.command()
def respond(
    intent_id: str,
    outcome: Annotated[str, typer.Option("--outcome", "-o", help="One of the task's outcomes.")],
    who: AsOption = None,
    group: GroupOption = None,
    comment: CommentOption = None,
    data: DataOption = None,
    data_json: DataJsonOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer the intent's task with any allowed outcome and the task's form."""
    _act(intent_id, outcome, who, group, comment, data, data_json, db, as_json)


@app.command()
def show(intent_id: str, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show a task: what is asked, its form, the payload, and the intent's audit trail."""
    with client(db) as c:
        intent = c.get_intent(intent_id)
        trail = c.list_events(intent_id)
    if as_json:
        dump(
            {
                "intent": intent.model_dump(mode="json"),
                "events": [e.model_dump(mode="json") for e in trail],
            }
        )
        return
    task = intent.human_task
    console.print(
        f"[bold]{task.title if task else intent.intent_type}[/bold]  ({intent.status.value})"
    )
    if task is not None:
        if task.description:
            console.print(task.description)
        console.print(f"outcomes: {', '.join(task.allowed_outcomes)}"
                      + ("; a comment is required" if task.required_comment else ""))  # fmt: skip
        if task.form_schema:
            console.print(f"form: {json.dumps(task.form_schema)}")
    console.print(f"payload: {json.dumps(intent.payload, ensure_ascii=False)}")
    table = Table("seq", "event", "actor", "at")
    for e in trail:
        table.add_row(str(e.seq), e.event_type, e.actor, short(e.at))
    console.print(table)
