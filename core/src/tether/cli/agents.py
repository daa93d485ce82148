"""``tether agents list|show|pause|kill|resume|policy|events``: the mesh from a shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from ..model import Agent, AgentPolicy, AgentStatus, BreachAction, Health, Principal, SendMode
from ..settings import Settings
from ._common import DbOption, JsonOption, client, console, dump, err_console, person, short

app = typer.Typer(help="Agents: kill switch, pause, spend, tool scope, limits.",
                  no_args_is_help=True)  # fmt: skip

Address = Annotated[str, typer.Argument(help="agent://workspace/name (or workspace/name)")]
Reason = Annotated[str | None, typer.Option(help="Why; kept in the audit.")]
Generation = Annotated[
    int | None,
    typer.Option(help="The generation you read: refused if the agent changed since."),
]


def _address(value: str) -> str:
    return value if value.startswith("agent://") else f"agent://{value}"


def _operator() -> Principal:
    """An admin named after whoever runs the command, so the audit says who acted."""
    who = person(None, None)
    return Principal.admin(who.name, workspace=Settings().workspace)


def _details(details: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in details.items() if k != "policy"})


def _spend(agent: Agent) -> str:
    return f"${agent.spend.hour.cost_usd:.4f} / ${agent.spend.day.cost_usd:.4f}"


@app.command("list")
def list_(
    status: Annotated[AgentStatus | None, typer.Option()] = None,
    health: Annotated[Health | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Agents with their status, health and spend (this hour / today)."""
    with client(db) as c:
        agents = c.list_agents(status=status, health=health, limit=limit)
    if as_json:
        dump(agents)
        return
    table = Table("agent", "status", "health", "spend hour / day", "generation", "last heartbeat")
    for a in agents:
        table.add_row(a.address, a.status.value, a.health.value, _spend(a), str(a.generation),
                      short(a.last_heartbeat_at))  # fmt: skip
    console.print(table)


@app.command()
def show(address: Address, db: DbOption = None, as_json: JsonOption = False) -> None:
    """One agent: status, health, spend, policy and its latest mesh events."""
    with client(db) as c:
        agent = c.get_agent(_address(address))
        events = c.mesh_events(agent=agent.address, limit=1000)[-10:]
    if as_json:
        dump(agent)
        return
    console.print(f"[bold]{agent.address}[/bold]  {agent.status.value}"
                  + (f" ({agent.status_reason})" if agent.status_reason else ""))  # fmt: skip
    console.print(f"health {agent.health.value}, last heartbeat {short(agent.last_heartbeat_at)}")
    console.print(f"spend this hour ${agent.spend.hour.cost_usd:.4f} "
                  f"({agent.spend.hour.turns} turns), today ${agent.spend.day.cost_usd:.4f}")  # fmt: skip
    console.print(f"generation {agent.generation}; policy:")
    console.print_json(agent.policy.model_dump_json(exclude_defaults=True) or "{}")
    for e in events:
        console.print(f"  {short(e.at)}  {e.event_type:<22} {e.actor}  {_details(e.details)}",
                      markup=False, highlight=False)  # fmt: skip


def _status_command(status: AgentStatus, doc: str) -> None:
    def command(address: Address, reason: Reason = None, generation: Generation = None,
                db: DbOption = None, as_json: JsonOption = False) -> None:  # fmt: skip
        with client(db, actor=_operator()) as c:
            agent = c.engine.set_agent_status(
                _address(address), status, reason=reason, generation=generation
            )
        if as_json:
            dump(agent)
        else:
            console.print(
                f"{agent.address} is {agent.status.value} (generation {agent.generation})"
            )

    command.__doc__ = doc
    app.command({AgentStatus.KILLED: "kill", AgentStatus.PAUSED: "pause"}.get(status, "resume"))(
        command
    )


_status_command(
    AgentStatus.KILLED,
    "Kill an agent: its new intents are refused and its running ones stop at their next boundary.",
)
_status_command(
    AgentStatus.PAUSED, "Pause an agent: its work is held (not failed) until it is resumed."
)
_status_command(AgentStatus.ACTIVE, "Resume a killed or paused agent; held work goes on.")


@app.command()
def policy(
    address: Address,
    allow_tool: Annotated[list[str] | None, typer.Option(help="Allowed tool (wildcards).")] = None,
    deny_tool: Annotated[list[str] | None, typer.Option(help="Denied tool (wildcards).")] = None,
    all_tools: Annotated[bool, typer.Option(help="Allow every tool again.")] = False,
    max_cost_hour: Annotated[float | None, typer.Option(help="USD per UTC hour.")] = None,
    max_cost_day: Annotated[float | None, typer.Option(help="USD per UTC day.")] = None,
    on_breach: Annotated[BreachAction | None, typer.Option()] = None,
    approver_group: Annotated[list[str] | None, typer.Option()] = None,
    max_intents_hour: Annotated[int | None, typer.Option()] = None,
    max_intents_day: Annotated[int | None, typer.Option()] = None,
    send_mode: Annotated[SendMode | None, typer.Option()] = None,
    sender: Annotated[list[str] | None, typer.Option(help="For the send allow/deny list.")] = None,
    file: Annotated[Path | None, typer.Option(help="A whole policy as JSON.")] = None,
    generation: Generation = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show an agent's policy, or change it: options change their part, the rest is kept.

    Example: tether agents policy demo/refunds --allow-tool 'search_*' --max-cost-day 20
    """
    target = _address(address)
    with client(db, actor=_operator()) as c:
        current = c.register_agent(target)
        changes: dict[str, dict[str, Any]] = {"cost": {}, "limits": {}, "tools": {}, "send": {}}
        for section, key, value in (
            ("tools", "allow", allow_tool), ("tools", "deny", deny_tool),
            ("cost", "max_cost_per_hour_usd", max_cost_hour),
            ("cost", "max_cost_per_day_usd", max_cost_day),
            ("cost", "action_on_breach", on_breach), ("cost", "approver_groups", approver_group),
            ("limits", "max_intents_per_hour", max_intents_hour),
            ("limits", "max_intents_per_day", max_intents_day),
            ("send", "mode", send_mode), ("send", "senders", sender),
        ):  # fmt: skip
            if value is not None:
                changes[section][key] = value
        if all_tools:
            changes["tools"]["allow"] = None
        try:
            if file is not None:
                new = AgentPolicy.model_validate_json(file.read_text())
            else:
                data = current.policy.model_dump(mode="json")
                for section, values in changes.items():
                    data[section].update(values)
                new = AgentPolicy.model_validate(data)
        except (ValidationError, OSError) as exc:
            err_console.print(f"[red]error[/red] (invalid_policy): {exc}")
            raise typer.Exit(1) from None
        agent = current
        if new != current.policy:
            expected = generation if generation is not None else current.generation
            agent = c.set_policy(target, new, generation=expected)
    if as_json:
        dump(agent)
        return
    console.print(f"{agent.address} generation {agent.generation}")
    console.print_json(agent.policy.model_dump_json())


@app.command()
def events(
    address: Annotated[str | None, typer.Argument(help="Only this agent.")] = None,
    event_type: Annotated[str | None, typer.Option("--type")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The mesh's audit: kills, pauses, resumes, policy changes and refusals, with who."""
    with client(db) as c:
        found = c.mesh_events(
            agent=_address(address) if address else None, event_type=event_type, limit=limit
        )
    if as_json:
        dump(found)
        return
    table = Table("#", "at", "agent", "event", "actor", "details")
    for e in found:
        table.add_row(str(e.event_id), short(e.at), e.agent, e.event_type, e.actor,
                      _details(e.details)[:120])  # fmt: skip
    console.print(table)
