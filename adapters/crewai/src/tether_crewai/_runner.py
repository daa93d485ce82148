"""What a durable crew and a durable flow share: runs are intents, claimed under a lease, run
one segment at a time until they end or wait, and continued by a ``tether.Worker``.

A segment starts from what tether holds (the task journal, the flow's stored state and
pause), runs crewai with the adapter's hooks installed, and ends in one of three ways: the
run finishes (the intent completes with its result), it waits (a wait was opened; the
process may exit), or the agent was stopped (killed, paused, held for a spend approval: the
intent is held, not failed, and claimed again after a resume).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import tether

from ._binding import Abort, Binding, PriceFn, StepBoundary, ToolDeniedPolicy
from ._env import allow_crewai_telemetry, quiet_crewai
from ._hooks import installed

logger = logging.getLogger("tether_crewai")

_NOT_STARTED = (tether.Status.SUBMITTED, tether.Status.DELIVERED, tether.Status.ACKNOWLEDGED)


@dataclass(frozen=True)
class RunResult:
    """Where a run stands after this process ran it."""

    intent_id: str
    status: tether.Status
    output: Any = None
    """The intent's result (JSON) once it completed."""
    wait: tether.Wait | None = None
    """What the run waits for, while it is ``WAITING``."""
    error: tether.ErrorInfo | None = None

    @property
    def completed(self) -> bool:
        return self.status is tether.Status.COMPLETED

    @property
    def waiting(self) -> bool:
        return self.status is tether.Status.WAITING

    @classmethod
    def of(cls, intent: tether.Intent) -> RunResult:
        done = intent.status is tether.Status.COMPLETED
        return cls(
            intent_id=intent.intent_id,
            status=intent.status,
            output=intent.result if done else None,
            wait=intent.wait,
            error=intent.error,
        )


class DurableRun(ABC):
    """The shared runner of :class:`DurableCrew` and :class:`DurableFlow`."""

    def __init__(
        self,
        client: tether.Client | None,
        *,
        agent: str,
        intent_type: str,
        lease_seconds: float,
        price: PriceFn | None,
        on_tool_denied: ToolDeniedPolicy,
        crewai_telemetry: bool,
    ) -> None:
        self.client = client
        self.agent = agent
        self.intent_type = intent_type
        self.lease_seconds = lease_seconds
        self.price = price
        self.on_tool_denied: ToolDeniedPolicy = on_tool_denied
        self.crewai_telemetry = crewai_telemetry
        self._configure_crewai()

    def _configure_crewai(self) -> None:
        if self.crewai_telemetry:
            allow_crewai_telemetry()
        else:
            quiet_crewai()

    def _client(self, client: tether.Client | None) -> tether.Client:
        found = client or self.client
        if found is None:
            raise tether.TetherError("no tether client: pass one to the runner or to this call")
        return found

    # -- in a live process -----------------------------------------------------------------

    def _submit(
        self,
        payload: dict[str, Any],
        *,
        client: tether.Client | None,
        key: str | None,
        correlation_id: str | None,
        metadata: dict[str, str] | None,
        deadline_at: datetime | None,
    ) -> RunResult:
        found = self._client(client)
        intent = found.create_intent(
            self.intent_type, self.agent, payload, correlation_id=correlation_id,
            metadata=metadata, deadline_at=deadline_at, idempotency_key=key,
        )  # fmt: skip
        return self.resume(intent.intent_id, client=found)

    def resume(self, intent_id: str, *, client: tether.Client | None = None) -> RunResult:
        """Continue the run here if it can go on (new, or its wait was answered); otherwise
        report where it stands. A run whose agent is stopped is left held."""
        found = self._client(client)
        intent = found.get_intent(intent_id)
        if intent.status is tether.Status.WAITING or intent.status.terminal:
            return RunResult.of(intent)
        try:
            claim = found.claim_intent(intent_id, lease_seconds=self.lease_seconds)
            lease = claim.lease
            if claim.intent.status in _NOT_STARTED:
                lease = found.start(intent_id, lease=lease, lease_seconds=self.lease_seconds)
        except tether.AgentStopped:
            return RunResult.of(found.get_intent(intent_id))
        ctx = tether.WorkContext(client=found, claim=claim, lease=lease)
        try:
            with tether.LeaseHeartbeat(found, lease, self.lease_seconds):
                output = self.handle(ctx)
        except tether.Suspended:
            pass
        except (tether.AgentStopped, tether.IntentTerminal) as stopped:
            logger.info("run %s stopped: %s", intent_id, stopped)
        except tether.LeaseLost:
            raise
        except Exception as exc:
            error = tether.ErrorInfo(code="crewai_error", message=f"{type(exc).__name__}: {exc}")
            found.fail(intent_id, error, lease=lease)
            raise
        else:
            found.complete(intent_id, output, lease=lease)
        return RunResult.of(found.get_intent(intent_id))

    # -- through a worker ------------------------------------------------------------------

    def worker(
        self,
        client: tether.Client | None = None,
        *,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        owner: str | None = None,
    ) -> tether.Worker:
        """A ``tether.Worker`` that claims this agent's runs (new ones, and those whose wait
        was answered) and continues them; run it with ``.run()`` or ``tether worker``."""
        worker = tether.Worker(
            client or self.client, agent=self.agent, owner=owner,
            lease_seconds=lease_seconds, poll_seconds=poll_seconds,
        )  # fmt: skip
        worker.handler(self.intent_type)(self.handle)
        return worker

    def handle(self, ctx: tether.WorkContext) -> Any:
        """The worker's handler: one segment of the intent's run. Returns the run's result
        (the intent completes), or raises ``tether.Suspended`` (it waits) or
        ``tether.AgentStopped`` (it is held)."""
        self._configure_crewai()
        try:
            return self.segment(ctx.client, ctx.intent, ctx.lease)
        except Abort as abort:
            raise abort.error from None

    def binding(
        self,
        client: tether.Client,
        intent: tether.Intent,
        lease: tether.Lease,
        *,
        scope: str,
        boundary: StepBoundary | None = None,
        steps: dict[str, Any] | None = None,
    ) -> Binding:
        if steps is None:
            steps = {s.key: s.result for s in client.list_steps(intent.intent_id)}
        return Binding(
            client=client, intent_id=intent.intent_id, lease=lease, scope=scope, steps=steps,
            on_tool_denied=self.on_tool_denied, price=self.price, boundary=boundary,
            guard=client.guard(self.agent),
        )  # fmt: skip

    installed = staticmethod(installed)

    @abstractmethod
    def segment(self, client: tether.Client, intent: tether.Intent, lease: tether.Lease) -> Any:
        """Run the intent from where tether says it stands to its next stop."""
