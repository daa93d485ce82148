"""OpenAI Agents adapter benchmark: what durability costs per tool call, against the bare SDK.

One process, a fresh temporary store, the scripted offline model (no network, tracing off).
The same agent runs the same script two ways, interleaved so both see the same machine:

- **bare**: the SDK's ``Runner.run`` on the agent as the user wrote it;
- **durable**: ``DurableRunner.run`` on tether (in-process SQLite, WAL, ``synchronous=FULL``;
  and, for reference, over HTTP to a server on loopback): an intent is created, claimed and
  completed, and every model turn and tool call is journaled (one durable write each).

A run makes ``N`` tool calls. With one call per model turn (the worst case: each call brings
its own model turn, so two durable writes) the cost per tool call is the slope of the run
time over ``N`` (runs with ``N`` = 4 and ``N`` = 24), durable minus bare; the fixed cost per
run (create, claim, start, complete) is reported apart. With four calls per turn, the four
journal writes of a turn share one commit. Target: at most 1 ms per tool call in-process.

Run with the adapter's environment::

    adapters/openai_agents/.venv/bin/python bench/openai_agents.py           # under a minute
    adapters/openai_agents/.venv/bin/python bench/openai_agents.py --quick   # a smoke run

Results are printed and written to ``bench/results/openai_agents.json``. A benchmark, not a
test: the numbers depend on the disk's sync rate and on what else the machine runs.
"""

from __future__ import annotations

import os
import sys

# The repository root, for the test suite's server harness.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"

import argparse
import asyncio
import json
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tether
from agents import Agent, Runner, function_tool, set_tracing_disabled
from rich.console import Console
from rich.table import Table
from tether_openai_agents import DurableRunner
from tether_openai_agents.testing import ScriptedModel, tool_call

from tests.server_harness import running_server

set_tracing_disabled(True)

ADDRESS = "agent://bench/agents"
SMALL, LARGE = 4, 24
TARGET_MS = 1.0
RESULTS = Path(__file__).resolve().parent / "results" / "openai_agents.json"
console = Console(width=None if sys.stdout.isatty() else 110)


@function_tool
def add(x: int) -> str:
    """Add one to x."""
    return str(x + 1)


def agent(calls: int, per_turn: int) -> Agent[Any]:
    turns = [
        [tool_call("add", {"x": t * per_turn + i}) for i in range(per_turn)]
        for t in range(calls // per_turn)
    ]
    return Agent(name="bench", tools=[add], model=ScriptedModel(turns, "done"))


def median_seconds(fn: Callable[[], Awaitable[Any]], rounds: int) -> float:
    async def timed() -> list[float]:
        out = []
        for _ in range(rounds):
            start = time.perf_counter()
            await fn()
            out.append(time.perf_counter() - start)
        return out

    return statistics.median(asyncio.run(timed()))


@contextmanager
def store(kind: str, root: Path) -> Iterator[tether.Client]:
    path = root / f"{kind}-{time.monotonic_ns()}.db"
    with tether.connect(f"sqlite:///{path}") as local:
        if kind == "local":
            yield local
            return
        with running_server(local.engine) as url:
            key = local.engine.create_key(tether.KeyRole.ADMIN, subject="bench").secret
            with tether.connect(url, api_key=key) as remote:
                yield remote


def measure(kind: str, per_turn: int, rounds: int, root: Path) -> dict[str, float]:
    """Median run time, bare and durable, for SMALL and LARGE tool calls per run."""
    times: dict[str, float] = {}
    with store(kind, root) as client:
        for calls in (SMALL, LARGE):
            bare = agent(calls, per_turn)
            durable = DurableRunner(agent(calls, per_turn), address=ADDRESS)
            max_turns = calls + 5

            async def run_bare(a: Agent[Any] = bare, m: int = max_turns) -> Any:
                return await Runner.run(a, "go", max_turns=m)

            async def run_durable(r: DurableRunner = durable, m: int = max_turns) -> Any:
                r.max_turns = m
                outcome = await r.run(client, "go")
                assert outcome.completed, outcome
                return outcome

            median_seconds(run_bare, 3)  # warm both paths up
            median_seconds(run_durable, 3)
            bare_s, durable_s = [], []
            for _ in range(3):  # interleaved, so both see the same machine
                bare_s.append(median_seconds(run_bare, rounds))
                durable_s.append(median_seconds(run_durable, rounds))
            times[f"bare_{calls}"] = statistics.median(bare_s)
            times[f"durable_{calls}"] = statistics.median(durable_s)
    span = LARGE - SMALL
    per_call_bare = (times[f"bare_{LARGE}"] - times[f"bare_{SMALL}"]) / span
    per_call_durable = (times[f"durable_{LARGE}"] - times[f"durable_{SMALL}"]) / span
    overhead = per_call_durable - per_call_bare
    fixed = (times[f"durable_{SMALL}"] - times[f"bare_{SMALL}"]) - SMALL * overhead
    return {
        **times,
        "per_call_bare_ms": per_call_bare * 1e3,
        "per_call_durable_ms": per_call_durable * 1e3,
        "overhead_per_call_ms": overhead * 1e3,
        "fixed_per_run_ms": fixed * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke run")
    args = parser.parse_args()
    rounds = 3 if args.quick else 9
    root = Path(tempfile.mkdtemp(prefix="tether-bench-agents-"))
    results: dict[str, Any] = {"python": platform.python_version(), "rounds": rounds}
    try:
        for kind, per_turn in (("local", 1), ("local", 4), ("http", 1)):
            name = f"{kind}, {per_turn} call{'s' if per_turn > 1 else ''} per turn"
            console.print(f"measuring: {name} ...")
            results[name] = measure(kind, per_turn, rounds, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    table = Table(title="Durable OpenAI Agents runs vs the bare SDK (median; ms)")
    for col in ("setup", "bare / call", "durable / call", "overhead / call", "fixed / run",
                "target"):  # fmt: skip
        table.add_column(col, justify="right" if col != "setup" else "left")
    for name, r in results.items():
        if not isinstance(r, dict):
            continue
        in_process = name.startswith("local")
        met = r["overhead_per_call_ms"] <= TARGET_MS
        verdict = (f"<= {TARGET_MS:.0f} ms: " + ("met" if met else "MISSED")) if in_process else "-"
        table.add_row(
            name, f"{r['per_call_bare_ms']:.3f}", f"{r['per_call_durable_ms']:.3f}",
            f"{r['overhead_per_call_ms']:.3f}", f"{r['fixed_per_run_ms']:.2f}", verdict,
        )  # fmt: skip
    console.print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    console.print(f"written to bench/results/{RESULTS.name}")


if __name__ == "__main__":
    main()
