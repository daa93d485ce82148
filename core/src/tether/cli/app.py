"""The ``tether`` command."""

from __future__ import annotations

import typer

from .. import __version__
from . import agents, audit, inbox, intents, serve, webhooks

app = typer.Typer(
    help="tether: durable execution for AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(intents.app, name="intents")
app.add_typer(inbox.app, name="inbox")
app.add_typer(audit.app, name="audit")
app.add_typer(serve.keys_app, name="keys")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(agents.app, name="agents")
app.command("serve")(serve.serve)
app.command("migrate")(serve.migrate)
app.command("worker")(serve.worker)


@app.command()
def version() -> None:
    """Print tether's version."""
    typer.echo(__version__)


@app.command()
def demo() -> None:
    """Run the refund story across real processes on a fresh store, offline."""
    from ..demo import run

    run()


def main() -> None:
    app()
