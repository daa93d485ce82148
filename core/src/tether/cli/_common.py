"""What every command shares: the --db and --json options, opening a client, printing."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console

from ..client import Client, connect, person_from_settings
from ..errors import TetherError
from ..model import Principal
from ..settings import Settings

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", envvar="TETHER_DB", help="Store URL (sqlite:///path); default ./.tether/tether.db"
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@contextmanager
def client(db: str | None, actor: Principal | None = None) -> Iterator[Client]:
    """A client on the store, with tether's errors printed as one clear line and exit 1."""
    settings = Settings()
    try:
        with connect(db or settings.db, actor=actor, settings=settings) as c:
            yield c
    except TetherError as exc:
        err_console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        for item in exc.details.get("errors", []):
            err_console.print(f"  - {item.get('field') or '(form)'}: {item.get('message')}")
        raise typer.Exit(1) from None


def person(name: str | None, groups: list[str] | None) -> Principal:
    settings = Settings()
    if name:
        settings = settings.model_copy(update={"actor": name})
    if groups:
        settings = settings.model_copy(update={"groups": ",".join(groups)})
    return person_from_settings(settings)


def dump(value: Any) -> None:
    """Print a model, or a list of models, as JSON on stdout."""
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json")
    elif isinstance(value, list):
        data = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    else:
        data = value
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def short(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at is not None else ""
