"""Upgrades: runs parked in a person's wait by version 1 of an agent's code are finished by
version 2, in another process. A parked approval is never stranded by a deploy.

Process A runs ``_upgrade_v1`` (a crew research -> write -> publish whose publish task needs an
approval, and a flow whose ``review`` method waits for a person) until every run waits, and
exits. The editor answers in the test process. Process B runs ``_upgrade_v2`` as a worker: the
same crew with changed descriptions, changed tools and an announce task after the gated one,
and the same flow with a new state field and changed method bodies, each deployed three ways:
the gated task (paused method) kept, renamed or removed. Each deployment is its own agent
(``UPGRADE_CREWS``, ``UPGRADE_FLOWS``), so one pair of processes covers them all.

What B does, per deployment:

- kept: every run completes with version 2's code after the gate (its task description, its
  tool, its extra task; a rejected run stops before the gate); what version 1 finished is
  neither run again nor costs a model call;
- crew task renamed: a crew's tasks are identified by their position, so the renamed gated task
  gets the decision and the run completes;
- crew task removed: the run completes with the tasks version 2 has after the finished ones
  (announce); the decision stays on the run's result and on its trail;
- flow method renamed or removed: the run fails at once, the intent recording that the method
  it paused at is gone (not retried, not left waiting).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tether
from tether import Principal, Status

from ._apps import UPGRADE_CREWS, UPGRADE_FLOWS
from ._upgrade_v1 import PARKED

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow

EDITOR = Principal.human("editor@example.com", groups=["editors"])
V1_TASKS = ["RESEARCH durable agents", "WRITE a post on durable agents"]
V1_OUTPUTS = ["notes: agents crash, and their runs resume",
              "draft: a post on agents that survive a crash"]  # fmt: skip
RELEASED = (
    "released (v2) at https://blog.example.com/v2/durable-agents; "
    "decision: approved by human:editor@example.com; their comment: ship it."
)


@dataclass
class Upgrade:
    client: tether.Client
    workdir: Path
    v1: int
    """The process id of version 1 (process A), which parked the runs."""
    v2: int
    """The process id of version 2 (process B), which finished them."""
    parked: dict[str, list[str]]
    """The runs process A left waiting, by agent."""
    rejected: set[str]
    v2_output: str

    def runs(self, agent: str) -> list[tether.Intent]:
        return [self.client.get_intent(i) for i in self.parked[agent]]

    def entries(self, name: str, pid: int) -> list[str]:
        """The lines of effects.log or calls.log written by process ``pid``."""
        text = (self.workdir / name).read_text()
        return [line.split(" ", 1)[1] for line in text.splitlines()
                if line.startswith(f"{pid} ")]  # fmt: skip


def _process(module: str, db: str, workdir: Path) -> tuple[int, str]:
    """Run ``module`` to its end in a process of its own, with an empty HOME of its own."""
    home = workdir / f"home-{module}"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    env.update(HOME=str(home), TETHER_TEST_NET_LOG=str(workdir / "network.log"))
    process = subprocess.Popen(
        [sys.executable, "-m", f"tests.adapters.crewai.{module}", db, str(workdir)],
        cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    out, _ = process.communicate(timeout=240)
    assert process.returncode == 0, out
    return process.pid, out


@pytest.fixture(scope="module")
def upgrade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upgrade]:
    workdir = tmp_path_factory.mktemp("upgrade")
    for name in ("effects.log", "calls.log"):
        (workdir / name).touch()
    db = f"sqlite:///{workdir / 'tether.db'}"
    v1, _ = _process("_upgrade_v1", db, workdir)
    with tether.connect(db) as client:
        parked: dict[str, list[str]] = {}
        agents = {**{a: v for v, a in UPGRADE_CREWS.items()},
                  **{a: v for v, a in UPGRADE_FLOWS.items()}}  # fmt: skip
        for agent, variant in agents.items():
            runs = client.list_intents(to_agent=agent).items
            assert len(runs) == PARKED[variant]
            for run in runs:  # process A left every run waiting for the editor
                assert run.status is Status.WAITING and run.wait is not None
                assert run.wait.kind is tether.WaitKind.HUMAN and run.wait.is_open
            parked[agent] = sorted(run.intent_id for run in runs)
        rejected = {parked[UPGRADE_CREWS["same"]][0], parked[UPGRADE_FLOWS["same"]][0],
                    parked[UPGRADE_CREWS["removed"]][1], parked[UPGRADE_FLOWS["removed"]][1]}  # fmt: skip
        editor = client.as_actor(EDITOR)
        for intent_id in (i for runs in parked.values() for i in runs):
            if intent_id in rejected:
                editor.reject(intent_id, comment="not this one")
            else:
                editor.approve(intent_id, comment="ship it")
        v2, out = _process("_upgrade_v2", db, workdir)
        yield Upgrade(client, workdir, v1, v2, parked, rejected, out)


def test_no_parked_run_is_stranded_by_the_deploy(upgrade: Upgrade) -> None:
    for agent, runs in upgrade.parked.items():
        # version 2's worker took each run once and ended it; none waits, none is retried
        assert f"DONE {agent} {len(runs)}" in upgrade.v2_output
        for run in upgrade.runs(agent):
            assert run.status in (Status.COMPLETED, Status.FAILED), run
            events = [e.event_type for e in upgrade.client.list_events(run.intent_id)]
            assert events.count("intent.completed") + events.count("intent.failed") == 1


def test_crew_runs_parked_by_v1_finish_with_v2(upgrade: Upgrade) -> None:
    runs = upgrade.runs(UPGRADE_CREWS["same"])
    approved = [r for r in runs if r.intent_id not in upgrade.rejected]
    [rejected] = [r for r in runs if r.intent_id in upgrade.rejected]
    assert len(approved) == 3
    for run in approved:
        assert run.status is Status.COMPLETED
        result = run.result
        assert result["status"] == "completed"
        assert result["raw"] == "announced the release (v2)"  # the task v2 added
        # the tasks finished under v1 kept their v1 outputs; from the gate on, v2's tasks ran
        assert [t["description"] for t in result["tasks"]] == [
            *V1_TASKS,
            "RELEASE the post on the blog channel",
            "ANNOUNCE the release to subscribers",
        ]
        assert [t["raw"] for t in result["tasks"]] == [
            *V1_OUTPUTS,
            RELEASED,  # v2's publish tool (its URL), and the decision v1's run waited for
            "announced the release (v2)",
        ]
        assert result["decisions"]["crew/task/2/approval"]["outcome"] == "approved"
        tools = {s.key.split("/")[3]: s.result for s in upgrade.client.list_steps(run.intent_id)
                 if "/tool/" in s.key}  # fmt: skip
        assert tools["search"]["result"] == "3 articles about durable agents"  # v1's tool
        assert tools["publish"]["input"] == {"title": "Durable agents", "channel": "blog"}
        assert tools["publish"]["result"].endswith("https://blog.example.com/v2/durable-agents")
    # rejected: v2 stops before the gated task, as v1 would have
    assert rejected.status is Status.COMPLETED
    assert rejected.result["status"] == "stopped"
    assert rejected.result["stopped_at"] == {"index": 2, "name": "publish"}
    assert rejected.result["decision"]["comment"] == "not this one"
    assert [t["raw"] for t in rejected.result["tasks"]] == V1_OUTPUTS


def test_flow_runs_parked_by_v1_finish_with_v2(upgrade: Upgrade) -> None:
    runs = upgrade.runs(UPGRADE_FLOWS["same"])
    approved = [r for r in runs if r.intent_id not in upgrade.rejected]
    [rejected] = [r for r in runs if r.intent_id in upgrade.rejected]
    assert len(approved) == 3
    for run in approved:
        assert run.status is Status.COMPLETED
        # v2's publish and its new announce listener ran, on the state v1 paused with (v1's
        # draft) and v2's new state field at its default
        assert run.result["output"] == (
            "announced (v2): published (v2) on blog: a post about durable agents (ship it)"
        )
        state = run.result["state"]
        assert state["draft"] == "a post about durable agents"
        assert (state["channel"], state["outcome"]) == ("blog", "approved")
        record = upgrade.client.get_state(run.intent_id, "crewai.flow")
        assert record is not None
        assert record.data["pending"] is None and record.data["resuming"] is None
    assert rejected.status is Status.COMPLETED
    assert rejected.result["output"] == "shelved (v2): not this one"


def test_what_v1_finished_is_not_done_again(upgrade: Upgrade) -> None:
    """Process B (version 2) called the model only for the tasks after the gate, and ran only
    the side effects after it; everything before it ran once, in process A (version 1)."""
    crews = flows = sum(PARKED.values())  # runs parked, of each kind
    assert Counter(upgrade.entries("calls.log", upgrade.v1)) == {
        "RESEARCH": 2 * crews,  # a search, then the notes
        "WRITE": crews,
    }
    assert Counter(upgrade.entries("effects.log", upgrade.v1)) == {
        "search-v1:durable agents": crews,
        "write-v1": flows,
        "review-v1": flows,
    }
    # version 2: release + announce for 3 approved runs kept and 1 renamed, announce alone for
    # the removed one; the flow: publish + announce for 3 approved runs, shelve for 1
    assert Counter(upgrade.entries("calls.log", upgrade.v2)) == {"RELEASE": 8, "ANNOUNCE": 10}
    assert Counter(upgrade.entries("effects.log", upgrade.v2)) == {
        "publish-v2:Durable agents@blog": 4,
        "announce-v2:Durable agents is out": 5,
        "publish-v2:a post about durable agents@blog": 3,
        "announce-v2": 3,
        "shelve-v2": 1,
    }


def test_a_renamed_gated_task_runs_with_its_decision(upgrade: Upgrade) -> None:
    [run] = upgrade.runs(UPGRADE_CREWS["renamed"])
    assert run.status is Status.COMPLETED and run.result["status"] == "completed"
    # a crew's tasks are identified by position: the task now at the gate got the decision
    assert [t["name"] for t in run.result["tasks"]] == ["research", "write", "release", "announce"]
    assert run.result["tasks"][2]["raw"] == RELEASED


def test_a_removed_gated_task_leaves_its_decision_on_the_result(upgrade: Upgrade) -> None:
    run, refused = upgrade.runs(UPGRADE_CREWS["removed"])
    assert run.status is Status.COMPLETED and run.result["status"] == "completed"
    # v2 goes on with the task it has after the finished ones; nothing was published
    assert [t["name"] for t in run.result["tasks"]] == ["research", "write", "announce"]
    assert run.result["raw"] == "announced the release (v2)"
    assert not [s.key for s in upgrade.client.list_steps(run.intent_id) if "/publish/" in s.key]
    decision = run.result["decisions"]["crew/task/2/approval"]
    assert (decision["outcome"], decision["comment"]) == ("approved", "ship it")
    # a rejection there is never ignored by going on without the gate: the run fails clearly
    assert refused.status is Status.FAILED and refused.error is not None
    assert "a person answered 'rejected' at a gate there" in refused.error.message
    assert not [s.key for s in upgrade.client.list_steps(refused.intent_id) if "/2/" in s.key]


@pytest.mark.parametrize("variant", ["renamed", "removed"])
def test_a_renamed_or_removed_flow_method_fails_the_run_with_a_clear_error(
    upgrade: Upgrade, variant: str
) -> None:
    run = upgrade.runs(UPGRADE_FLOWS[variant])[0]
    assert run.status is Status.FAILED and run.error is not None
    assert run.error.message == (
        "AdapterError: the run paused at review() of an earlier version of PostFlow, which "
        "has no method 'review' now (renamed or removed?): it cannot resume there"
    )
    events = upgrade.client.list_events(run.intent_id)
    assert events[-1].event_type == "intent.failed"
    # the editor's answer is kept with the run
    [wait] = upgrade.client.list_waits(run.intent_id)
    assert (wait.outcome, wait.comment) == ("approved", "ship it")


def test_the_trails_verify_and_no_process_reached_the_network(upgrade: Upgrade) -> None:
    report = upgrade.client.verify_audit()
    assert report.ok, report.problems
    log = upgrade.workdir / "network.log"
    assert not log.exists() or log.read_text() == "", log.read_text()
