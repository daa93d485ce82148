"""Version 2 of ``_upgrade_v1``'s code, deployed while runs of version 1 wait for a person.

The crew: every task's description and expected output changed, the search and publish tools
do something else (the publish tool takes a channel and posts elsewhere), and an announce task
was added after the gated one. Deployed three ways (the ``variant``): the gated task kept at
its place (``same``), renamed (``renamed``: another name and description, still gated), or
removed (``removed``: research -> write -> announce).

The flow: its state has a new field, every method body changed, and an ``announce`` listener
follows ``publish``. Deployed with the paused method ``review`` kept (``same``), renamed to
``ask_editor`` (``renamed``), or removed (``removed``: write -> publish).

Run as a module, it is the upgraded worker:
``python -m tests.adapters.crewai._upgrade_v2 DB DIR`` runs, for each deployment in
``UPGRADE_CREWS`` and ``UPGRADE_FLOWS``, a worker with its variant's code until it finds no
more work, then prints ``DONE <agent> <intents handled>``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from ._apps import UPGRADE_CREWS, UPGRADE_FLOWS, _append


def build_crew(workdir: Path, variant: str) -> Any:
    from crewai import Agent, Crew, Task
    from crewai.tools import BaseTool
    from tether_crewai import requires_approval
    from tether_crewai.testing import ScriptedLLM, final_answer, tool_call

    def effect(text: str) -> None:
        _append(workdir / "effects.log", f"{os.getpid()} {text}")

    class Search(BaseTool):
        name: str = "search"
        description: str = "Search recent papers for a query."

        def _run(self, query: str) -> str:
            effect(f"search-v2:{query}")
            return f"5 papers about {query}"

    class Publish(BaseTool):
        name: str = "publish"
        description: str = "Publish a post by title on a channel."

        def _run(self, title: str, channel: str) -> str:
            effect(f"publish-v2:{title}@{channel}")
            return f"released '{title}' on {channel}: https://blog.example.com/v2/durable-agents"

    class Announce(BaseTool):
        name: str = "announce"
        description: str = "Announce a release to the mailing list."

        def _run(self, text: str) -> str:
            effect(f"announce-v2:{text}")
            return "sent to 1200 subscribers"

    def released(text: str) -> str:
        url = re.search(r"https://blog\.example\.com/v2/[a-z-]+", text)
        said = re.search(r"A person decided on this task before it ran: (.*)", text)
        return final_answer(
            f"released (v2) at {url.group(0) if url else 'no URL seen'}; "
            f"decision: {said.group(1) if said else 'none seen'}"
        )

    class LoggedLLM(ScriptedLLM):
        def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
            answer = super().call(messages, *args, **kwargs)
            marker = next((k for k in self.replies if k in self.calls[-1]), "other")
            _append(workdir / "calls.log", f"{os.getpid()} {marker}")
            return answer

    llm = LoggedLLM(
        replies={
            "INVESTIGATE": [
                tool_call("search", '{"query": "durable agents"}'),
                final_answer("sourced notes (v2)"),
            ],
            "COMPOSE": [final_answer("a post (v2)")],
            "RELEASE": [
                tool_call("publish", '{"title": "Durable agents", "channel": "blog"}'),
                released,
            ],
            "ANNOUNCE": [
                tool_call("announce", '{"text": "Durable agents is out"}'),
                final_answer("announced the release (v2)"),
            ],
        }
    )
    researcher = Agent(role="researcher", goal="find sourced facts", backstory="thorough",
                       llm=llm, tools=[Search()], max_iter=5)  # fmt: skip
    writer = Agent(role="writer", goal="write short posts", backstory="brief", llm=llm,
                   max_iter=5)  # fmt: skip
    publisher = Agent(role="publisher", goal="release posts", backstory="exact", llm=llm,
                      tools=[Publish()], max_iter=5)  # fmt: skip
    announcer = Agent(role="announcer", goal="tell subscribers", backstory="friendly", llm=llm,
                      tools=[Announce()], max_iter=5)  # fmt: skip
    research = Task(name="research", description="INVESTIGATE {topic} in recent papers",
                    expected_output="sourced notes", agent=researcher)  # fmt: skip
    write = Task(name="write", description="COMPOSE a short post on {topic}",
                 expected_output="a post of 50 words", agent=writer)  # fmt: skip
    announce = Task(name="announce", description="ANNOUNCE the release to subscribers",
                    expected_output="who was told", agent=announcer)  # fmt: skip
    if variant == "removed":
        return Crew(agents=[researcher, writer, announcer], tasks=[research, write, announce])
    publish = requires_approval(
        Task(
            name="publish" if variant == "same" else "release",
            description="RELEASE the post on the blog channel",
            expected_output="the URL and the channel",
            agent=publisher,
        ),
        title="Release this post?", groups=["editors"],
    )  # fmt: skip
    return Crew(
        agents=[researcher, writer, publisher, announcer],
        tasks=[research, write, publish, announce],
    )


def build_flow(workdir: Path, variant: str) -> Any:
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
        channel: str = "blog"  # new in v2

    class Common(Flow[PostState]):
        def decide(self, result: Any) -> str:
            decision = Decision.from_feedback(result)
            self.state.outcome = decision.outcome
            self.state.comment = decision.comment or ""
            return decision.outcome

        def publish_v2(self) -> str:
            effect(f"publish-v2:{self.state.draft}@{self.state.channel}")
            return f"published (v2) on {self.state.channel}: {self.state.draft}"

        def announce_v2(self, published: str) -> str:
            effect("announce-v2")
            return f"announced (v2): {published} ({self.state.comment})"

    if variant == "same":

        @persist(TetherFlowPersistence())
        class PostFlow(Common):
            @start()
            def write(self) -> str:
                effect("write-v2")
                self.state.draft = f"a short post about {self.state.topic}"
                return self.state.draft

            @listen(write)
            @wait_for_human("Publish this post (v2)?", groups=["editors"])
            def review(self, draft: str) -> dict[str, str]:
                effect("review-v2")
                return {"post": draft, "channel": self.state.channel}

            @router(review)
            def route(self, result: Any) -> str:
                return self.decide(result)

            @listen("approved")
            def publish(self) -> str:
                return self.publish_v2()

            @listen("rejected")
            def shelve(self) -> str:
                effect("shelve-v2")
                return f"shelved (v2): {self.state.comment}"

            @listen(publish)
            def announce(self, published: str) -> str:
                return self.announce_v2(published)

        return PostFlow

    if variant == "renamed":

        @persist(TetherFlowPersistence())
        class PostFlow(Common):  # type: ignore[no-redef]
            @start()
            def write(self) -> str:
                effect("write-v2")
                self.state.draft = f"a short post about {self.state.topic}"
                return self.state.draft

            @listen(write)
            @wait_for_human("Publish this post (v2)?", groups=["editors"])
            def ask_editor(self, draft: str) -> dict[str, str]:
                effect("ask_editor-v2")
                return {"post": draft}

            @router(ask_editor)
            def route(self, result: Any) -> str:
                return self.decide(result)

            @listen("approved")
            def publish(self) -> str:
                return self.publish_v2()

            @listen(publish)
            def announce(self, published: str) -> str:
                return self.announce_v2(published)

        return PostFlow

    @persist(TetherFlowPersistence())
    class PostFlow(Common):  # type: ignore[no-redef]
        @start()
        def write(self) -> str:
            effect("write-v2")
            self.state.draft = f"a short post about {self.state.topic}"
            return self.state.draft

        @listen(write)
        def publish(self) -> str:
            return self.publish_v2()

        @listen(publish)
        def announce(self, published: str) -> str:
            return self.announce_v2(published)

    return PostFlow


def work(db: str, workdir: Path) -> None:
    import tether
    from tether_crewai import DurableCrew, DurableFlow

    with tether.connect(db) as client:
        runners: list[Any] = [
            DurableCrew(lambda v=variant: build_crew(workdir, v), client, agent=agent)
            for variant, agent in UPGRADE_CREWS.items()
        ]
        runners += [
            DurableFlow(build_flow(workdir, variant), client, agent=agent)
            for variant, agent in UPGRADE_FLOWS.items()
        ]
        for runner in runners:
            worker = runner.worker(poll_seconds=0.1)
            handled = 0
            while worker.run_once():
                handled += 1
            print(f"DONE {runner.agent} {handled}", flush=True)


if __name__ == "__main__":
    if os.environ.get("TETHER_TEST_NET_LOG"):
        from ._netguard import NetGuard

        NetGuard(os.environ["TETHER_TEST_NET_LOG"]).install()
    work(sys.argv[1], Path(sys.argv[2]))
