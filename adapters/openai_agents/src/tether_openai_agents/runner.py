"""Running an agent durably: submit it as an intent, run until done or suspended, resume it in
any process.

Example::

    runner = DurableRunner(agent, address="agent://demo/payments")

    # process A: submit and run until the run finishes or waits (for a person, a tool)
    outcome = await runner.run(client, "Pay invoice 42", key="invoice-42")
    outcome.status            # Status.COMPLETED, or Status.WAITING with outcome.wait

    # process B, whenever: a worker continues every run whose wait was answered
    runner.worker(client).run()

A run is a chain of *segments*. Each starts from the last state stored in tether (or from the
intent's input), applies the answers tether holds for the interrupted calls, and runs the SDK's
``Runner.run`` under the intent's lease, with every model turn and tool call journaled. It ends
when the run finishes (the intent completes with the final output), or when a call needs a
wait: the state is stored first, then the wait is opened, so a crash between the two leaves a
state a new worker resumes from.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import tether
from agents import Agent, Model, RunConfig, RunHooks, Runner, RunResult, RunState
from agents.items import TResponseInputItem
from agents.memory import Session
from pydantic import BaseModel

from . import _state
from ._binding import Abort, Binding, Price, bound
from ._codec import json_default
from ._decisions import Decider, Decisions
from ._graph import DurableGraph
from ._journal import Journal
from ._model import JournalingProvider, journaling
from .errors import StoredStateError
from .session import TetherSession

DEFAULT_INTENT_TYPE = "openai_agents.run.v1"

ContextFactory = Callable[[tether.Intent], Any]
"""Builds the run's context object for an intent (it is not stored; each segment rebuilds it)."""

SessionFactory = Callable[[tether.Client, tether.Intent], Session]
"""Opens the session a run of this intent uses, e.g. :meth:`TetherSession.for_intent`."""

RunInput = str | list[TResponseInputItem]

_NOT_STARTED = {tether.Status.SUBMITTED, tether.Status.DELIVERED, tether.Status.ACKNOWLEDGED}


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """Where a durable run stands after :meth:`DurableRunner.run` or ``resume`` returns."""

    intent_id: str
    status: tether.Status
    final_output: Any = None
    """The final output (as JSON) once the run completed."""
    wait: tether.Wait | None = None
    """What the run waits for, while it is ``WAITING``."""
    error: tether.ErrorInfo | None = None

    @property
    def completed(self) -> bool:
        return self.status is tether.Status.COMPLETED

    @property
    def waiting(self) -> bool:
        return self.status is tether.Status.WAITING


def as_json(value: Any) -> Any:
    """A final output as JSON: pydantic models and dataclasses as their fields."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=json_default))


def outcome_of(intent: tether.Intent) -> RunOutcome:
    return RunOutcome(
        intent_id=intent.intent_id,
        status=intent.status,
        final_output=intent.result if intent.status is tether.Status.COMPLETED else None,
        wait=intent.wait,
        error=intent.error,
    )


class DurableRunner:
    """Runs one agent (and the agents it hands off to) durably on tether.

    ``address`` is the agent's tether address (``agent://workspace/name``); each run is an
    intent of ``intent_type`` to it, whose payload is ``{"input": ...}``. ``context`` builds the
    run context from the intent, ``session`` opens the run's session (for example
    :meth:`TetherSession.for_intent`); ``hooks``, ``run_config`` and ``max_turns`` are passed to
    the SDK's ``Runner.run``. ``price(model, tokens_in, tokens_out)`` gives a model turn's
    cost in USD, reported as the agent's spend (without it, tokens are reported at no cost).
    """

    def __init__(
        self,
        agent: Agent[Any],
        *,
        address: str,
        intent_type: str = DEFAULT_INTENT_TYPE,
        context: ContextFactory | None = None,
        session: SessionFactory | None = None,
        hooks: RunHooks[Any] | None = None,
        run_config: RunConfig | None = None,
        max_turns: int = 10,
        lease_seconds: float = 60.0,
        price: Price | None = None,
    ) -> None:
        self._graph = DurableGraph(agent)
        self.price = price
        self.address = address
        self.intent_type = intent_type
        self.context = context
        self.session = session
        self.hooks = hooks
        self.max_turns = max_turns
        self.lease_seconds = lease_seconds
        base = run_config or RunConfig()
        model = journaling(base.model) if isinstance(base.model, Model) else base.model
        self.run_config = dataclasses.replace(
            base, model=model, model_provider=JournalingProvider(base.model_provider)
        )

    @property
    def agent(self) -> Agent[Any]:
        """The durable copy of the agent that runs (its tools and models are journaled)."""
        return self._graph.root

    # -- in a live process -----------------------------------------------------------------

    async def run(
        self,
        client: tether.Client,
        input: RunInput,
        *,
        key: str | None = None,
        correlation_id: str | None = None,
        metadata: dict[str, str] | None = None,
        deadline_at: datetime | None = None,
    ) -> RunOutcome:
        """Submit ``input`` as a new intent and run it until it finishes or waits.

        ``key`` makes the submission idempotent: the same key returns the same intent, and a
        run that already ended or waits is reported as it stands, not run again.
        """
        intent = await asyncio.to_thread(
            client.create_intent, self.intent_type, self.address, {"input": input},
            correlation_id=correlation_id, metadata=metadata, deadline_at=deadline_at,
            idempotency_key=key,
        )  # fmt: skip
        return await self.resume(client, intent.intent_id)

    async def resume(self, client: tether.Client, intent_id: str) -> RunOutcome:
        """Continue the intent's run here if it can go on (new, or its wait was answered);
        otherwise report where it stands."""
        while True:
            intent = await asyncio.to_thread(client.get_intent, intent_id)
            if intent.status is tether.Status.WAITING or intent.status.terminal:
                return outcome_of(intent)
            claim = await asyncio.to_thread(
                client.claim_intent, intent_id, lease_seconds=self.lease_seconds
            )
            lease = claim.lease
            if claim.intent.status in _NOT_STARTED:
                lease = await asyncio.to_thread(
                    client.start, intent_id, lease=lease, lease_seconds=self.lease_seconds
                )
            try:
                with tether.LeaseHeartbeat(client, lease, self.lease_seconds):
                    output = await self.drive(client, claim.intent, lease)
            except tether.Suspended:
                continue  # usually WAITING now; an already answered wait goes on at once
            except StoredStateError:
                # A newer release stored this run: leave it, unfailed, for a worker that reads it.
                await asyncio.to_thread(client.release, lease)
                raise
            except (tether.LeaseLost, tether.AgentStopped, tether.IntentTerminal):
                raise  # another worker goes on, the agent is held (lease released), or it ended
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"[:2000]
                error = tether.ErrorInfo(code="agent_error", message=message)
                await asyncio.to_thread(client.fail, intent_id, error, lease=lease)
                raise
            done = await asyncio.to_thread(client.complete, intent_id, output, lease=lease)
            return outcome_of(done)

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
            client, agent=self.address, owner=owner, lease_seconds=lease_seconds,
            poll_seconds=poll_seconds,
        )  # fmt: skip
        worker.handler(self.intent_type)(self.handle)
        return worker

    def handle(self, ctx: tether.WorkContext) -> Any:
        """The worker's handler: one segment of the intent's run, on a fresh event loop."""
        return asyncio.run(self.drive(ctx.client, ctx.intent, ctx.lease))

    # -- one segment -----------------------------------------------------------------------

    async def drive(self, client: tether.Client, intent: tether.Intent, lease: tether.Lease) -> Any:
        """Run the intent from its stored state until the run ends (returns the final output
        as JSON) or waits (raises ``tether.Suspended``). The caller holds ``lease``."""
        intent_id = intent.intent_id
        context = self.context(intent) if self.context is not None else None
        session = self.session(client, intent) if self.session is not None else None
        checkpoint = await asyncio.to_thread(_state.read, client, intent_id)
        journal = Journal(await asyncio.to_thread(client.list_steps, intent_id))
        checkpoint = await asyncio.to_thread(
            self._restore_session, client, intent_id, lease, session, checkpoint
        )
        run_input: RunInput | RunState[Any, Any]
        if checkpoint.run_state is None:
            run_input = intent.payload.get("input", "")
        else:
            run_input = await _state.load(self.agent, checkpoint.run_state, context)
        decider = Decider(client, intent_id, lease, context)
        while True:
            if isinstance(run_input, RunState):
                decisions = await decider.decide(run_input)  # or tether.Suspended
            else:
                decisions = Decisions()
            binding = Binding(
                client, intent_id, lease, journal, frozenset(decisions.approved),
                decisions.tool_waits, self.price, guard=await asyncio.to_thread(client.guard,
                                                                                self.address),
            )  # fmt: skip
            result = await self._run_sdk(binding, run_input, context, session)
            if not result.interruptions:
                return as_json(result.final_output)
            length = (
                await asyncio.to_thread(session.length)
                if isinstance(session, TetherSession)
                else None
            )
            checkpoint = await asyncio.to_thread(
                _state.write, client, intent_id, checkpoint, _state.dump(result.to_state()),
                length, lease,
            )  # fmt: skip
            assert checkpoint.run_state is not None
            # Go on exactly as a new process would: from the stored state (whose first
            # interruption now opens its wait).
            run_input = await _state.load(self.agent, checkpoint.run_state, context)

    async def _run_sdk(
        self,
        binding: Binding,
        run_input: RunInput | RunState[Any, Any],
        context: Any,
        session: Session | None,
    ) -> RunResult:
        """The SDK's ``Runner.run`` with the model and tool wrappers bound to this segment."""
        with bound(binding):
            try:
                result = await Runner.run(
                    self.agent, run_input,
                    context=None if isinstance(run_input, RunState) else context,
                    max_turns=self.max_turns, hooks=self.hooks, run_config=self.run_config,
                    session=session,
                )  # fmt: skip
            except Abort as abort:
                if isinstance(abort.error, tether.AgentStopped | tether.LeaseLost):
                    await binding.flush(stopped=True)  # what ran is kept across the stop
                raise abort.error from None
            await binding.flush()
        return result

    @staticmethod
    def _restore_session(
        client: tether.Client,
        intent_id: str,
        lease: tether.Lease,
        session: Session | None,
        checkpoint: _state.Checkpoint,
    ) -> _state.Checkpoint:
        """Put a tether session back to its length at the stored state (a run resumed after a
        crash replays the turns since), or note its length before the first turn."""
        if not isinstance(session, TetherSession):
            return checkpoint
        if checkpoint.session_length is not None:
            session.truncate(checkpoint.session_length, lease)
            return checkpoint
        if checkpoint.version == 0:
            return _state.write(client, intent_id, checkpoint, None, session.length(), lease)
        return checkpoint
