"""The workload of test_chaos.py, and the processes that run it.

The workload: a crew research (tools ``search``, ``fact_check``) -> write -> publish (tool
``publish``) run through the adapter's worker, its publish task gated by an approval on the
runs of type ``GATED`` and not on those of type ``PLAIN``. Each tool call goes to an "external
system" (a SQLite file) with an idempotency key, the tool call's journal key
(``<intent id>:<key>``): it applies each key once (table ``applied``) and logs every
execution, applied or not, with the process id and an id of its own (table ``executions``), as
``tests/chaos/_app.py`` does. The tool's result names that execution, so the test can tell
which one the journal kept.

Each worker process reports where it is (``DIR/phase-<pid>``: ``claimed``, ``resumed`` just
after it claimed a run whose wait was answered, ``before-wait`` while the task before the gate
ends, ``tool`` inside a tool call, ``waiting`` just after its run began to wait, ``finished``)
and lingers there a moment, so the test can SIGKILL it at each of these boundaries.

Run as a module, it is a prefork server of worker processes:
``python -m tests.adapters.crewai._chaos_app DB DIR`` imports crewai and the adapter once
(crewai takes seconds to import), prints ``ready``, then answers commands on stdin, one a line:

- ``spawn``: forks a worker process (its own tether client on DB, a ``tether.Worker``), prints
  its pid;
- ``reap PID``: waits for that worker to end (the test SIGKILLs it), prints its exit code
  (``-9`` for SIGKILL);
- ``stop``: sends SIGTERM to the live workers (each stops after the run it is on), prints
  ``PID CODE`` for each and ``stopped``, and exits.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

AGENT = "agent://chaos/crew"
GATED = "chaos.crew.gated.v1"
PLAIN = "chaos.crew.plain.v1"
LEASE_SECONDS = 5.0
"""Long enough that a busy machine never takes a lease from a live worker (which would run a
tool again without a SIGKILL); short enough that a killed worker's run is taken over soon."""


def effects_db(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS executions (key TEXT NOT NULL, pid INTEGER, run TEXT)"
        )
        db.execute("CREATE TABLE IF NOT EXISTS applied (key TEXT PRIMARY KEY)")


def phase(workdir: Path, name: str, linger: bool = True) -> None:
    """Report where this worker is; linger there a moment so a kill can land in it."""
    (workdir / f"phase-{os.getpid()}").write_text(name)
    if linger:
        time.sleep(random.uniform(0.05, 0.25))


def journal_key() -> str:
    """The journal key of the tool call this thread runs, as the adapter keyed it."""
    from tether_crewai._binding import current

    binding = current()
    assert binding is not None, "a tool call outside a durable run"
    me = threading.get_ident()
    [key] = [key for (thread, _), key in list(binding.pending_keys.items()) if thread == me]
    return f"{binding.intent_id}:{key}"


def external(workdir: Path, result: str) -> str:
    """Call the external system with the tool call's journal key as its idempotency key."""
    key, run = journal_key(), uuid.uuid4().hex
    phase(workdir, "tool")
    db = sqlite3.connect(workdir / "effects.db", timeout=60)
    try:
        with db:  # one transaction: executed and applied (or found applied) together
            db.execute("INSERT INTO executions VALUES (?, ?, ?)", (key, os.getpid(), run))
            db.execute("INSERT OR IGNORE INTO applied (key) VALUES (?)", (key,))
    finally:
        db.close()
    time.sleep(random.uniform(0.05, 0.25))  # applied, not yet on the journal
    return f"{result} (execution {run})"


def build_crew(workdir: Path, gated: bool) -> Any:
    from crewai import Agent, Crew, Task
    from crewai.tools import BaseTool
    from tether_crewai import requires_approval
    from tether_crewai.testing import ScriptedLLM, final_answer, tool_call

    class Search(BaseTool):
        name: str = "search"
        description: str = "Search the web for a query."

        def _run(self, query: str) -> str:
            return external(workdir, f"3 articles about {query}")

    class FactCheck(BaseTool):
        name: str = "fact_check"
        description: str = "Check a claim against sources."

        def _run(self, claim: str) -> str:
            return external(workdir, f"'{claim}' is right")

    class Publish(BaseTool):
        name: str = "publish"
        description: str = "Publish a post by title."

        def _run(self, title: str) -> str:
            return external(workdir, f"published '{title}' at https://example.com/posts/1")

    def write(text: str) -> str:
        if gated:  # the last thing the run does before its wait opens
            phase(workdir, "before-wait")
        return final_answer("draft: agents that survive a crash")

    llm = ScriptedLLM(
        replies={
            "RESEARCH": [
                tool_call("search", '{"query": "durable agents"}'),
                tool_call("fact_check", '{"claim": "agents crash"}'),
                final_answer("notes: agents crash, and their runs resume"),
            ],
            "WRITE": [write],
            "PUBLISH": [
                tool_call("publish", '{"title": "Durable agents"}'),
                final_answer("published at https://example.com/posts/1"),
            ],
        }
    )
    researcher = Agent(role="researcher", goal="find facts", backstory="careful", llm=llm,
                       tools=[Search(), FactCheck()], max_iter=5)  # fmt: skip
    writer = Agent(role="writer", goal="write posts", backstory="clear", llm=llm, max_iter=5)
    publisher = Agent(role="publisher", goal="publish posts", backstory="exact", llm=llm,
                      tools=[Publish()], max_iter=5)  # fmt: skip
    research = Task(name="research", description="RESEARCH {topic}", expected_output="notes",
                    agent=researcher)  # fmt: skip
    draft = Task(name="write", description="WRITE a post on {topic}", expected_output="a post",
                 agent=writer)  # fmt: skip
    publish = Task(name="publish", description="PUBLISH the post", expected_output="the URL",
                   agent=publisher)  # fmt: skip
    if gated:
        requires_approval(publish, title="Publish this post?", groups=["editors"])
    return Crew(agents=[researcher, writer, publisher], tasks=[research, draft, publish])


def build_worker(client: Any, workdir: Path) -> Any:
    import tether
    from tether_crewai import DurableCrew

    class ReportingCrew(DurableCrew):
        """A DurableCrew that reports the boundaries of each segment it runs."""

        def handle(self, ctx: tether.WorkContext) -> Any:
            wait = ctx.last_wait
            resumed = wait is not None and not wait.is_open
            phase(workdir, "resumed" if resumed else "claimed", linger=resumed)
            try:
                result = super().handle(ctx)
            except tether.Suspended:
                phase(workdir, "waiting")  # the run waits in tether; this process goes on
                raise
            phase(workdir, "finished", linger=False)
            return result

    def crew(gated: bool) -> ReportingCrew:
        return ReportingCrew(
            lambda: build_crew(workdir, gated), client, agent=AGENT,
            intent_type=GATED if gated else PLAIN, lease_seconds=LEASE_SECONDS,
        )  # fmt: skip

    worker = crew(True).worker(lease_seconds=LEASE_SECONDS, poll_seconds=0.1)
    worker.handler(PLAIN)(crew(False).handle)
    return worker


_TERM = threading.Event()
"""Set by SIGTERM; the server installs the handler, so each worker has it from its start."""


def _work(db: str, workdir: Path) -> None:
    """A forked worker process: its own client, a worker until SIGTERM."""
    import tether

    client = tether.connect(db)
    worker = build_worker(client, workdir)
    threading.Thread(target=lambda: _TERM.wait() and worker.stop(), daemon=True).start()
    phase(workdir, "started", linger=False)
    worker.run()
    client.close()


def _fork(db: str, workdir: Path) -> int:
    if threading.active_count() != 1:  # a fork copies no other thread (and none of its locks)
        raise RuntimeError(f"threads before a fork: {threading.enumerate()}")
    sys.stdout.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        log = os.open(workdir / f"worker-{os.getpid()}.log", os.O_WRONLY | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        _work(db, workdir)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(db: str, workdir: Path) -> None:
    import crewai  # noqa: F401  (imported once, here, for every worker)
    import tether  # noqa: F401
    import tether_crewai  # noqa: F401

    build_crew(workdir, gated=True)  # crewai imports some of itself on first use
    signal.signal(signal.SIGTERM, lambda *_: _TERM.set())
    live: set[int] = set()
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "spawn":
            pid = _fork(db, workdir)
            live.add(pid)
            print(pid, flush=True)
        elif command == "reap":
            pid = int(args[0])
            live.discard(pid)
            print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
        elif command == "stop":
            for pid in live:
                os.kill(pid, signal.SIGTERM)
            for pid in sorted(live):
                print(pid, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
            print("stopped", flush=True)
            return


if __name__ == "__main__":
    if os.environ.get("TETHER_TEST_NET_LOG"):
        from ._netguard import NetGuard

        NetGuard(os.environ["TETHER_TEST_NET_LOG"]).install()
    serve(sys.argv[1], Path(sys.argv[2]))
