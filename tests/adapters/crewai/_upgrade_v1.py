"""Version 1 of an agent's code, for test_upgrade.py: a crew (research -> write -> publish,
the publish task gated by a person's approval) and a flow (write -> review, which waits for a
person -> route -> publish | shelve). ``_upgrade_v2`` is the next version of the same code.

Run as a module, it parks runs and exits:
``python -m tests.adapters.crewai._upgrade_v1 DB DIR`` submits ``PARKED`` runs of the crew to
each agent of ``UPGRADE_CREWS`` and of the flow to each agent of ``UPGRADE_FLOWS`` (each agent
stands for one deployment), runs each until it waits for the person, prints
``PARKED <intent id>`` for each, and exits. Side effects (tool bodies, flow method bodies) and
model calls are appended to DIR/effects.log and DIR/calls.log with the process id, as in
``_apps``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ._apps import UPGRADE_CREWS, UPGRADE_FLOWS, _append

PARKED = {"same": 4, "renamed": 1, "removed": 2}
"""Runs parked per deployment (the keys of UPGRADE_CREWS and UPGRADE_FLOWS)."""


def build_crew(workdir: Path) -> Any:
    from crewai import Agent, Crew, Task
    from crewai.tools import BaseTool
    from tether_crewai import requires_approval
    from tether_crewai.testing import ScriptedLLM, final_answer, tool_call

    def effect(text: str) -> None:
        _append(workdir / "effects.log", f"{os.getpid()} {text}")

    class Search(BaseTool):
        name: str = "search"
        description: str = "Search the web for a query."

        def _run(self, query: str) -> str:
            effect(f"search-v1:{query}")
            return f"3 articles about {query}"

    class Publish(BaseTool):
        name: str = "publish"
        description: str = "Publish a post by title."

        def _run(self, title: str) -> str:
            effect(f"publish-v1:{title}")
            return "https://example.com/v1/posts/1"

    class LoggedLLM(ScriptedLLM):
        def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
            answer = super().call(messages, *args, **kwargs)
            marker = next((k for k in self.replies if k in self.calls[-1]), "other")
            _append(workdir / "calls.log", f"{os.getpid()} {marker}")
            return answer

    llm = LoggedLLM(
        replies={
            "RESEARCH": [
                tool_call("search", '{"query": "durable agents"}'),
                final_answer("notes: agents crash, and their runs resume"),
            ],
            "WRITE": [final_answer("draft: a post on agents that survive a crash")],
            "PUBLISH": [
                tool_call("publish", '{"title": "Durable agents"}'),
                final_answer("published at https://example.com/v1/posts/1"),
            ],
        }
    )
    researcher = Agent(role="researcher", goal="find facts", backstory="careful", llm=llm,
                       tools=[Search()], max_iter=5)  # fmt: skip
    writer = Agent(role="writer", goal="write posts", backstory="clear", llm=llm, max_iter=5)
    publisher = Agent(role="publisher", goal="publish posts", backstory="exact", llm=llm,
                      tools=[Publish()], max_iter=5)  # fmt: skip
    research = Task(name="research", description="RESEARCH {topic}", expected_output="notes",
                    agent=researcher)  # fmt: skip
    write = Task(name="write", description="WRITE a post on {topic}", expected_output="a post",
                 agent=writer)  # fmt: skip
    publish = requires_approval(
        Task(name="publish", description="PUBLISH the post", expected_output="the URL",
             agent=publisher),
        title="Publish this post?", groups=["editors"],
    )  # fmt: skip
    return Crew(agents=[researcher, writer, publisher], tasks=[research, write, publish])


def build_flow(workdir: Path) -> Any:
    from crewai.flow import Flow, listen, persist, router, start
    from pydantic import BaseModel
    from tether_crewai import Decision, TetherFlowPersistence, wait_for_human

    def effect(text: str) -> None:
        _append(workdir / "effects.log", f"{os.getpid()} {text}")

    class PostState(BaseModel):
        id: str = ""
        topic: str = ""
        draft: str = ""
        outcome: str = ""
        comment: str = ""

    @persist(TetherFlowPersistence())
    class PostFlow(Flow[PostState]):
        @start()
        def write(self) -> str:
            effect("write-v1")
            self.state.draft = f"a post about {self.state.topic}"
            return self.state.draft

        @listen(write)
        @wait_for_human("Publish this post?", groups=["editors"])
        def review(self, draft: str) -> dict[str, str]:
            effect("review-v1")
            return {"post": draft}

        @router(review)
        def route(self, result: Any) -> str:
            decision = Decision.from_feedback(result)
            self.state.outcome = decision.outcome
            self.state.comment = decision.comment or ""
            return decision.outcome

        @listen("approved")
        def publish(self) -> str:
            effect("publish-v1")
            return f"published (v1): {self.state.draft}"

        @listen("rejected")
        def shelve(self) -> str:
            effect("shelve-v1")
            return "shelved (v1)"

    return PostFlow


def park(db: str, workdir: Path) -> None:
    import tether
    from tether_crewai import DurableCrew, DurableFlow

    with tether.connect(db) as client:
        for variant, agent in UPGRADE_CREWS.items():
            crew = DurableCrew(lambda: build_crew(workdir), client, agent=agent)
            for n in range(PARKED[variant]):
                run = crew.run({"topic": "durable agents"}, key=f"crew-{variant}-{n}")
                print(f"PARKED {run.intent_id} {run.status.value}", flush=True)
        for variant, agent in UPGRADE_FLOWS.items():
            flow = DurableFlow(build_flow(workdir), client, agent=agent)
            for n in range(PARKED[variant]):
                run = flow.run({"topic": "durable agents"}, key=f"flow-{variant}-{n}")
                print(f"PARKED {run.intent_id} {run.status.value}", flush=True)


if __name__ == "__main__":
    if os.environ.get("TETHER_TEST_NET_LOG"):
        from ._netguard import NetGuard

        NetGuard(os.environ["TETHER_TEST_NET_LOG"]).install()
    park(sys.argv[1], Path(sys.argv[2]))
