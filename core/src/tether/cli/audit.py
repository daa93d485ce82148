"""``tether audit verify``."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import DbOption, JsonOption, client, console, dump

app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


@app.command()
def verify(
    intent_id: Annotated[
        str | None, typer.Argument(help="One intent; default every intent.")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute every hash chain; exit 1 if any event was changed, removed or reordered."""
    with client(db) as c:
        report = c.verify_audit(intent_id)
    if as_json:
        dump(report)
    elif report.ok:
        console.print(
            f"[green]audit chain intact[/green]: {report.intents_checked} intents, "
            f"{report.events_checked} events verified"
        )
    else:
        console.print(f"[red]audit chain BROKEN[/red]: {len(report.problems)} problem(s)")
        for problem in report.problems:
            console.print(f"  - {problem}")
    if not report.ok:
        raise typer.Exit(1)
