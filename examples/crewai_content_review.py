"""A content crew whose post waits for an editor, across real processes.

    adapters/crewai/.venv/bin/python examples/crewai_content_review.py

1. process A submits the run: a researcher searches, a writer drafts the post, and the crew
   stops before the publish task, which needs an editor's approval; process A exits;
2. the editor approves with a comment (as ``tether inbox approve <id>`` would);
3. process B, a worker, resumes the crew: research and writing are not done again (no model
   call either), the publisher gets the editor's comment, and the post is published once;
4. the intent's audit trail is printed and its hash chain verified.

Offline by default (a scripted model); with ``OPENAI_API_KEY`` set it uses gpt-4o-mini.
The store is ``./.tether/crewai-demo.db`` (``--db`` to change it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

AGENT = "agent://demo/content"
EDITOR = "editor@example.com"


def build_crew() -> Any:
    from crewai import LLM, Agent, Crew, Task
    from crewai.tools import BaseTool
    from tether_crewai import requires_approval
    from tether_crewai.testing import ScriptedLLM, final_answer, tool_call

    class Search(BaseTool):
        name: str = "search"
        description: str = "Search recent articles about a topic."

        def _run(self, query: str) -> str:
            print(f"    [pid {os.getpid()}] search({query!r})")
            return "Durable execution lets agents survive crashes; people approve risky steps."

    class Publish(BaseTool):
        name: str = "publish"
        description: str = "Publish a post with a title; returns its URL."

        def _run(self, title: str) -> str:
            print(f"    [pid {os.getpid()}] publish({title!r})  <- the side effect, once")
            return "https://blog.example.com/posts/durable-agents"

    llm: Any
    if os.environ.get("OPENAI_API_KEY"):
        llm = LLM(model="gpt-4o-mini")
    else:

        def publish_reply(text: str) -> str:
            comment = text.split("their comment: ", 1)[-1].split("\n", 1)[0].rstrip(".")
            return final_answer(f"Published at https://blog.example.com/posts/durable-agents "
                                f"(editor's note: {comment})")  # fmt: skip

        llm = ScriptedLLM(replies={
            "Research": [tool_call("search", '{"query": "durable AI agents"}'),
                         final_answer("Agents crash; durable runs resume; people approve.")],
            "Write": [final_answer("Durable agents: why your AI workers need a save button.")],
            "Publish": [tool_call("publish", '{"title": "Durable agents"}'), publish_reply],
        })  # fmt: skip
    researcher = Agent(role="Researcher", goal="Find facts on {topic}",
                       backstory="Careful and brief.", llm=llm, tools=[Search()])  # fmt: skip
    writer = Agent(role="Writer", goal="Write short posts", backstory="Clear.", llm=llm)
    publisher = Agent(role="Publisher", goal="Publish approved posts", backstory="Exact.",
                      llm=llm, tools=[Publish()])  # fmt: skip
    research = Task(name="research", description="Research {topic} with the search tool.",
                    expected_output="three facts", agent=researcher)  # fmt: skip
    write = Task(name="write", description="Write a 50-word post on {topic} from the facts.",
                 expected_output="the post", agent=writer)  # fmt: skip
    publish = requires_approval(
        Task(name="publish", description="Publish the post with the publish tool, then give "
             "its URL and the editor's comment.", expected_output="the URL", agent=publisher),
        title="Publish the post on durable agents?", assignees=[EDITOR],
    )  # fmt: skip
    return Crew(agents=[researcher, writer, publisher], tasks=[research, write, publish])


def gpt_4o_mini_price(model: str, tokens_in: int, tokens_out: int) -> float:
    """USD of one model turn (0.15 and 0.60 per million tokens in and out)."""
    return (0.15 * tokens_in + 0.60 * tokens_out) / 1e6


def durable(db: str) -> Any:
    import tether
    from tether_crewai import DurableCrew

    price = gpt_4o_mini_price if os.environ.get("OPENAI_API_KEY") else None
    client = tether.connect(db, actor=tether.Principal.agent(AGENT))
    return DurableCrew(build_crew, client, agent=AGENT, price=price)


def start(db: str) -> None:
    run = durable(db).run({"topic": "durable AI agents"}, key="post-durable-agents")
    print(f"  process A (pid {os.getpid()}): intent {run.intent_id} is {run.status.value}"
          f"{': ' + run.wait.human_task.title if run.wait and run.wait.human_task else ''}")  # fmt: skip


def work(db: str) -> None:
    runner = durable(db)
    runner.worker(poll_seconds=0.1).run(max_intents=1)
    print(f"  process B (pid {os.getpid()}): the worker resumed the crew")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", nargs="?", default="demo", choices=["demo", "start", "work"])
    parser.add_argument("--db", default="sqlite:///.tether/crewai-demo.db")
    args = parser.parse_args()
    if args.step == "start":
        return start(args.db)
    if args.step == "work":
        return work(args.db)

    import tether
    from tether import Principal

    Path(".tether").mkdir(exist_ok=True)
    path = args.db.removeprefix("sqlite:///")
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    me = [sys.executable, __file__, "--db", args.db]
    model = "gpt-4o-mini" if os.environ.get("OPENAI_API_KEY") else "a scripted model (offline)"
    print(f"1. process A runs the crew with {model} until the publish task needs an editor")
    subprocess.run([*me, "start"], check=True, env=env)
    with tether.connect(args.db) as client:
        [intent] = client.list_intents(to_agent=AGENT).items
        print(f"2. the editor approves intent {intent.intent_id} (process A has exited)")
        client.as_actor(Principal.human(EDITOR)).approve(
            intent.intent_id, comment="Good, ship it before noon"
        )
        print("3. process B, a worker, resumes the crew where it stopped")
        subprocess.run([*me, "work"], check=True, env=env)
        done = client.get_intent(intent.intent_id)
        print(f"   intent {done.status.value}: {done.result['raw']}")
        print("4. the audit trail")
        for event in client.list_events(intent.intent_id):
            details = event.details.get("key") or event.details.get("tool") or ""
            print(f"   {event.seq:>3} {event.event_type:<22} {event.actor:<32} {details}")
        usage = client.intent_usage(intent.intent_id)
        print(f"   model turns: {usage.turns}, tokens in/out: {usage.tokens_in}/{usage.tokens_out}")
        print(f"   audit chain verified: {client.verify_audit(intent.intent_id).ok}")


if __name__ == "__main__":
    main()
