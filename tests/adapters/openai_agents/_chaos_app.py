"""The workload of the adapter's chaos test: agent runs whose every tool call is a side effect on
an "external system" that applies each idempotency key once.

The external system is a SQLite file (``CHAOS_EFFECTS``): ``applied`` has one row per key it
applied (a unique key, so a repeat is ignored), ``executions`` one row per call it received,
applied or not, with the pid of the process that made it. The idempotency key of a tool call
is its step key in tether: ``<intent id>:<journal key>``, the journal key being
``tool:<name>:<call id>``. Each tool body sleeps a little before and after the call, so a
SIGKILL lands inside tool calls often, on both sides of the effect; ``calls`` marks where each
body started and ended, so the test tells which kills landed inside one.

Three kinds of run, all for one agent (each model gives every tool call a fresh random call
id, as a real model does):

- ``chaos.plain.v1``: reserve, then ship;
- ``chaos.approval.v1``: reserve, then pay (which a person approves), then ship;
- ``chaos.fanout.v1``: reserve and check in one turn (parallel calls), then ship.

From a real process: ``python -m tether worker tests.adapters.openai_agents._chaos_app:worker``.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from contextlib import closing
from typing import Any

import tether
from agents import Agent, function_tool, set_tracing_disabled
from agents.tool_context import ToolContext
from tether_openai_agents import DurableRunner, requires_approval
from tether_openai_agents.testing import ScriptedModel, tool_call

set_tracing_disabled(True)

AGENT = "agent://chaos/agents"
PLAIN = "chaos.plain.v1"
APPROVAL = "chaos.approval.v1"
FANOUT = "chaos.fanout.v1"
KINDS = (PLAIN, APPROVAL, FANOUT)

TOOLS = {
    PLAIN: ("reserve", "ship"),
    APPROVAL: ("reserve", "pay", "ship"),
    FANOUT: ("reserve", "check", "ship"),
}
"""The tools each kind of run calls, each once."""

OUTPUTS = {"reserve": "reserved", "pay": "paid", "check": "checked", "ship": "shipped"}


def final(outputs: list[str]) -> str:
    return "done: " + " | ".join(outputs)


EXPECTED = {kind: final([OUTPUTS[tool] for tool in tools]) for kind, tools in TOOLS.items()}
"""The final output of each kind of run."""


def effects_db(path: str) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS executions "
            "(key TEXT NOT NULL, intent TEXT NOT NULL, tool TEXT NOT NULL, pid INTEGER NOT NULL)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS applied "
            "(key TEXT PRIMARY KEY, intent TEXT NOT NULL, tool TEXT NOT NULL)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS calls "
            "(key TEXT NOT NULL, pid INTEGER NOT NULL, phase TEXT NOT NULL)"
        )


def _db() -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(os.environ["CHAOS_EFFECTS"], timeout=60, isolation_level=None))


def external(key: str, intent_id: str, tool: str) -> None:
    """Call the external system with an idempotency key; it applies each key once."""
    with _db() as db:
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO executions (key, intent, tool, pid) VALUES (?, ?, ?, ?)",
            (key, intent_id, tool, os.getpid()),
        )
        db.execute(
            "INSERT OR IGNORE INTO applied (key, intent, tool) VALUES (?, ?, ?)",
            (key, intent_id, tool),
        )
        db.execute("COMMIT")


def _effect(ctx: ToolContext[Any]) -> str:
    """One tool call: a little work, the external call keyed by the call's step, a little more
    work before the adapter records the result."""
    intent_id = ctx.context
    key = f"{intent_id}:tool:{ctx.tool_name}:{ctx.tool_call_id}"
    _mark(key, "start")
    time.sleep(random.uniform(0.0, 0.25))
    external(key, intent_id, ctx.tool_name)
    time.sleep(random.uniform(0.0, 0.25))
    _mark(key, "end")
    return OUTPUTS[ctx.tool_name]


def _mark(key: str, phase: str) -> None:
    """Where this process is: a tool body started or ended (the test classifies its kills)."""
    with _db() as db:
        db.execute(
            "INSERT INTO calls (key, pid, phase) VALUES (?, ?, ?)", (key, os.getpid(), phase)
        )


@function_tool
def reserve(ctx: ToolContext[Any], order: str) -> str:
    """Reserve the goods of an order."""
    return _effect(ctx)


@function_tool
def check(ctx: ToolContext[Any], order: str) -> str:
    """Check an order's customer."""
    return _effect(ctx)


@requires_approval(timeout=7 * 86400)
@function_tool
def pay(ctx: ToolContext[Any], order: str, amount: int) -> str:
    """Pay an order's supplier."""
    return _effect(ctx)


@function_tool
def ship(ctx: ToolContext[Any], order: str) -> str:
    """Ship an order."""
    return _effect(ctx)


_ORDER = {"order": "o-1"}
_SCRIPTS = {
    PLAIN: [[tool_call("reserve", _ORDER)], [tool_call("ship", _ORDER)]],
    APPROVAL: [
        [tool_call("reserve", _ORDER)],
        [tool_call("pay", {**_ORDER, "amount": 500})],
        [tool_call("ship", _ORDER)],
    ],
    FANOUT: [
        [tool_call("reserve", _ORDER), tool_call("check", _ORDER)],
        [tool_call("ship", _ORDER)],
    ],
}
_TOOLS = {"reserve": reserve, "check": check, "pay": pay, "ship": ship}


def _intent_id(intent: tether.Intent) -> str:
    return intent.intent_id


def runners() -> dict[str, DurableRunner]:
    """One runner per kind of run; the run context is the intent's id."""
    out: dict[str, DurableRunner] = {}
    for kind, script in _SCRIPTS.items():
        agent: Agent[Any] = Agent(
            name=f"agent-{kind}",
            instructions="Handle the order.",
            tools=[_TOOLS[name] for name in TOOLS[kind]],
            model=ScriptedModel(script, final),
        )
        out[kind] = DurableRunner(agent, address=AGENT, intent_type=kind, context=_intent_id)
    return out


def worker() -> tether.Worker:
    """The worker ``tether worker`` runs: every kind of run, with short leases so a killed
    worker's run is taken over soon."""
    lease = float(os.environ.get("CHAOS_LEASE", "3"))
    w = tether.Worker(agent=AGENT, lease_seconds=lease, poll_seconds=0.1)
    for kind, runner in runners().items():
        w.handler(kind)(runner.handle)
    return w
