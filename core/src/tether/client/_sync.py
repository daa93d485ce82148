"""The synchronous client."""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from ..clock import Clock
from ..engine import Engine
from ..errors import (
    ApprovalPending,
    CorruptStore,
    InvalidRequest,
    RateLimited,
    StoreClosed,
    StoreError,
    TetherError,
)
from ..model import (
    TERMINAL,
    Agent,
    AgentPolicy,
    AgentStatus,
    ChainReport,
    Claim,
    ErrorInfo,
    Event,
    FeedItem,
    Health,
    HumanTask,
    Intent,
    KeyRole,
    Lease,
    MeshEvent,
    NewIntent,
    OnTimeout,
    Page,
    Principal,
    PrincipalKind,
    SpendWindow,
    StateEntry,
    StateRecord,
    Status,
    Step,
    TurnUsage,
    UsageReport,
    Wait,
    WaitKind,
    WaitSpec,
)
from ..model.waits import MAX_SECONDS
from ..store import AGENT_CHANGES, Store
from ..store.bridge import pause
from ._guard import AgentGuard
from ._http import HttpBackend

T = TypeVar("T")


def default_owner() -> str:
    """A worker identity that names the host, the process and the thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def transient(exc: BaseException) -> bool:
    """The store or server is away for now (not corrupt, not closed by this process: those
    do not pass by waiting), or the server's rate limiter asked this key to slow down (it
    refuses before anything is done, so any call may be made again)."""
    if isinstance(exc, RateLimited):
        return exc.code == RateLimited.code  # (not an agent's intent limit or spend cap)
    return isinstance(exc, StoreError) and not isinstance(exc, CorruptStore | StoreClosed)


_BACKOFF = wait_exponential(multiplier=0.05, max=1.0) + wait_random(0, 0.05)


def _backoff(state: RetryCallState) -> float:
    """The pause before the next try: what a rate limit asked for, else the back-off."""
    exc = state.outcome.exception() if state.outcome is not None else None
    pace = exc.retry_after if isinstance(exc, RateLimited) else 0.0
    return max(pace, _BACKOFF(state))


def _token(lease: Lease | str | None) -> str | None:
    return lease.token if isinstance(lease, Lease) else lease


def _deadline(clock: Clock, deadline_at: datetime | None, timeout: float | None) -> datetime | None:
    if deadline_at is not None and timeout is not None:
        raise ValueError("pass deadline_at or timeout, not both")
    if timeout is not None:
        if not 0 < timeout <= MAX_SECONDS:  # also false for NaN
            raise InvalidRequest(f"timeout must be between 0 and {MAX_SECONDS} seconds")
        return clock.now() + timedelta(seconds=timeout)
    return deadline_at


class Client:
    """tether's client. ``tether.connect()`` opens the embedded store in this process.

    Every method acts as the client's ``actor`` (the principal given to :func:`connect`).

    Example::

        client = tether.connect()
        intent = client.create_intent("refund.request.v1", "agent://demo/refunds", {"amount": 120})
        lease = client.start(intent.intent_id)
        client.wait_for_human(intent.intent_id, HumanTask(title="Refund 120?"), lease=lease)
    """

    def __init__(self, engine: Engine | HttpBackend, *, owns_store: bool = True) -> None:
        self._engine = engine
        self._owns_store = owns_store
        self._views: dict[Principal, Client] = {}
        self._guards: dict[str, AgentGuard] = {}
        self._guards_lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The in-process engine (library mode only)."""
        if not isinstance(self._engine, Engine):
            raise TetherError("this client talks HTTP; there is no in-process engine")
        return self._engine

    @property
    def store(self) -> Store:
        return self.engine.store

    @property
    def url(self) -> str | None:
        """The server URL, for a client that talks HTTP."""
        return self._engine.url if isinstance(self._engine, HttpBackend) else None

    @property
    def clock(self) -> Clock:
        return self._engine.clock

    def as_actor(self, actor: Principal) -> Client:
        """A client acting as another principal: in-process, on the same store; over HTTP,
        with a key minted for it (this client's key must be an admin's, of the principal's
        workspace: an admin key makes keys of its own workspace only)."""
        if isinstance(self._engine, Engine):
            return Client(self._engine.with_actor(actor), owns_store=False)
        view = self._views.get(actor)
        if view is None:
            role = {
                PrincipalKind.HUMAN: KeyRole.APPROVER,
                PrincipalKind.AGENT: KeyRole.AGENT,
            }.get(actor.kind, KeyRole.ADMIN)
            made = self._engine.create_key(
                role,
                agent=actor.name if role is KeyRole.AGENT else None,
                subject=None if role is KeyRole.AGENT else actor.name,
                groups=list(actor.groups),
                workspace=actor.workspace,
            )
            backend = HttpBackend(self._engine.url, api_key=made.secret, clock=self._engine.clock)
            view = self._views[actor] = Client(backend)
        return view

    def close(self) -> None:
        remote = isinstance(self._engine, HttpBackend)
        for guard in self._guards.values():
            # in-process the watcher must be gone before the store closes under it; over
            # HTTP it ends on its own when the connection closes
            guard.close(wait=0.0 if remote else 5.0)
        for view in self._views.values():
            view.close()
        if isinstance(self._engine, HttpBackend):
            self._engine.close()
        elif self._owns_store:
            self._engine.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- intents -----------------------------------------------------------------------------

    def create_intent(
        self,
        intent_type: str,
        to_agent: str,
        payload: dict[str, Any] | None = None,
        *,
        correlation_id: str | None = None,
        from_agent: str | None = None,
        reply_to: str | None = None,
        deadline_at: datetime | None = None,
        human_task: HumanTask | None = None,
        parent_intent_id: str | None = None,
        metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Intent:
        """Submit an intent to an agent. With ``human_task`` it waits for a person at once."""
        req = NewIntent(
            intent_type=intent_type,
            to_agent=to_agent,
            payload=payload or {},
            correlation_id=correlation_id,
            from_agent=from_agent,
            reply_to=reply_to,
            deadline_at=deadline_at,
            human_task=human_task,
            parent_intent_id=parent_intent_id,
            metadata=metadata or {},
        )
        return self._engine.create_intent(req, idempotency_key=idempotency_key)

    def get_intent(self, intent_id: str) -> Intent:
        return self._engine.get_intent(intent_id)

    def list_intents(
        self,
        *,
        status: list[Status] | Status | None = None,
        to_agent: str | None = None,
        from_agent: str | None = None,
        intent_type: str | None = None,
        correlation_id: str | None = None,
        parent_intent_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Intent]:
        """Intents, newest first, one page at a time (pass ``next_cursor`` back)."""
        statuses = [status] if isinstance(status, Status) else status
        return self._engine.list_intents(
            status=statuses,
            to_agent=to_agent,
            from_agent=from_agent,
            intent_type=intent_type,
            correlation_id=correlation_id,
            parent_intent_id=parent_intent_id,
            cursor=cursor,
            limit=limit,
        )

    def list_events(self, intent_id: str, *, since: int = 0, limit: int = 1000) -> list[Event]:
        """The intent's audit trail after ``since`` (a seq), in order."""
        return self._engine.list_events(intent_id, since=since, limit=limit)

    def start(
        self,
        intent_id: str,
        *,
        owner: str | None = None,
        lease_seconds: float = 60.0,
        lease: Lease | None = None,
    ) -> Lease:
        """Begin work: IN_PROGRESS under a lease (pass it to the writes that follow)."""
        return self._engine.start(
            intent_id,
            owner=owner or default_owner(),
            lease_seconds=lease_seconds,
            lease_token=_token(lease),
        )

    def acknowledge(self, intent_id: str, *, lease: Lease | None = None) -> Intent:
        return self._engine.acknowledge(intent_id, lease_token=_token(lease))

    def complete(self, intent_id: str, result: Any = None, *, lease: Lease | None = None) -> Intent:
        """End the intent as COMPLETED with ``result``."""
        return self._engine.resolve(
            intent_id, Status.COMPLETED, result=result, lease_token=_token(lease)
        )

    def fail(self, intent_id: str, error: ErrorInfo | str, *, lease: Lease | None = None) -> Intent:
        """End the intent as FAILED."""
        info = error if isinstance(error, ErrorInfo) else ErrorInfo(message=error)
        return self._engine.resolve(intent_id, Status.FAILED, error=info, lease_token=_token(lease))

    def cancel(self, intent_id: str, reason: str) -> Intent:
        """End the intent as CANCELED; an open wait is closed with it."""
        return self._engine.resolve(intent_id, Status.CANCELED, reason=reason)

    # -- waits -------------------------------------------------------------------------------

    def open_wait(self, intent_id: str, spec: WaitSpec, *, lease: Lease | None = None) -> Wait:
        return self._engine.open_wait(intent_id, spec, lease_token=_token(lease))

    def wait_for_human(
        self,
        intent_id: str,
        task: HumanTask,
        *,
        key: str | None = None,
        deadline_at: datetime | None = None,
        timeout: float | None = None,
        on_timeout: OnTimeout | None = None,
        lease: Lease | None = None,
    ) -> Wait:
        """Ask a person (WAITING_FOR_HUMAN). Idempotent by ``key``."""
        spec = WaitSpec(
            kind=WaitKind.HUMAN,
            key=key,
            human_task=task,
            deadline_at=_deadline(self.clock, deadline_at, timeout),
            on_timeout=on_timeout or OnTimeout(),
        )
        return self.open_wait(intent_id, spec, lease=lease)

    def wait_for_tool(
        self,
        intent_id: str,
        tool_name: str,
        *,
        key: str | None = None,
        deadline_at: datetime | None = None,
        timeout: float | None = None,
        heartbeat_timeout: float | None = None,
        on_timeout: OnTimeout | None = None,
        lease: Lease | None = None,
    ) -> Wait:
        """Wait for a long external call; give ``wait.callback_token`` to the tool."""
        spec = WaitSpec(
            kind=WaitKind.TOOL,
            key=key,
            tool_name=tool_name,
            heartbeat_timeout_seconds=heartbeat_timeout,
            deadline_at=_deadline(self.clock, deadline_at, timeout),
            on_timeout=on_timeout or OnTimeout(),
        )
        return self.open_wait(intent_id, spec, lease=lease)

    def wait_for_agent(
        self,
        intent_id: str,
        intent_type: str,
        to_agent: str,
        payload: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        deadline_at: datetime | None = None,
        timeout: float | None = None,
        on_timeout: OnTimeout | None = None,
        lease: Lease | None = None,
    ) -> tuple[Intent, Wait]:
        """Send a child intent to another agent and wait until it ends."""
        child = NewIntent(intent_type=intent_type, to_agent=to_agent, payload=payload or {})
        spec = WaitSpec(
            kind=WaitKind.AGENT,
            key=key,
            child_intent_id="pending",
            deadline_at=_deadline(self.clock, deadline_at, timeout),
            on_timeout=on_timeout or OnTimeout(),
        )
        return self._engine.wait_for_child(
            intent_id, child, key=key, spec=spec, lease_token=_token(lease)
        )

    def wait_for_time(
        self,
        intent_id: str,
        *,
        until: datetime | None = None,
        seconds: float | None = None,
        key: str | None = None,
        lease: Lease | None = None,
    ) -> Wait:
        """A durable timer: the intent resumes (outcome ``elapsed``) at ``until``."""
        fire_at = _deadline(self.clock, until, seconds)
        if fire_at is None:
            raise ValueError("pass until or seconds")
        return self.open_wait(
            intent_id, WaitSpec(kind=WaitKind.TIME, key=key, fire_at=fire_at), lease=lease
        )

    def get_wait(self, wait_id: str) -> Wait:
        return self._engine.get_wait(wait_id)

    def list_waits(self, intent_id: str) -> list[Wait]:
        return self._engine.list_waits(intent_id)

    def respond(
        self,
        intent_id: str,
        outcome: str,
        *,
        comment: str | None = None,
        data: dict[str, Any] | None = None,
        wait_id: str | None = None,
    ) -> Intent:
        """Answer the intent's open human task as this client's actor."""
        return self._engine.respond(intent_id, outcome, comment=comment, data=data, wait_id=wait_id)

    def approve(self, /, intent_id: str, comment: str | None = None, **data: Any) -> Intent:
        return self.respond(intent_id, "approved", comment=comment, data=data or None)

    def reject(self, /, intent_id: str, comment: str | None = None, **data: Any) -> Intent:
        return self.respond(intent_id, "rejected", comment=comment, data=data or None)

    def resume(
        self,
        intent_id: str,
        outcome: str,
        *,
        result: Any = None,
        comment: str | None = None,
        wait_id: str | None = None,
        lease: Lease | None = None,
    ) -> Intent:
        """Resolve the intent's open wait (for a human task, the same checks as respond)."""
        return self._engine.resume(
            intent_id,
            outcome,
            result=result,
            comment=comment,
            wait_id=wait_id,
            lease_token=_token(lease),
        )

    def reply(self, intent_id: str, message: str) -> Intent:
        """Add a message to the intent's thread (it goes on the audit trail)."""
        return self._engine.reply(intent_id, message)

    def delegate(self, intent_id: str, delegate_to: str, *, note: str | None = None) -> Intent:
        """Hand the intent's open human task to another person."""
        return self._engine.delegate(intent_id, delegate_to, note=note)

    def complete_tool(self, token: str, result: Any = None, *, error: str | None = None) -> Intent:
        """Post a tool's result with the wait's callback token (single use)."""
        return self._engine.complete_tool(token, result=result, error=error)

    def heartbeat_tool(self, token: str, *, extend_seconds: float | None = None) -> Wait:
        return self._engine.heartbeat_tool(token, extend_seconds=extend_seconds)

    def list_tasks(self, *, mine: bool = False, limit: int = 100) -> list[Intent]:
        """Intents waiting for a person, oldest first."""
        return self._engine.list_tasks(mine=mine, limit=limit)

    def fire_due_timers(self) -> int:
        """Fire deadlines and timers that are due; return how many fired."""
        return self._engine.fire_due_timers()

    # -- journal and state -------------------------------------------------------------------

    def step(
        self, intent_id: str, key: str, fn: Callable[[], T], *, lease: Lease | None = None
    ) -> T:
        """Run ``fn`` once for this intent and key; afterwards return its recorded result.

        Example::

            receipt = client.step(intent_id, "charge-card", lambda: psp.charge(42), lease=lease)
        """
        done = self._engine.get_step(intent_id, key)
        if done is not None:
            return done.result  # type: ignore[no-any-return]
        value = fn()
        return self.record_step(intent_id, key, value, lease=lease).result  # type: ignore[no-any-return]

    def get_step(self, intent_id: str, key: str) -> Step | None:
        return self._engine.get_step(intent_id, key)

    def record_step(
        self,
        intent_id: str,
        key: str,
        result: Any,
        *,
        lease: Lease | None = None,
        usage: TurnUsage | None = None,
        retry_for: float = 30.0,
    ) -> Step:
        """Record a finished step; the first record of a key wins. ``usage`` reports the model
        turn the step holds in the same write (see :meth:`report_usage`; it raises
        :class:`tether.ApprovalPending` the same way, after recording the step).

        The step's effect has happened, so giving up on its record would run it again: while
        the store or server is away (a restart), the record is retried for up to
        ``retry_for`` seconds (a worker passes its lease's length) before
        :class:`tether.StoreError` is raised. A retry after a lost answer is safe: it returns
        the record that committed. A lost lease or a refusal is raised at once."""

        def record() -> Step:
            return self._engine.record_step(
                intent_id, key, result, lease_token=_token(lease), usage=usage
            )

        started = time.monotonic()
        try:
            return record()  # the usual case, without building a retry policy for it
        except (StoreError, RateLimited) as exc:
            if not transient(exc):
                raise
        retrying = Retrying(
            retry=retry_if_exception(transient),
            stop=stop_after_delay(max(0.0, retry_for - (time.monotonic() - started))),
            wait=_backoff,
            sleep=pause,  # on an event loop (AsyncClient, embedded store): awaited there
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return record()
        raise AssertionError("unreachable")  # pragma: no cover

    def list_steps(self, intent_id: str) -> list[Step]:
        return self._engine.list_steps(intent_id)

    def get_state(self, intent_id: str, key: str = "default") -> StateRecord | None:
        return self._engine.get_state(intent_id, key)

    def put_state(
        self,
        intent_id: str,
        data: Any,
        *,
        expected_version: int,
        key: str = "default",
        lease: Lease | None = None,
    ) -> StateRecord:
        """Write opaque state if the stored version is ``expected_version`` (0: none yet)."""
        return self._engine.put_state(
            intent_id, data, expected_version=expected_version, key=key, lease_token=_token(lease)
        )

    def list_state(
        self, intent_id: str, *, prefix: str = "", after: str = "", limit: int = 100
    ) -> list[StateEntry]:
        """The intent's state keys (with version and time of the last write, without data)
        that start with ``prefix``, in code point order, at most ``limit`` (1 to 1000). Keys
        sort after ``after``: pass the last key of a page to read the next."""
        return self._engine.list_state(intent_id, prefix=prefix, after=after, limit=limit)

    def delete_state(
        self,
        intent_id: str,
        key: str,
        *,
        expected_version: int | None = None,
        lease: Lease | None = None,
    ) -> bool:
        """Delete one state key; False if there was none. With ``expected_version``, only if
        that is the stored version (:class:`tether.VersionConflict` otherwise)."""
        return self._engine.delete_state(
            intent_id, key, expected_version=expected_version, lease_token=_token(lease)
        )

    def delete_state_prefix(
        self, intent_id: str, prefix: str, *, lease: Lease | None = None
    ) -> int:
        """Delete every state key that starts with ``prefix`` (not empty: nothing deletes all
        of an intent's state by accident); return how many were deleted."""
        return self._engine.delete_state_prefix(intent_id, prefix, lease_token=_token(lease))

    # -- leases ------------------------------------------------------------------------------

    def claim(
        self,
        agent: str,
        *,
        owner: str | None = None,
        lease_seconds: float = 30.0,
        intent_types: list[str] | None = None,
        start: bool = False,
        journal: bool = False,
        wait: float = 0.0,
    ) -> Claim | None:
        """Claim the next runnable intent for ``agent`` (new, or resumed after a wait); with
        ``start``, a new one is IN_PROGRESS when it is returned (one write, not two); with
        ``journal``, its steps and waits come with it (``Claim.steps``, ``Claim.waits``), so
        a worker replaying a resumed intent needs no further read. With nothing to claim, it
        waits up to ``wait`` seconds for work (a long poll over HTTP): new or resumed work
        ends the wait at once."""
        return self._engine.claim(
            agent,
            owner=owner or default_owner(),
            lease_seconds=lease_seconds,
            intent_types=intent_types,
            start=start,
            journal=journal,
            wait=wait,
        )

    def agent_feed(
        self,
        agent: str,
        *,
        since: int = 0,
        statuses: list[Status] | None = None,
        limit: int = 100,
    ) -> list[FeedItem]:
        """Intents addressed to ``agent`` whose status changed after feed position ``since``
        (default: only those not yet ended); pass the last item's ``seq`` back as ``since``."""
        return self._engine.agent_feed(agent, since=since, statuses=statuses, limit=limit)

    def claim_intent(
        self, intent_id: str, *, owner: str | None = None, lease_seconds: float = 30.0
    ) -> Claim:
        return self._engine.claim_intent(
            intent_id, owner=owner or default_owner(), lease_seconds=lease_seconds
        )

    def heartbeat(self, lease: Lease, *, lease_seconds: float = 30.0) -> Lease:
        """Extend a lease; raises :class:`tether.LeaseLost` if it is gone."""
        return self._engine.heartbeat_lease(
            lease.intent_id, lease.token, lease_seconds=lease_seconds
        )

    def release(self, lease: Lease) -> None:
        self._engine.release_lease(lease.intent_id, lease.token)

    # -- mesh: agents, policy, and the checks at every boundary -------------------------------

    def register_agent(self, address: str) -> Agent:
        """Register an agent before its first use (it exists once used anyway)."""
        return self._engine.register_agent(address)

    def get_agent(self, address: str) -> Agent:
        """The agent: status, health, generation, policy and spend this hour and day."""
        return self._engine.get_agent(address)

    def list_agents(
        self,
        *,
        status: AgentStatus | None = None,
        health: Health | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Agent]:
        return self._engine.list_agents(status=status, health=health, after=after, limit=limit)

    def kill_agent(
        self, address: str, *, reason: str | None = None, generation: int | None = None
    ) -> Agent:
        """Kill an agent: its new intents, in and out, are refused and its running ones stop
        at their next boundary (held, not failed). :meth:`resume_agent` undoes it."""
        return self._changed(self._engine.set_agent_status(
            address, AgentStatus.KILLED, reason=reason, generation=generation
        ))  # fmt: skip

    def pause_agent(
        self, address: str, *, reason: str | None = None, generation: int | None = None
    ) -> Agent:
        """Pause an agent: new intents to it queue up, its running ones stop at their next
        boundary, and nothing fails; :meth:`resume_agent` releases the work."""
        return self._changed(self._engine.set_agent_status(
            address, AgentStatus.PAUSED, reason=reason, generation=generation
        ))  # fmt: skip

    def resume_agent(
        self, address: str, *, reason: str | None = None, generation: int | None = None
    ) -> Agent:
        return self._changed(self._engine.set_agent_status(
            address, AgentStatus.ACTIVE, reason=reason, generation=generation
        ))  # fmt: skip

    def set_policy(
        self, address: str, policy: AgentPolicy, *, generation: int | None = None
    ) -> Agent:
        """Replace the agent's policy. Pass the ``generation`` you read to be refused
        (:class:`tether.StaleGeneration`) if someone changed it meanwhile."""
        return self._changed(self._engine.set_agent_policy(address, policy, generation=generation))

    def _changed(self, agent: Agent) -> Agent:
        """An agent this client just changed: its guard here, if any, sees it at once."""
        guard = self._guards.get(agent.address)
        if guard is not None:
            guard.adopt(agent)
        return agent

    def agent_heartbeat(self, address: str, metrics: dict[str, Any] | None = None) -> Agent:
        """Tell tether the agent is alive (its health); AXP's metrics may ride along."""
        return self._engine.agent_heartbeat(address, metrics)

    def mesh_events(
        self,
        *,
        agent: str | None = None,
        event_type: str | None = None,
        after: int = 0,
        limit: int = 50,
    ) -> list[MeshEvent]:
        """The mesh's audit: status and policy changes with their actor, refusals."""
        return self._engine.mesh_events(
            agent=agent, event_type=event_type, after=after, limit=limit
        )

    def check(self, intent_id: str, *, lease: Lease | str | None = None) -> None:
        """A boundary (before a step, a node, a task, a model turn): raises
        :class:`tether.AgentStopped` (killed, paused, or held for a spend approval) or
        :class:`tether.IntentTerminal` (canceled meanwhile) if the work may not go on. A stop
        releases the lease; the intent is claimed again once the agent may work."""
        self._engine.check(intent_id, lease_token=_token(lease))

    def authorize_tool(
        self, intent_id: str, tool: str, *, lease: Lease | str | None = None
    ) -> None:
        """The boundary before a tool call: as :meth:`check`, and raises
        :class:`tether.ToolDenied` (recorded as a ``tool.denied`` event) if the agent's tool
        scope does not allow ``tool``."""
        self._engine.check(intent_id, tool=tool, lease_token=_token(lease))

    def report_usage(
        self,
        intent_id: str,
        *,
        model: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
        lease: Lease | str | None = None,
    ) -> UsageReport:
        """Record one model turn's usage (a ``model.usage`` event) and the agent's spend.

        Raises :class:`tether.ApprovalPending` if this turn crossed a ``require_approval``
        spend cap: the intent now waits for a person, and the run should stop here.
        """
        report = self._engine.report_usage(
            intent_id, model=model, tokens_in=tokens_in, tokens_out=tokens_out,
            cost_usd=cost_usd, lease_token=_token(lease),
        )  # fmt: skip
        if report.approval_wait_id is not None:
            raise ApprovalPending(
                f"intent {intent_id} crossed its agent's spend cap and waits for approval",
                details={"intent_id": intent_id, "wait_id": report.approval_wait_id},
            )
        return report

    def intent_usage(self, intent_id: str) -> SpendWindow:
        """The intent's total usage: cost, tokens and model turns."""
        return self._engine.intent_usage(intent_id)

    def watch_agent(self, address: str, *, after_generation: int, timeout: float = 30.0) -> Agent:
        """Block until the agent's generation passes ``after_generation`` (or ``timeout``)."""
        return self._engine.watch_agent(address, after_generation=after_generation, timeout=timeout)

    def guard(self, address: str) -> AgentGuard:
        """A live view of the agent in this process (one per address, closed with the client)."""
        with self._guards_lock:
            guard = self._guards.get(address)
            if guard is None:
                # in-process the watcher wakes on the store's change notification anyway; a
                # short window only bounds how long closing the client waits for it
                poll = 25.0 if isinstance(self._engine, HttpBackend) else 0.25
                changes = None
                if isinstance(self._engine, Engine):
                    store = self._engine.store
                    changes = functools.partial(store.topic_counter, AGENT_CHANGES)
                guard = self._guards[address] = AgentGuard(
                    self._engine, address, poll_seconds=poll, changes=changes
                )
            return guard

    # -- waiting in a live process -----------------------------------------------------------

    def wait_for(
        self,
        intent_id: str,
        *,
        timeout: float | None = None,
        statuses: frozenset[Status] | set[Status] = TERMINAL,
    ) -> Intent:
        """Block until the intent reaches one of ``statuses`` (default: it ends).

        Raises :class:`tether.WaitTimeout` after ``timeout`` seconds.
        """
        return self._engine.wait_for_intent(
            intent_id, statuses=frozenset(statuses), timeout=timeout
        )

    def verify_audit(self, intent_id: str | None = None) -> ChainReport:
        """Recompute the hash chain of one intent (:class:`tether.NotFound` if this client
        may not see it, as over HTTP), or of every intent."""
        if intent_id is not None and isinstance(self._engine, Engine):
            self._engine.get_intent(intent_id)  # (the server checks the same)
        return self._engine.verify_audit(intent_id)
