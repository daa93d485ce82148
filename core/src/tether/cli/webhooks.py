"""``tether webhooks add|list|remove|deliveries|replay``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from ..settings import Settings
from ._common import DbOption, JsonOption, client, console, dump, short

app = typer.Typer(help="Signed pushes of lifecycle events.", no_args_is_help=True)


@app.command()
def add(
    url: Annotated[str, typer.Argument(help="The receiver's URL.")],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", "-e", help="An event type (repeatable); default '*'."),
    ] = None,
    secret: Annotated[str | None, typer.Option(help="whsec_... (default: generated)")] = None,
    description: Annotated[str | None, typer.Option()] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Subscribe a URL; prints the signing secret once."""
    settings = Settings()
    with client(db) as c:
        sub = c.engine.subscribe(url, event or ["*"], secret=secret, description=description,
                                 allow_private=settings.webhook_allow_private)  # fmt: skip
    if as_json:
        dump(sub)
    else:
        console.print(
            f"subscription {sub.subscription_id} -> {sub.callback_url} ({', '.join(sub.event_types)})"
        )
        console.print(f"signing secret (shown once): {sub.secret}", markup=False, highlight=False)


@app.command("list")
def list_(all_: Annotated[bool, typer.Option("--all", help="Include removed ones.")] = False,
          db: DbOption = None, as_json: JsonOption = False) -> None:  # fmt: skip
    """List subscriptions."""
    with client(db) as c:
        subs = c.engine.list_subscriptions(include_inactive=all_)
    if as_json:
        dump(subs)
        return
    table = Table("subscription", "url", "events", "created", "removed")
    for s in subs:
        table.add_row(s.subscription_id, s.callback_url, ", ".join(s.event_types), short(s.created_at),
                      short(s.revoked_at))  # fmt: skip
    console.print(table)


@app.command()
def remove(subscription_id: str, db: DbOption = None) -> None:
    """Stop pushing to a subscription."""
    with client(db) as c:
        c.engine.revoke_subscription(subscription_id)
    console.print(f"subscription {subscription_id} removed")


@app.command()
def deliveries(subscription_id: str, limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
               db: DbOption = None, as_json: JsonOption = False) -> None:  # fmt: skip
    """A subscription's delivery log, newest first."""
    with client(db) as c:
        found = c.engine.list_deliveries(subscription_id, limit=limit)
    if as_json:
        dump(found)
        return
    table = Table("delivery (webhook-id)", "intent", "seq", "event", "status", "attempts", "last")
    for d in found:
        last = f"{d.last_status or ''} {d.last_error or ''}".strip()
        table.add_row(
            d.delivery_id,
            d.intent_id,
            str(d.seq),
            d.event_type,
            d.status.value,
            str(d.attempts),
            last,
        )
    console.print(table)


@app.command()
def replay(
    delivery_id: Annotated[str | None, typer.Argument(help="One delivery to send again.")] = None,
    subscription: Annotated[
        str | None, typer.Option("--subscription", help="Or a subscription's...")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="...deliveries created since (UTC)")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="...and until (UTC)")] = None,
    db: DbOption = None,
) -> None:
    """Send deliveries again, with the same webhook ids (receivers drop duplicates)."""
    from datetime import UTC

    aware = [d.replace(tzinfo=UTC) if d and d.tzinfo is None else d for d in (since, until)]
    with client(db) as c:
        queued = c.engine.replay_deliveries(delivery_id=delivery_id, subscription_id=subscription,
                                            since=aware[0], until=aware[1])  # fmt: skip
    console.print(f"{queued} deliver{'y' if queued == 1 else 'ies'} queued again")
