"""Flows as tether intents: paused through crewai's ``HumanFeedbackPending`` and resumed with
``Flow.from_pending(...).resume(decision_json)`` by whichever process claims the intent.

A segment either kicks the flow off (a new run: the flow's id is the intent's id), or resumes
its pause with the decision of the pause's tether wait. When the flow pauses (again), crewai
has saved the pause through :class:`TetherFlowPersistence`; the segment then opens the wait
the paused method described and suspends. A crash between the two leaves a saved pause whose
wait the next segment opens; a crash after a resume began leaves the pause in ``resuming``,
and the next segment resumes it again with the same decision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import tether
from crewai.flow import Flow, HumanFeedbackPending
from crewai.flow.flow_wrappers import RouterMethod
from crewai.flow.runtime import Flow as RuntimeFlow

from ._binding import PriceFn, ToolDeniedPolicy
from ._decision import Decision
from ._runner import DurableRun, RunResult
from ._values import to_json
from .errors import AdapterError
from .flow_steps import pause_of
from .persistence import FlowRecords, TetherFlowPersistence

FLOW_INTENT_TYPE = "crewai.flow.v1"


def pause_key(ordinal: int) -> str:
    return f"crewai/flow/pause/{ordinal}"


class DurableFlow(DurableRun):
    """A flow class whose runs are tether intents that survive their process.

    Example::

        @persist(TetherFlowPersistence())
        class ContentFlow(Flow[ContentState]):
            @start()
            def draft(self) -> str: ...

            @listen(draft)
            @wait_for_human("Publish this post?", groups=["editors"])
            def review(self, draft: str) -> dict: ...

            @listen(review)
            def publish(self, result: HumanFeedbackResult) -> str: ...

        durable = DurableFlow(ContentFlow, tether.connect(), agent="agent://acme/content")
        run = durable.run({"topic": "durable agents"}, key="post-42")   # waits for an editor
        durable.worker().run()          # any process, later: resumes it with the decision

    The arguments after ``flow`` are those of :class:`tether_crewai.DurableCrew`.
    """

    def __init__(
        self,
        flow: type[Flow[Any]],
        client: tether.Client | None = None,
        *,
        agent: str,
        intent_type: str = FLOW_INTENT_TYPE,
        lease_seconds: float = 60.0,
        price: PriceFn | None = None,
        on_tool_denied: ToolDeniedPolicy = "tell_model",
        crewai_telemetry: bool = False,
    ) -> None:
        super().__init__(
            client, agent=agent, intent_type=intent_type, lease_seconds=lease_seconds,
            price=price, on_tool_denied=on_tool_denied, crewai_telemetry=crewai_telemetry,
        )  # fmt: skip
        for name, method in vars(flow).items():
            if isinstance(method, RouterMethod) and pause_of(flow, name) is not None:
                # crewai resumes a paused method by triggering its own name's listeners,
                # never the route it returned: the routed branch would be skipped in silence
                raise TypeError(
                    f"{flow.__name__}.{name} is a @router that waits: a router's route is "
                    "lost when its flow resumes; wait in a @start or @listen method and "
                    "route on its result in a @router after it"
                )
        self.flow = flow

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
        """Submit a run with ``inputs`` (the flow's kickoff inputs, without ``id``) and run
        it here until it ends or pauses. ``key`` makes the submission idempotent."""
        if inputs and "id" in inputs:
            raise ValueError("a durable flow's id is its intent id; leave 'id' out of inputs")
        return self._submit(
            {"inputs": to_json(inputs or {})}, client=client, key=key,
            correlation_id=correlation_id, metadata=metadata, deadline_at=deadline_at,
        )  # fmt: skip

    def segment(self, client: tether.Client, intent: tether.Intent, lease: tether.Lease) -> Any:
        """Kick the flow off, or resume its pause with the pause's decision; return the
        flow's result, or open the wait of its next pause and suspend."""
        intent_id = intent.intent_id
        records = FlowRecords(client, intent_id, lease)
        record, _ = records.read()
        pause = record.get("pending") or record.get("resuming")
        persistence = TetherFlowPersistence(client=client)
        flow: RuntimeFlow[Any]
        if pause is None:
            binding = self.binding(client, intent, lease, scope="flow/p0")
            with self.installed(binding):
                flow = self.flow(persistence=persistence)
                inputs = {**(intent.payload.get("inputs") or {}), "id": intent_id}
                output = flow.kickoff(inputs=inputs)
        else:
            ordinal = int(pause["ordinal"])
            method = str(pause["context"].get("method_name"))
            if not callable(getattr(self.flow, method, None)):  # crewai would raise KeyError
                raise AdapterError(
                    f"the run paused at {method}() of an earlier version of "
                    f"{self.flow.__name__}, which has no method {method!r} now (renamed or "
                    "removed?): it cannot resume there"
                )
            decision = self._decision(client, intent_id, pause, lease)
            if record.get("pending") is None:  # a resume of this pause died: do it again
                records.update(_reopen)
            binding = self.binding(client, intent, lease, scope=f"flow/p{ordinal}")
            with self.installed(binding):
                flow = self.flow.from_pending(intent_id, persistence)
                output = flow.resume(decision.to_json())
        if isinstance(output, HumanFeedbackPending):
            record, _ = records.read()
            if record.get("pending") is None:
                raise AdapterError("the flow paused, but its persistence saved no pause")
            raise tether.Suspended(self._open(client, intent_id, record["pending"], lease))
        records.update(_finish)
        return {"status": "completed", "output": to_json(output), "state": to_json(flow.state)}

    def _decision(
        self, client: tether.Client, intent_id: str, pause: dict[str, Any], lease: tether.Lease
    ) -> Decision:
        """The decision of the pause's wait; opens the wait (and suspends) if the process
        that paused died before it did, suspends if the wait is still open."""
        key = pause_key(int(pause["ordinal"]))
        wait = next((w for w in client.list_waits(intent_id) if w.key == key), None)
        if wait is None:
            wait = self._open(client, intent_id, pause, lease)
        if wait.is_open:
            raise tether.Suspended(wait)
        return Decision.of(wait)

    def _open(
        self, client: tether.Client, intent_id: str, pause: dict[str, Any], lease: tether.Lease
    ) -> tether.Wait:
        context = pause["context"]
        spec = (context.get("metadata") or {}).get("tether")
        key = pause_key(int(pause["ordinal"]))
        method = str(context.get("method_name"))
        if not isinstance(spec, dict):  # a pause of other code (crewai's @human_feedback)
            message = str(context.get("message") or f"The flow waits for feedback on {method}")
            spec = {"kind": "human", "task": tether.HumanTask(title=message[:255]).model_dump()}
        on_timeout = tether.OnTimeout(
            action="fail" if spec.get("on_timeout") == "fail" else "resume"
        )
        if spec.get("kind") == "tool":
            declared = pause_of(self.flow, method)
            if declared is None or declared.start is None:
                raise AdapterError(f"{self.flow.__name__}.{method} no longer starts a tool call")
            wait = client.wait_for_tool(
                intent_id, str(spec["tool_name"]), key=key, timeout=spec.get("timeout"),
                heartbeat_timeout=spec.get("heartbeat_timeout"), on_timeout=on_timeout,
                lease=lease,
            )  # fmt: skip
            assert wait.callback_token is not None
            declared.start(wait.callback_token, context.get("method_output"))
            return wait
        return client.wait_for_human(
            intent_id, tether.HumanTask.model_validate(spec["task"]), key=key,
            timeout=spec.get("timeout"), on_timeout=on_timeout, lease=lease,
        )  # fmt: skip


def _reopen(record: dict[str, Any]) -> None:
    record["pending"] = record.get("resuming")


def _finish(record: dict[str, Any]) -> None:
    record["resuming"] = None
