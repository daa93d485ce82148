"""CrewAI adapter benchmark: what durability costs per task, against bare crewai.

One process, a fresh temporary store, the scripted offline model (no network; crewai's
telemetry, tracing and version check off). The same crew runs two ways, interleaved so both
see the same machine:

- **bare**: ``crew.kickoff()`` on the crew as the user wrote it;
- **durable**: ``DurableCrew.run`` on tether (in-process SQLite, WAL, ``synchronous=FULL``):
  an intent is created, claimed and completed; each task start and model turn is a mesh
  boundary check, each model turn a spend report, each tool call a scope check and a
  journal write, each finished task a journal write.

Each task makes one tool call (two model turns). The cost per task is the slope of the run
time over the number of tasks (crews of 2 and 8 tasks), durable minus bare; the fixed cost
per run (create, claim, start, complete, hooks installed) is reported apart.

Run with the adapter's environment::

    adapters/crewai/.venv/bin/python bench/crewai.py            # about a minute
    adapters/crewai/.venv/bin/python bench/crewai.py --quick    # a smoke run

Results are printed and written to ``bench/results/crewai.json``. A benchmark, not a test:
the numbers depend on the disk's sync rate and on what else the machine runs.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, where bench/crewai.py would
# shadow the crewai package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import tether_crewai  # noqa: E402,F401  (switches crewai's calls home off first)

AGENT = "agent://bench/crew"
SMALL, LARGE = 2, 8


def build_crew(tasks: int) -> Any:
    from crewai import Agent, Crew, Task
    from crewai.tools import BaseTool
    from tether_crewai.testing import ScriptedLLM, final_answer, tool_call

    class Lookup(BaseTool):
        name: str = "lookup"
        description: str = "Look a key up."

        def _run(self, key: str) -> str:
            return f"value of {key}"

    replies = {
        f"STEP{n:02d}": [tool_call("lookup", f'{{"key": "k{n}"}}'), final_answer(f"done {n}")]
        for n in range(tasks)
    }
    llm = ScriptedLLM(replies=replies)
    agent = Agent(role="worker", goal="work", backstory="fast", llm=llm, tools=[Lookup()])
    return Crew(
        agents=[agent],
        tasks=[
            Task(description=f"STEP{n:02d}", expected_output="x", agent=agent) for n in range(tasks)
        ],
        tracing=False,
    )


def measure(rounds: int) -> dict[str, Any]:
    import tether
    from tether_crewai import DurableCrew

    times: dict[str, list[float]] = {f"{way}-{n}": [] for way in ("bare", "durable")
                                     for n in (SMALL, LARGE)}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        client = tether.connect(f"sqlite:///{Path(tmp) / 'bench.db'}")
        runners = {n: DurableCrew(lambda n=n: build_crew(n), client, agent=AGENT)
                   for n in (SMALL, LARGE)}  # fmt: skip
        for n in (SMALL, LARGE):  # warm up both paths
            build_crew(n).kickoff()
            runners[n].run()
        for _ in range(rounds):
            for n in (SMALL, LARGE):
                crew = build_crew(n)
                began = time.perf_counter()
                crew.kickoff()
                times[f"bare-{n}"].append(time.perf_counter() - began)
                began = time.perf_counter()
                result = runners[n].run()
                times[f"durable-{n}"].append(time.perf_counter() - began)
                assert result.completed, result
        client.close()
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    per_task = {
        way: (med[f"{way}-{LARGE}"] - med[f"{way}-{SMALL}"]) / (LARGE - SMALL)
        for way in ("bare", "durable")
    }
    fixed = {way: med[f"{way}-{SMALL}"] - SMALL * per_task[way] for way in ("bare", "durable")}
    return {
        "rounds": rounds,
        "median_ms": med,
        "per_task_ms": per_task,
        "overhead_per_task_ms": per_task["durable"] - per_task["bare"],
        "fixed_per_run_ms": fixed,
        "overhead_per_run_ms": fixed["durable"] - fixed["bare"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="CrewAI adapter: overhead per task")
    parser.add_argument("--quick", action="store_true", help="a smoke run (5 rounds)")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    result = measure(5 if args.quick else args.rounds)
    med = result["median_ms"]
    print(f"crewai adapter, {result['rounds']} interleaved rounds, median ms per run")
    print(f"{'crew':<16}{'bare':>10}{'durable':>10}")
    for n in (SMALL, LARGE):
        print(f"{f'{n} tasks':<16}{med[f'bare-{n}']:>10.1f}{med[f'durable-{n}']:>10.1f}")
    print(f"{'per task':<16}{result['per_task_ms']['bare']:>10.2f}"
          f"{result['per_task_ms']['durable']:>10.2f}")  # fmt: skip
    print(f"overhead per task: {result['overhead_per_task_ms']:.2f} ms "
          f"(1 tool call, 2 model turns); per run: {result['overhead_per_run_ms']:.1f} ms")  # fmt: skip
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "crewai.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
