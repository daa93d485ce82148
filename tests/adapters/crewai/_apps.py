"""The crews and flows the tests run, in the test process and in child processes.

Run as a module, it is a child process: ``python -m tests.adapters.crewai._apps COMMAND DB DIR``
with COMMAND one of ``crew-run``, ``crew-worker``, ``flow-run``, ``flow-worker``. Side effects
(tool bodies, flow method bodies) and model calls are appended to files in DIR, one line each,
with the process id, so a test can count what ran where.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

AGENT = "agent://test/content"
FLOW_AGENT = "agent://test/content-flow"
# One deployment each of _upgrade_v1's crew and flow, upgraded to _upgrade_v2's code with the
# gated task (or the paused flow method) kept, renamed or removed (test_upgrade.py).
UPGRADE_CREWS = {
    "same": "agent://test/upgrade/crew",
    "renamed": "agent://test/upgrade/crew-gated-task-renamed",
    "removed": "agent://test/upgrade/crew-gated-task-removed",
}
UPGRADE_FLOWS = {
    "same": "agent://test/upgrade/flow",
    "renamed": "agent://test/upgrade/flow-paused-method-renamed",
    "removed": "agent://test/upgrade/flow-paused-method-removed",
}


def _append(path: Path, line: str) -> None:
    with path.open("a") as out:
        out.write(f"{line}\n")
        out.flush()
        os.fsync(out.fileno())


def lines(path: Path) -> list[str]:
    """The entries of an effects or calls file, without process ids."""
    return [line.split(" ", 1)[1] for line in path.read_text().splitlines() if line]


def build_crew(workdir: Path, gate: str = "approval", **gate_options: Any) -> Any:
    """research (search, fact_check) -> write -> publish (publish), with ``gate`` on write
    ("review") or on publish ("approval"), or none."""
    from crewai import Agent, Crew, Task
    from crewai.tools import BaseTool
    from tether_crewai import requires_approval, requires_review
    from tether_crewai.testing import ScriptedLLM, final_answer, tool_call

    effects, calls = workdir / "effects.log", workdir / "calls.log"

    def effect(text: str) -> None:
        _append(effects, f"{os.getpid()} {text}")

    class Search(BaseTool):
        name: str = "search"
        description: str = "Search the web for a query."

        def _run(self, query: str) -> str:
            effect(f"search:{query}")
            return f"3 articles about {query}"

    class FactCheck(BaseTool):
        name: str = "fact_check"
        description: str = "Check a claim against sources."

        def _run(self, claim: str) -> str:
            if os.environ.get("TETHER_TEST_HANG_IN_TOOL"):
                _append(workdir / "hanging", str(os.getpid()))
                time.sleep(600)
            effect(f"fact_check:{claim}")
            return f"'{claim}' is right"

    class Publish(BaseTool):
        name: str = "publish"
        description: str = "Publish a post by title."

        def _run(self, title: str) -> str:
            effect(f"publish:{title}")
            return f"published '{title}' at https://example.com/posts/1"

    def write(text: str) -> str:
        revised = "did not accept your previous output" in text
        return final_answer("draft v2 (shorter)" if revised else "draft v1")

    def published(text: str) -> str:
        said = re.search(r"(A person decided on this task before it ran: .*)", text)
        return final_answer("published. " + (said.group(1) if said else "no decision seen"))

    class LoggedLLM(ScriptedLLM):
        def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
            answer = super().call(messages, *args, **kwargs)
            text = self.calls[-1]
            marker = next((k for k in self.replies if k in text), "other")
            _append(calls, f"{os.getpid()} {marker}")
            return answer

    llm = LoggedLLM(
        replies={
            "RESEARCH": [
                tool_call("search", '{"query": "durable agents"}'),
                tool_call("fact_check", '{"claim": "agents crash"}'),
                final_answer("notes: agents crash, and tether resumes them"),
            ],
            "WRITE": [write],
            "PUBLISH": [tool_call("publish", '{"title": "Durable agents"}'), published],
        }
    )
    researcher = Agent(
        role="researcher", goal="find facts", backstory="careful", llm=llm,
        tools=[Search(), FactCheck()], max_iter=5,
    )  # fmt: skip
    writer = Agent(role="writer", goal="write posts", backstory="clear", llm=llm, max_iter=5)
    publisher = Agent(
        role="publisher", goal="publish posts", backstory="exact", llm=llm, tools=[Publish()],
        max_iter=5,
    )  # fmt: skip
    research = Task(
        name="research", description="RESEARCH {topic}", expected_output="notes", agent=researcher
    )
    draft = Task(name="write", description="WRITE a post on {topic}", expected_output="a post",
                 agent=writer)  # fmt: skip
    publish = Task(name="publish", description="PUBLISH the post", expected_output="the URL",
                   agent=publisher)  # fmt: skip
    if gate == "approval":
        requires_approval(publish, title="Publish this post?", groups=["editors"], **gate_options)
    elif gate == "review":
        requires_review(draft, groups=["editors"], **gate_options)
    return Crew(agents=[researcher, writer, publisher], tasks=[research, draft, publish])


def build_flow(workdir: Path) -> Any:
    """draft -> review (waits for an editor) -> route -> publish | shelve | give_up."""
    from crewai.flow import Flow, listen, persist, router, start
    from pydantic import BaseModel
    from tether_crewai import Decision, TetherFlowPersistence, wait_for_human

    effects = workdir / "effects.log"

    def effect(text: str) -> None:
        _append(effects, f"{os.getpid()} {text}")

    class PostState(BaseModel):
        id: str = ""
        topic: str = ""
        draft: str = ""
        outcome: str = ""
        comment: str = ""

    @persist(TetherFlowPersistence())
    class ReviewFlow(Flow[PostState]):
        @start()
        def write(self) -> str:
            effect("write")
            self.state.draft = f"a post about {self.state.topic}"
            return self.state.draft

        @listen(write)
        @wait_for_human("Publish this post?", groups=["editors"], timeout=3600)
        def review(self, draft: str) -> dict[str, str]:
            effect("review")
            return {"post": draft}

        @router(review)
        def route(self, result: Any) -> str:
            decision = Decision.from_feedback(result)
            self.state.outcome = decision.outcome
            self.state.comment = decision.comment or ""
            return decision.outcome

        @listen("approved")
        def publish(self) -> str:
            effect(f"publish:{self.state.draft}")
            return f"published: {self.state.draft} ({self.state.comment})"

        @listen("rejected")
        def shelve(self) -> str:
            effect("shelve")
            return f"shelved: {self.state.comment}"

        @listen("timeout")
        def give_up(self) -> str:
            effect("give_up")
            return "nobody answered"

    return ReviewFlow


def main(command: str, db: str, workdir: Path) -> None:
    if os.environ.get("TETHER_TEST_NET_LOG"):
        from ._netguard import NetGuard

        NetGuard(os.environ["TETHER_TEST_NET_LOG"]).install()
    import tether
    from tether_crewai import DurableCrew, DurableFlow

    lease = float(os.environ.get("TETHER_TEST_LEASE", "60"))
    client = tether.connect(db)
    if command.startswith("crew"):
        runner: Any = DurableCrew(
            lambda: build_crew(workdir, os.environ.get("TETHER_TEST_GATE", "approval")),
            client, agent=AGENT, lease_seconds=lease,
        )  # fmt: skip
    else:
        runner = DurableFlow(build_flow(workdir), client, agent=FLOW_AGENT, lease_seconds=lease)
    if command.endswith("-run"):
        result = runner.run({"topic": "durable agents"}, key="post-1")
        print(f"RESULT {result.intent_id} {result.status.value}", flush=True)
        if os.environ.get("TETHER_TEST_LINGER"):
            time.sleep(600)  # stays alive while suspended, until the test kills it
    else:
        runner.worker(lease_seconds=lease, poll_seconds=0.1).run(max_intents=1)
    client.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
