"""``tether serve`` and ``tether keys create|list|revoke``."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer
from rich.table import Table

from ..model import KeyRole
from ._common import DbOption, JsonOption, client, console, dump, err_console

keys_app = typer.Typer(help="API keys for the HTTP server (stored hashed).", no_args_is_help=True)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(envvar="TETHER_HOST", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(envvar="TETHER_PORT", min=0, max=65535, help="Port to listen on.")
    ] = 8700,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Run the HTTP server (AXP's intent API, tether's extensions, /metrics, /openapi.json)."""
    from ..server import create_app
    from ..server.serving import run
    from ..settings import Settings

    with client(db) as c:
        engine = c.engine
        if not _loopback(host) and not engine.has_keys():
            err_console.print(
                f"[red]refusing to bind {host}[/red]: the store has no API keys, so anyone who "
                "can reach this address could act as admin. Create one first: "
                "tether keys create --role admin"
            )
            raise typer.Exit(2)
        if not engine.has_keys():
            err_console.print(
                "[yellow]development mode[/yellow]: no API keys exist, requests act as the local "
                "admin (loopback only). Create keys with tether keys create."
            )
        app = create_app(engine, Settings())
        console.print(f"tether serving {c.store.url} on http://{host}:{port}")
        run(app, host=host, port=port, log_level=log_level)


def migrate(db: DbOption = None) -> None:
    """Upgrade the store's schema in place to this release (safe with replicas running)."""
    from ..errors import StoreError
    from ..settings import Settings
    from ..store import LATEST, open_store

    try:
        store = open_store(db or Settings().db)
    except StoreError as exc:
        err_console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(1) from None
    version = store.schema_version
    store.close()
    console.print(f"the store is at schema version {version} (this release knows {LATEST})")


def worker(
    target: Annotated[
        str, typer.Argument(help="MODULE:OBJECT, a tether.Worker (or a function returning one).")
    ],
    db: DbOption = None,
    url: Annotated[
        str | None, typer.Option("--url", envvar="TETHER_URL", help="A server to talk to.")
    ] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="TETHER_API_KEY")] = None,
) -> None:
    """Run a worker: claim its agent's intents and run their handlers until stopped."""
    import signal
    import sys

    from ..client import connect
    from ..errors import TetherError
    from ..worker import load

    sys.path.insert(0, "")
    try:
        w = load(target)
        c = connect(url or db, api_key=api_key)
    except (TetherError, ImportError, AttributeError) as exc:
        err_console.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(1) from None
    if not w.handlers:
        c.close()
        err_console.print(f"[red]error[/red]: {target} has no handlers (@worker.handler(type))")
        raise typer.Exit(1)
    signal.signal(signal.SIGTERM, lambda *_: w.stop())
    console.print(f"worker for {w.agent} ({', '.join(w.handlers)}) as {w.owner}")
    try:
        w.run(c)
    except KeyboardInterrupt:
        pass
    except TetherError as exc:  # (a bad or revoked key, another agent's key...)
        err_console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(1) from None
    finally:
        c.close()


@keys_app.command("create")
def create_key(
    role: Annotated[KeyRole, typer.Option("--role", help="admin, agent or approver.")],
    agent: Annotated[
        str | None, typer.Option("--agent", help="The agent an agent key acts as.")
    ] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="The person an approver key is.")
    ] = None,
    group: Annotated[
        list[str] | None, typer.Option("--group", help="An approver's group (repeatable).")
    ] = None,
    workspace: Annotated[str, typer.Option("--workspace", help="The key's workspace.")] = "default",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it once (it is stored only as a hash)."""
    with client(db) as c:
        made = c.engine.create_key(
            role, agent=agent, subject=subject, groups=group or [], workspace=workspace
        )
    if as_json:
        dump({"key": made.secret, "key_id": made.key.key_id, "role": role.value})
    else:
        console.print(f"key {made.key.key_id} ({role.value}); shown once, keep it safe:")
        console.print(made.secret, markup=False, highlight=False)


@keys_app.command("list")
def list_keys(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List keys (never their secrets)."""
    with client(db) as c:
        found = c.engine.list_keys()
    if as_json:
        dump(found)
        return
    table = Table("key id", "role", "agent / subject", "groups", "workspace", "created", "revoked")
    for k in found:
        table.add_row(
            k.key_id, k.role.value, k.agent or k.subject or "", ", ".join(k.groups), k.workspace,
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "",
        )  # fmt: skip
    console.print(table)


@keys_app.command("revoke")
def revoke_key(key_id: str, db: DbOption = None) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    with client(db) as c:
        c.engine.revoke_key(key_id)
    console.print(f"key {key_id} revoked")
