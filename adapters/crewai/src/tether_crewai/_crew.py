"""Crews as tether intents: finished tasks kept in the journal, gated tasks suspended.

Each segment builds the crew afresh (or resets the one it was given), puts back the outputs
of the tasks tether holds as finished, and kicks it off with crewai's own resume rule (a crew
whose ``checkpoint_kickoff_event_id`` is set starts at its first task without an output), so
a finished task is neither run again nor costs a model call. At each task's start and end the
segment's hooks journal the output, open the gate's wait and suspend, or hand the task the
decision it waited for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import tether
from crewai import Crew, Task
from crewai.crews.crew_output import CrewOutput
from crewai.tasks.conditional_task import ConditionalTask
from crewai.tasks.task_output import TaskOutput

from ._binding import Binding, PriceFn, ToolDeniedPolicy
from ._decision import Decision
from ._runner import DurableRun, RunResult
from ._values import dump_output, load_output, note_output, to_json
from .errors import AdapterError
from .gates import Gate, gate_of, set_decision

CREW_INTENT_TYPE = "crewai.crew.v1"

CrewSource = Crew | Callable[[], Crew]


def output_key(index: int) -> str:
    return f"crew/task/{index}/output"


def draft_key(index: int, round_: int) -> str:
    return f"crew/task/{index}/draft/{round_}"


def wait_key(index: int, gate: Gate, round_: int = 0) -> str:
    if gate.kind == "review":
        return f"crew/task/{index}/review/{round_}"
    return f"crew/task/{index}/{gate.kind}"


@dataclass(frozen=True)
class Stopped:
    """The crew ends before task ``index`` because of ``decision``."""

    index: int
    decision: Decision


class CrewSegment:
    """One segment of a crew run: settles what the journal and the waits say, then serves
    the hooks at each task's start and end."""

    def __init__(self, crew: Crew, binding: Binding, waits: dict[str, tether.Wait]) -> None:
        self.crew = crew
        self.tasks: list[Task] = list(crew.tasks)
        self.index_of = {id(task): i for i, task in enumerate(self.tasks)}
        self.binding = binding
        self.waits = waits
        for task in self.tasks:
            if gate_of(task) is not None and task.async_execution:
                raise AdapterError(f"the gated task {task.name or task.description!r} is async")

    # -- what tether holds -----------------------------------------------------------------

    def finished(self, index: int) -> dict[str, Any] | None:
        found, value = self.binding.recorded(output_key(index))
        return value if found and isinstance(value, dict) else None

    def first_unfinished(self) -> int | None:
        for i in range(len(self.tasks)):
            if self.finished(i) is None:
                return i
        return None

    def rounds(self, index: int) -> int:
        """How many outputs of a reviewed task were sent for review."""
        n = 0
        while self.binding.recorded(draft_key(index, n + 1))[0]:
            n += 1
        return n

    def decision(self, key: str) -> Decision | None:
        """The decision of the closed wait ``key``; suspends if it is still open."""
        wait = self.waits.get(key)
        if wait is None:
            return None
        if wait.is_open:
            raise tether.Suspended(wait)
        return Decision.of(wait)

    # -- before the kickoff ----------------------------------------------------------------

    def settle(self) -> Stopped | None:
        """Apply every decision that ends a gate without running its task (skip, accept,
        stop); what is left runs in the kickoff."""
        while (index := self.first_unfinished()) is not None:
            task = self.tasks[index]
            gate = gate_of(task)
            if gate is None:
                self.refuse_an_unkept_answer(index)
                return None
            if gate.kind == "review":
                round_ = self.rounds(index)
                if round_ == 0:
                    return None
                decision = self.decision(wait_key(index, gate, round_))
                if decision is None:  # the process died between the draft and its review
                    raise tether.Suspended(self.open_review(index, round_))
                policy = gate.policy(decision)
                if policy == "revise" and round_ >= gate.max_rounds:
                    policy = "stop"
                if policy == "revise":
                    return None
                if policy != "accept":
                    return Stopped(index, decision)
                draft = self.binding.recorded(draft_key(index, round_))[1]
                self.binding.record(output_key(index), draft)
                continue
            decision = self.decision(wait_key(index, gate))
            if decision is None:
                return None  # the kickoff opens the wait at the task's start
            policy = gate.policy(decision)
            if policy == "run":
                return None
            if policy != "skip":
                return Stopped(index, decision)
            agent = task.agent.role if task.agent is not None else ""
            note = note_output(task, agent, f"This task was not done: {decision.describe()}.")
            self.binding.record(output_key(index), dump_output(note))
        return None

    def refuse_an_unkept_answer(self, index: int) -> None:
        """The task at ``index`` has no gate in this release, but a person answered a gate
        there for the release that asked. An approval lets the crew go on; any other answer
        would be ignored by running on, so the run fails with a clear error instead."""
        prefix = f"crew/task/{index}/"
        for key, wait in self.waits.items():
            if not key.startswith(prefix) or wait.is_open or wait.kind is not tether.WaitKind.HUMAN:
                continue
            decision = Decision.of(wait)
            if not decision.approved:
                raise AdapterError(
                    f"task {index} of this crew has no gate now, but a person answered "
                    f"{decision.outcome!r} at a gate there for an earlier release: going on "
                    "would ignore that answer"
                )

    def restore(self) -> None:
        """Put back the outputs of finished tasks so the kickoff starts after them."""
        restored, prefix = False, True
        for i, task in enumerate(self.tasks):
            stored = self.finished(i) if prefix else None
            if stored is None:
                prefix = False
                task.output = None
            else:
                task.output = load_output(stored, task)
                restored = True
        self.crew.checkpoint_kickoff_event_id = (
            f"tether:{self.binding.intent_id}" if restored else None
        )

    # -- the hooks at each task's start and end (tether_crewai._hooks) ---------------------

    def label(self, task: Any) -> str | None:
        index = self.index_of.get(id(task))
        if index is None:
            return None
        gate = gate_of(self.tasks[index])
        if gate is not None and gate.kind == "review":
            return f"task-{index}-r{self.rounds(index) + 1}"
        return f"task-{index}"

    def before_task(self, task: Any, context: str | None) -> str | None:
        index = self.index_of.get(id(task))
        if index is not None:
            self._record_skipped(index)
        gate = gate_of(task) if index is not None else None
        if index is None or gate is None:
            return None
        note: str | None = None
        if gate.kind == "review":
            round_ = self.rounds(index)
            decision = self.decision(wait_key(index, gate, round_)) if round_ else None
            if decision is not None:
                previous = self.binding.recorded(draft_key(index, round_))[1] or {}
                note = (
                    f"A reviewer did not accept your previous output (review {round_}): "
                    f"{decision.describe()}.\nYour previous output was:\n"
                    f"{previous.get('raw', '')}\nRevise it accordingly."
                )
        else:
            key = wait_key(index, gate)
            decision = self.decision(key)
            if decision is None:
                raise tether.Suspended(self.open_gate(index, gate))
            if gate.kind == "tool":
                note = f"The external call '{gate.tool_name}' ended: {decision.describe()}."
            else:
                note = f"A person decided on this task before it ran: {decision.describe()}."
        if decision is None or note is None:
            return None
        set_decision(task, decision)
        return f"{context}\n\n{note}" if context else note

    def _record_skipped(self, index: int) -> None:
        """crewai skips a ConditionalTask whose condition is false without running its
        hooks, so nothing recorded it: once a later task starts, record the output crewai
        gave it, or a resume would stop restoring finished tasks there and run the later
        ones (their model calls and callbacks) again."""
        for j in range(index):
            skipped = self.tasks[j]
            if isinstance(skipped, ConditionalTask) and self.finished(j) is None:
                self.binding.record(output_key(j), dump_output(skipped.get_skipped_task_output()))

    def after_task(self, task: Any, output: Any) -> None:
        index = self.index_of.get(id(task))
        if index is None or not isinstance(output, TaskOutput):
            return
        gate = gate_of(task)
        if gate is not None and gate.kind == "review":
            round_ = self.rounds(index) + 1
            self.binding.record(draft_key(index, round_), dump_output(output))
            raise tether.Suspended(self.open_review(index, round_))
        self.binding.record(output_key(index), dump_output(output))

    # -- opening waits ---------------------------------------------------------------------

    def open_gate(self, index: int, gate: Gate) -> tether.Wait:
        task, b = self.tasks[index], self.binding
        key = wait_key(index, gate)
        if gate.kind == "tool":
            assert gate.tool_name is not None and gate.start is not None
            wait = b.call(
                b.client.wait_for_tool, b.intent_id, gate.tool_name, key=key,
                timeout=gate.timeout, heartbeat_timeout=gate.heartbeat_timeout,
                on_timeout=gate.timeout_spec(), lease=b.lease,
            )  # fmt: skip
            assert wait.callback_token is not None
            gate.start(wait.callback_token, task)
        else:
            wait = b.call(
                b.client.wait_for_human, b.intent_id, gate.human_task(task), key=key,
                timeout=gate.timeout, on_timeout=gate.timeout_spec(), lease=b.lease,
            )  # fmt: skip
        self.waits[key] = wait
        return wait

    def open_review(self, index: int, round_: int) -> tether.Wait:
        task, b = self.tasks[index], self.binding
        gate = gate_of(task)
        assert gate is not None
        draft = b.recorded(draft_key(index, round_))[1] or {}
        key = wait_key(index, gate, round_)
        wait = b.call(
            b.client.wait_for_human, b.intent_id, gate.human_task(task, draft.get("raw")),
            key=key, timeout=gate.timeout, on_timeout=gate.timeout_spec(), lease=b.lease,
        )  # fmt: skip
        self.waits[key] = wait
        return wait

    # -- results ---------------------------------------------------------------------------

    def finished_outputs(self) -> list[dict[str, Any]]:
        found = (self.finished(i) for i in range(len(self.tasks)))
        return [_brief(stored) for stored in found if stored is not None]

    def decisions(self) -> dict[str, Any]:
        return {
            key: Decision.of(wait).as_dict()
            for key, wait in sorted(self.waits.items())
            if not wait.is_open
        }


def _brief(stored: dict[str, Any]) -> dict[str, Any]:
    return {k: stored.get(k) for k in ("name", "description", "raw", "json_dict", "agent")}


class DurableCrew(DurableRun):
    """A crew whose runs are tether intents that survive their process.

    Example::

        durable = DurableCrew(build_crew, tether.connect(), agent="agent://acme/content")
        run = durable.run({"topic": "durable agents"}, key="post-42")
        run.waiting        # True: an editor was asked (the process may exit)

        durable.worker().run()   # any process, later: resumes runs whose wait was answered

    Args:
        crew: a function that builds the crew (called once per segment), or a crew (reused,
            one segment at a time). Wrap its tasks with :func:`requires_approval`,
            :func:`requires_review` or :func:`awaits_tool` where they need a person or a
            long external call.
        client: a tether client (in-process or HTTP); each call may pass another.
        agent: the agent address runs are sent to and workers claim for.
        intent_type: the intent type of runs.
        lease_seconds: the lease on a running run, renewed while it runs.
        price: ``(model, tokens_in, tokens_out) -> USD`` of a model turn, for spend caps.
        on_tool_denied: ``"tell_model"`` (the model gets the denial as the tool's result) or
            ``"fail"`` (the run fails with ``tether.ToolDenied``).
        crewai_telemetry: leave crewai's telemetry, tracing and version check as crewai
            would have them (the adapter switches them off by default).
    """

    def __init__(
        self,
        crew: CrewSource,
        client: tether.Client | None = None,
        *,
        agent: str,
        intent_type: str = CREW_INTENT_TYPE,
        lease_seconds: float = 60.0,
        price: PriceFn | None = None,
        on_tool_denied: ToolDeniedPolicy = "tell_model",
        crewai_telemetry: bool = False,
    ) -> None:
        super().__init__(
            client, agent=agent, intent_type=intent_type, lease_seconds=lease_seconds,
            price=price, on_tool_denied=on_tool_denied, crewai_telemetry=crewai_telemetry,
        )  # fmt: skip
        self.crew = crew
        self._lock = threading.Lock()

    def run(
        self,
        inputs: dict[str, Any] | None = None,
        *,
        client: tether.Client | None = None,
        key: str | None = None,
        correlation_id: str | None = None,
        metadata: dict[str, str] | None = None,
        deadline_at: datetime | None = None,
    ) -> RunResult:
        """Submit a run with ``inputs`` (the crew's kickoff inputs) and run it here until it
        ends or waits. ``key`` makes the submission idempotent: the same key reports the same
        run as it stands instead of running it again."""
        return self._submit(
            {"inputs": to_json(inputs or {})}, client=client, key=key,
            correlation_id=correlation_id, metadata=metadata, deadline_at=deadline_at,
        )  # fmt: skip

    def segment(self, client: tether.Client, intent: tether.Intent, lease: tether.Lease) -> Any:
        """Settle the gates tether has answers for, then kick the crew off from its first
        unfinished task; returns the run's result, or suspends at the next gate."""
        with self._lock if isinstance(self.crew, Crew) else _no_lock():
            crew = self.crew if isinstance(self.crew, Crew) else self.crew()
            binding = self.binding(client, intent, lease, scope="crew")
            waits = {w.key: w for w in client.list_waits(intent.intent_id)}
            segment = CrewSegment(crew, binding, waits)
            binding.boundary = segment
            with self.installed(binding):
                stopped = segment.settle()
                if stopped is not None:
                    return self._stopped(segment, stopped)
                segment.restore()
                if crew.tracing is None and not self.crewai_telemetry:
                    crew.tracing = False
                inputs = intent.payload.get("inputs") or {}
                output = crew.kickoff(inputs=inputs)
            if not isinstance(output, CrewOutput):
                raise AdapterError("streaming crews cannot run durably (set stream=False)")
            return {
                "status": "completed",
                "raw": output.raw,
                "json_dict": to_json(output.json_dict),
                "tasks": [_brief(dump_output(t)) for t in output.tasks_output],
                "decisions": segment.decisions(),
                "tool_denials": binding.denials,
            }

    @staticmethod
    def _stopped(segment: CrewSegment, stopped: Stopped) -> dict[str, Any]:
        task = segment.tasks[stopped.index]
        return {
            "status": "stopped",
            "stopped_at": {"index": stopped.index, "name": task.name or task.description},
            "decision": stopped.decision.as_dict(),
            "tasks": segment.finished_outputs(),
            "decisions": segment.decisions(),
        }


class _no_lock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
