"""The mesh: each agent's status, policy, heartbeats and spend, and the checks at its
boundaries (a new intent, a claim, a step, a tool call, a model turn).

Every change of status or policy bumps the agent's ``generation`` (compare-and-set for
writers, a cheap version for watchers) and is recorded in ``mesh_events`` with its actor.
Denials are recorded too: on the intent's own trail when there is an intent (``tool.denied``,
``intent.held``), in the mesh's audit when there is none (``intent.refused``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from ..clock import from_text, to_text
from ..errors import (
    AgentKilled,
    AgentPaused,
    AgentStopped,
    ApprovalPending,
    CorruptStore,
    IntentTerminal,
    InvalidRequest,
    NotFound,
    RateLimited,
    SenderNotAllowed,
    StaleGeneration,
    TetherError,
    ToolDenied,
)
from ..ids import new_id
from ..model import (
    Agent,
    AgentPolicy,
    AgentStatus,
    BreachAction,
    Health,
    HumanTask,
    MeshEvent,
    Spend,
    SpendWindow,
    Status,
    UsageReport,
    WaitKind,
    WaitSpec,
)
from ..model.base import agent_address
from ..store import AGENT_CHANGES, Tx, work_for
from .context import Ctx
from .records import IntentRow, dumps, for_update, load_intent, loads
from .transitions import append_event

STALE_AFTER_SECONDS = 90.0
"""An agent whose last heartbeat is older than this is ``stale`` (three missed 30 s beats)."""

SPEND_WAIT_KEY = "tether.spend"
"""Prefix of the key of the human wait a ``require_approval`` spend cap opens."""

AGENT_COLUMNS = (
    "address, workspace, status, status_reason, generation, policy, heartbeat_at, metrics, "
    "created_at, updated_at, schema_version"
)
MICROS = 1_000_000


@dataclass
class AgentRow:
    address: str
    workspace: str
    status: AgentStatus
    status_reason: str | None
    generation: int
    policy: AgentPolicy
    heartbeat_at: str | None
    metrics: dict[str, Any]
    created_at: str
    updated_at: str
    schema_version: int

    @classmethod
    def from_row(cls, r: tuple[Any, ...]) -> AgentRow:
        try:
            policy = _policy(r[5])
        except ValidationError as exc:
            raise CorruptStore(f"stored policy of {r[0]} is not valid") from exc
        return cls(
            address=r[0],
            workspace=r[1],
            status=AgentStatus(r[2]),
            status_reason=r[3],
            generation=int(r[4]),
            policy=policy,
            heartbeat_at=r[6],
            metrics=loads(r[7], "agent metrics") or {},
            created_at=r[8],
            updated_at=r[9],
            schema_version=int(r[10]),
        )


@functools.lru_cache(maxsize=1024)
def _policy(stored: str | None) -> AgentPolicy:
    """A stored policy, parsed once per distinct text (policies are immutable models, and
    every claim and boundary reads the agent's)."""
    return AgentPolicy.model_validate_json(stored) if stored else AgentPolicy()


def find(
    tx: Tx, ctx: Ctx, address: str, *, lock: bool = False, workspace: str | None = None
) -> AgentRow | None:
    """The agent of this address in ``workspace`` (the actor's, unless given): each workspace
    has its own agents, whatever their addresses say."""
    r = tx.one(
        f"SELECT {AGENT_COLUMNS} FROM agents WHERE workspace = ? AND address = ?"
        f"{for_update(tx) if lock else ''}",
        (workspace or ctx.actor.workspace, address),
    )
    return AgentRow.from_row(r) if r is not None else None


def load(
    tx: Tx, ctx: Ctx, address: str, *, lock: bool = False, workspace: str | None = None
) -> AgentRow:
    row = find(tx, ctx, address, lock=lock, workspace=workspace)
    if row is None:
        raise NotFound(f"no agent {address}", details={"agent": address})
    return row


def register(tx: Tx, ctx: Ctx, address: str, workspace: str | None = None) -> None:
    """An agent exists once it is used: register it if it is new (active, open policy), in
    ``workspace`` (the actor's, unless given)."""
    tx.execute(
        "INSERT INTO agents (address, workspace, status, created_at, updated_at, schema_version) "
        "VALUES (?, ?, 'active', ?, ?, 1) ON CONFLICT DO NOTHING",
        (address, workspace or ctx.actor.workspace, ctx.now_text, ctx.now_text),
    )


def ensure(
    tx: Tx, ctx: Ctx, address: str, *, lock: bool = False, workspace: str | None = None
) -> AgentRow:
    """The agent, registered now if it was never used. Its address must be one, as over HTTP
    (an intent's addresses were checked with the intent; this is the agent calls' way in)."""
    try:
        agent_address(address)
    except ValueError as exc:
        raise InvalidRequest(
            str(exc), code="invalid_agent_address", details={"agent": address[:400]}
        ) from None
    register(tx, ctx, address, workspace)
    return load(tx, ctx, address, lock=lock, workspace=workspace)


# -- windows and spend -------------------------------------------------------------------------


def _windows(now: datetime) -> tuple[datetime, datetime]:
    """The start of the current UTC hour and day."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    return hour, hour.replace(hour=0)


def _window(r: tuple[Any, ...]) -> SpendWindow:
    return SpendWindow(
        cost_usd=int(r[0] or 0) / MICROS,
        tokens_in=int(r[1] or 0),
        tokens_out=int(r[2] or 0),
        turns=int(r[3] or 0),
    )


def agent_spend(tx: Tx, ctx: Ctx, address: str, workspace: str | None = None) -> Spend:
    hour, day = (to_text(t) for t in _windows(ctx.now))
    r = tx.one(
        "SELECT SUM(CASE WHEN at >= ? THEN cost_micros ELSE 0 END), "
        "SUM(CASE WHEN at >= ? THEN tokens_in ELSE 0 END), "
        "SUM(CASE WHEN at >= ? THEN tokens_out ELSE 0 END), "
        "SUM(CASE WHEN at >= ? AND intent_id <> '' THEN 1 ELSE 0 END), "
        "SUM(cost_micros), SUM(tokens_in), SUM(tokens_out), "
        "SUM(CASE WHEN intent_id <> '' THEN 1 ELSE 0 END) "
        "FROM usage WHERE agent = ? AND at >= ? AND workspace = ?",
        (hour, hour, hour, hour, address, day, workspace or ctx.actor.workspace),
    )
    assert r is not None
    return Spend(hour=_window(r[:4]), day=_window(r[4:]))


def intent_spend(tx: Tx, intent_id: str) -> SpendWindow:
    r = tx.one(
        "SELECT SUM(cost_micros), SUM(tokens_in), SUM(tokens_out), COUNT(*) "
        "FROM usage WHERE intent_id = ?",
        (intent_id,),
    )
    assert r is not None
    return _window(r)


def _breach(row: AgentRow, spend: Spend, now: datetime) -> tuple[str, datetime] | None:
    """The cap the spend is at or over, as (window label, when the window ends), or None."""
    cost = row.policy.cost
    hour, day = _windows(now)
    if cost.max_cost_per_day_usd is not None and spend.day.cost_usd >= cost.max_cost_per_day_usd:
        return f"day:{day.date().isoformat()}", day + timedelta(days=1)
    if cost.max_cost_per_hour_usd is not None and spend.hour.cost_usd >= cost.max_cost_per_hour_usd:
        return f"hour:{hour.strftime('%Y-%m-%dT%H')}", hour + timedelta(hours=1)
    return None


# -- the agent as the API shows it ----------------------------------------------------------


def health(row: AgentRow, now: datetime, stale_after: float = STALE_AFTER_SECONDS) -> Health:
    if row.heartbeat_at is None:
        return Health.UNKNOWN
    fresh = from_text(row.heartbeat_at) >= now - timedelta(seconds=stale_after)
    return Health.ACTIVE if fresh else Health.STALE


def to_model(tx: Tx, ctx: Ctx, row: AgentRow, spend: Spend | None = None) -> Agent:
    return Agent(
        address=row.address,
        workspace=row.workspace,
        status=row.status,
        status_reason=row.status_reason,
        health=health(row, ctx.now),
        last_heartbeat_at=from_text(row.heartbeat_at) if row.heartbeat_at else None,
        generation=row.generation,
        policy=row.policy,
        spend=spend if spend is not None else agent_spend(tx, ctx, row.address, row.workspace),
        metrics=row.metrics,
        created_at=from_text(row.created_at),
        updated_at=from_text(row.updated_at),
        schema_version=row.schema_version,
    )


def get(tx: Tx, ctx: Ctx, address: str) -> Agent:
    return to_model(tx, ctx, load(tx, ctx, address))


def list_agents(
    tx: Tx,
    ctx: Ctx,
    *,
    status: AgentStatus | None,
    health_is: Health | None,
    after: str | None,
    limit: int,
) -> list[Agent]:
    where, params = ["workspace = ?"], [ctx.actor.workspace]
    if status is not None:
        where.append("status = ?")
        params.append(status.value)
    if health_is is not None:
        cutoff = to_text(ctx.now - timedelta(seconds=STALE_AFTER_SECONDS))
        where.append(
            {
                Health.UNKNOWN: "heartbeat_at IS NULL",
                Health.ACTIVE: "heartbeat_at >= ?",
                Health.STALE: "heartbeat_at < ?",
            }[health_is]
        )
        if health_is is not Health.UNKNOWN:
            params.append(cutoff)
    if after is not None:
        where.append("address > ?")
        params.append(after)
    rows = tx.all(
        f"SELECT {AGENT_COLUMNS} FROM agents WHERE {' AND '.join(where)} ORDER BY address LIMIT ?",
        (*params, limit),
    )
    return [to_model(tx, ctx, AgentRow.from_row(r)) for r in rows]


# -- changes: status, policy, heartbeats ------------------------------------------------------


def record(tx: Tx, ctx: Ctx, agent: str, event_type: str, details: dict[str, Any]) -> None:
    """One entry in the mesh's audit."""
    tx.execute_later(
        "INSERT INTO mesh_events (workspace, agent, event_type, actor, at, details) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (ctx.actor.workspace, agent, event_type, ctx.actor.actor, ctx.now_text, dumps(details)),
    )


def _for_change(tx: Tx, ctx: Ctx, address: str, generation: int | None) -> AgentRow:
    row = ensure(tx, ctx, address, lock=True)
    if generation is not None and generation != row.generation:
        raise StaleGeneration(
            f"{address} is at generation {row.generation}, not {generation}; read it again",
            details={"agent": address, "generation": row.generation, "expected": generation},
        )
    return row


_VERBS = {
    AgentStatus.KILLED: "agent.killed",
    AgentStatus.PAUSED: "agent.paused",
    AgentStatus.ACTIVE: "agent.resumed",
}


def set_status(
    tx: Tx,
    ctx: Ctx,
    address: str,
    status: AgentStatus,
    reason: str | None,
    generation: int | None,
) -> Agent:
    """Kill, pause or resume an agent. Setting the status it has changes nothing."""
    row = _for_change(tx, ctx, address, generation)
    if row.status is not status:
        tx.execute(
            "UPDATE agents SET status = ?, status_reason = ?, generation = generation + 1, "
            "updated_at = ? WHERE workspace = ? AND address = ?",
            (status.value, reason, ctx.now_text, row.workspace, address),
        )
        tx.touch(AGENT_CHANGES)
        if status is AgentStatus.ACTIVE:  # its held work may be claimed again
            tx.touch(work_for(address))
        details: dict[str, Any] = {
            "from": row.status.value,
            "to": status.value,
            "generation": row.generation + 1,
        }
        if reason:
            details["reason"] = reason
        record(tx, ctx, address, _VERBS[status], details)
    return get(tx, ctx, address)


def set_policy(
    tx: Tx, ctx: Ctx, address: str, policy: AgentPolicy, generation: int | None
) -> Agent:
    """Replace an agent's policy (compare-and-set on ``generation`` when it is given)."""
    row = _for_change(tx, ctx, address, generation)
    if policy != row.policy:
        tx.execute(
            "UPDATE agents SET policy = ?, generation = generation + 1, updated_at = ? "
            "WHERE workspace = ? AND address = ?",
            (policy.model_dump_json(), ctx.now_text, row.workspace, address),
        )
        tx.touch(AGENT_CHANGES)
        old, new = row.policy.model_dump(mode="json"), policy.model_dump(mode="json")
        record(
            tx,
            ctx,
            address,
            "agent.policy_updated",
            {
                "old_generation": row.generation,
                "generation": row.generation + 1,
                "changed": sorted(k for k in new if new[k] != old[k]),
                "policy": new,
            },
        )
    return get(tx, ctx, address)


_METRIC_KEYS = ("intents_total", "intents_succeeded", "intents_failed", "avg_latency_ms")


def heartbeat(tx: Tx, ctx: Ctx, address: str, metrics: dict[str, Any] | None) -> Agent:
    """The agent is alive. AXP's metric buffer rides along; its ``cost_usd`` counts as the
    agent's spend (not tied to an intent)."""
    row = ensure(tx, ctx, address, lock=True)
    before = health(row, ctx.now)
    kept = dict(row.metrics)
    cost = 0.0
    for key, value in (metrics or {}).items():
        if key == "cost_usd" and isinstance(value, int | float) and 0 <= value < 1e9:
            cost = float(value)
        elif key in _METRIC_KEYS and isinstance(value, int | float):
            kept[key] = value
    tx.execute_later(
        "UPDATE agents SET heartbeat_at = ?, metrics = ? WHERE workspace = ? AND address = ?",
        (ctx.now_text, dumps(kept), row.workspace, address),
    )
    if cost:
        _insert_usage(tx, ctx, "", address, None, 0, 0, cost)
    if before is not Health.ACTIVE:
        record(tx, ctx, address, "agent.health", {"from": before.value, "to": "active"})
    row.heartbeat_at, row.metrics = ctx.now_text, kept
    return to_model(tx, ctx, row)


def events(
    tx: Tx, ctx: Ctx, *, agent: str | None, event_type: str | None, after: int, limit: int
) -> list[MeshEvent]:
    where, params = ["workspace = ?", "event_id > ?"], [ctx.actor.workspace, after]
    if agent is not None:
        where.append("agent = ?")
        params.append(agent)
    if event_type is not None:
        where.append("event_type = ?")
        params.append(event_type)
    rows = tx.all(
        "SELECT event_id, agent, event_type, actor, at, details FROM mesh_events "
        f"WHERE {' AND '.join(where)} ORDER BY event_id LIMIT ?",
        (*params, limit),
    )
    return [
        MeshEvent(
            event_id=r[0],
            agent=r[1],
            event_type=r[2],
            actor=r[3],
            at=from_text(r[4]),
            details=loads(r[5], "mesh event") or {},
        )
        for r in rows
    ]


# -- checks ------------------------------------------------------------------------------------


def _stopped(row: AgentRow) -> AgentStopped | None:
    if row.status is AgentStatus.KILLED:
        return AgentKilled(
            f"{row.address} is killed", details={"agent": row.address, "reason": row.status_reason}
        )
    if row.status is AgentStatus.PAUSED:
        return AgentPaused(
            f"{row.address} is paused", details={"agent": row.address, "reason": row.status_reason}
        )
    return None


def admit(tx: Tx, ctx: Ctx, to_agent: str, sender: str | None) -> bool:
    """May this new intent be created? Raises the refusal (403 or 429) if not; returns
    whether the receiver is registered already.

    A killed receiver refuses new intents; a paused one takes them and holds them. A killed
    or paused sender may not send. Then the receiver's send policy, intent limits and (with
    ``block``) spend caps.
    """
    if sender is not None:
        source = find(tx, ctx, sender)
        if source is not None and (stop := _stopped(source)) is not None:
            raise stop
    target = find(tx, ctx, to_agent)
    if target is None:
        return False
    if _counts_for_admission(target.policy):
        # the count (or the spend) must not move between the check and the commit: creates
        # for this agent take its row's lock and count one after another (and the count,
        # a statement of its own, sees what the lock's previous holder committed)
        target = find(tx, ctx, to_agent, lock=True) or target
    if target.status is AgentStatus.KILLED:
        raise AgentKilled(
            f"{to_agent} is killed; it accepts no new intents",
            details={"agent": to_agent, "reason": target.status_reason},
        )
    policy = target.policy
    who = sender or ctx.actor.actor
    if not policy.send.allows(who):
        raise SenderNotAllowed(
            f"{to_agent} does not accept intents from {who}",
            details={"agent": to_agent, "sender": who, "mode": policy.send.mode.value},
        )
    hour, day = _windows(ctx.now)
    for cap, start, end, label in (
        (policy.limits.max_intents_per_hour, hour, hour + timedelta(hours=1), "hour"),
        (policy.limits.max_intents_per_day, day, day + timedelta(days=1), "day"),
    ):
        if cap is None:
            continue
        r = tx.one(
            "SELECT COUNT(*) FROM intents WHERE to_agent = ? AND created_at >= ?",
            (to_agent, to_text(start)),
        )
        if r is not None and int(r[0]) >= cap:
            raise RateLimited(
                f"{to_agent} has had its {cap} intents this {label}",
                code="intent_limit_exceeded",
                retry_after=max(1.0, (end - ctx.now).total_seconds()),
                details={"agent": to_agent, "limit": cap, "window": label},
            )
    capped = policy.cost.max_cost_per_hour_usd is not None or (
        policy.cost.max_cost_per_day_usd is not None
    )
    if capped and policy.cost.action_on_breach is BreachAction.BLOCK:
        breach = _breach(target, agent_spend(tx, ctx, to_agent), ctx.now)
        if breach is not None:
            window, end = breach
            raise RateLimited(
                f"{to_agent} is over its spend cap for this {window.split(':')[0]}",
                code="spend_cap_exceeded",
                retry_after=max(1.0, (end - ctx.now).total_seconds()),
                details={"agent": to_agent, "window": window},
            )
    return True


def _counts_for_admission(policy: AgentPolicy) -> bool:
    """Whether admitting an intent to an agent of this policy counts what it has had."""
    limits, cost = policy.limits, policy.cost
    return (
        limits.max_intents_per_hour is not None
        or limits.max_intents_per_day is not None
        or (
            cost.action_on_breach is BreachAction.BLOCK
            and (cost.max_cost_per_hour_usd is not None or cost.max_cost_per_day_usd is not None)
        )
    )


def check_claim(tx: Tx, ctx: Ctx, agent: str, workspace: str | None = None) -> AgentStopped | None:
    """Why the agent may not take work now, or None."""
    row = find(tx, ctx, agent, workspace=workspace)
    return _stopped(row) if row is not None else None


def not_stopped_sql(ctx: Ctx, agent: str) -> tuple[str, list[object]]:
    """:func:`check_claim` as a condition of the claim's own statement (one round trip
    fewer): true unless ``agent`` (of the actor's workspace, where a claim looks for work) is
    paused or killed."""
    stopped = f"'{AgentStatus.PAUSED.value}', '{AgentStatus.KILLED.value}'"
    sql = (
        "NOT EXISTS (SELECT 1 FROM agents WHERE agents.workspace = ? AND agents.address = ? "
        f"AND agents.status IN ({stopped}))"
    )
    return sql, [ctx.actor.workspace, agent]


def boundary(
    tx: Tx,
    ctx: Ctx,
    intent_id: str,
    tool: str | None,
    lease_token: str | None,
    *,
    write: bool,
) -> TetherError | None:
    """Whether the work on an intent may go on past this boundary, and if not, why.

    Read first (``write=False``: nothing is written); a refusal is then evaluated again in a
    write (``write=True``) that records it: a stop releases the intent's lease with an
    ``intent.held`` event (once), a tool outside scope is a ``tool.denied`` event.
    """
    from .intents import check_lease

    row = load_intent(tx, intent_id, ctx.actor)
    if row.status.terminal:
        return IntentTerminal(
            f"intent {intent_id} is {row.status.value}; stop working on it",
            details={"intent_id": intent_id, "status": row.status.value},
        )
    agent = find(tx, ctx, row.to_agent, workspace=row.workspace)
    stop = _stopped(agent) if agent is not None else None
    if stop is None and row.status is Status.WAITING and _spend_wait_open(tx, row):
        stop = ApprovalPending(
            f"intent {intent_id} waits for a person to approve its agent's spend",
            details={"intent_id": intent_id, "wait_id": row.wait_id, "agent": row.to_agent},
        )
    if stop is not None:
        mine = lease_token is None or lease_token == row.lease_token
        if write and mine and row.lease_token is not None and row.status is not Status.WAITING:
            details: dict[str, Any] = {"reason": stop.code}
            if tool is not None:
                details["tool"] = tool
            append_event(tx, ctx, row, "intent.held", details=details, release_lease=True)
        return stop
    check_lease(row, ctx, lease_token)
    if tool is not None and agent is not None and not agent.policy.tools.allows(tool):
        if write:
            append_event(tx, ctx, row, "tool.denied", details={"tool": tool})
        return ToolDenied(
            f"{row.to_agent} may not call the tool {tool!r}",
            details={"agent": row.to_agent, "tool": tool, "intent_id": intent_id},
        )
    return None


def _spend_wait_open(tx: Tx, row: IntentRow) -> bool:
    r = tx.one("SELECT wait_key FROM waits WHERE wait_id = ?", (row.wait_id,))
    return r is not None and str(r[0]).startswith(SPEND_WAIT_KEY)


def _insert_usage(
    tx: Tx,
    ctx: Ctx,
    intent_id: str,
    agent: str,
    model: str | None,
    tokens_in: int,
    tokens_out: int,
    cost_usd: float,
) -> None:
    tx.execute_later(
        "INSERT INTO usage (usage_id, intent_id, agent, workspace, at, model, tokens_in, "
        "tokens_out, cost_micros) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (new_id(), intent_id, agent, ctx.actor.workspace, ctx.now_text, model, tokens_in,
         tokens_out, round(cost_usd * MICROS)),
    )  # fmt: skip


def report_usage(
    tx: Tx,
    ctx: Ctx,
    intent_id: str,
    model: str | None,
    tokens_in: int,
    tokens_out: int,
    cost_usd: float,
    lease_token: str | None,
    *,
    totals: bool = True,
) -> UsageReport | None:
    """Record one model turn's usage on the intent (a ``model.usage`` event) and the agent's
    spend. If this crosses a ``require_approval`` cap, open the human task that decides
    whether the intent goes on (once per intent and window). Without ``totals`` (a caller
    that only needs the approval), nothing is added up unless a cost cap is set, and None
    comes back when there is nothing to report."""
    from .intents import check_lease
    from .waits import open_wait

    if min(tokens_in, tokens_out) < 0 or not 0 <= cost_usd < 1e9:
        raise InvalidRequest("tokens and cost are non-negative numbers")
    row = load_intent(tx, intent_id, ctx.actor)
    if row.status.terminal:
        raise IntentTerminal(
            f"intent {intent_id} is {row.status.value}", details={"intent_id": intent_id}
        )
    check_lease(row, ctx, lease_token)
    _insert_usage(tx, ctx, intent_id, row.to_agent, model, tokens_in, tokens_out, cost_usd)
    details: dict[str, Any] = {
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost_usd": cost_usd,
    }
    if model is not None:
        details["model"] = model
    append_event(tx, ctx, row, "model.usage", details=details)
    agent = find(tx, ctx, row.to_agent, workspace=row.workspace) or ensure(
        tx, ctx, row.to_agent, workspace=row.workspace
    )
    cost = agent.policy.cost
    capped = cost.max_cost_per_hour_usd is not None or cost.max_cost_per_day_usd is not None
    if not (capped or totals):  # the common case on the hot path: nothing to add up
        return None
    spend = agent_spend(tx, ctx, row.to_agent, row.workspace)
    wait_id = None
    breach = _breach(agent, spend, ctx.now)
    if (
        breach is not None
        and cost.action_on_breach is BreachAction.REQUIRE_APPROVAL
        and row.status is not Status.WAITING
    ):
        window, _ = breach
        caps = cost.model_dump(exclude_none=True, include={"max_cost_per_hour_usd",
                                                           "max_cost_per_day_usd"})  # fmt: skip
        spec = WaitSpec(
            kind=WaitKind.HUMAN,
            key=f"{SPEND_WAIT_KEY}:{window}",
            human_task=HumanTask(
                title=f"{row.to_agent} is over its spend cap: continue this intent?",
                description=(
                    f"Spend this hour ${spend.hour.cost_usd:.4f}, today ${spend.day.cost_usd:.4f}; "
                    f"caps {caps}. Approve to let intent {intent_id} go on for the rest of "
                    f"this {window.split(':')[0]}; reject to fail it."
                ),
                groups=cost.approver_groups,
            ),
        )
        known = tx.one(
            "SELECT wait_id FROM waits WHERE intent_id = ? AND wait_key = ?",
            (intent_id, spec.key),
        )
        if known is None:
            wait_id = open_wait(tx, ctx, row, spec, None).wait_id
    return UsageReport(intent=intent_spend(tx, intent_id), agent=spend, approval_wait_id=wait_id)


def is_spend_wait(key: str | None) -> bool:
    return key is not None and key.startswith(SPEND_WAIT_KEY)
