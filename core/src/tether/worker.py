"""Workers: claim an agent's intents with a lease, run their handlers, continue resumed ones.

Example::

    worker = tether.Worker(agent="agent://demo/refunds")

    @worker.handler("refund.request.v1")
    def refund(ctx: tether.WorkContext) -> dict:
        check = ctx.step("check-policy", lambda: policy.check(ctx.intent.payload))
        if check["needs_approval"]:
            decision = ctx.wait_for_human(tether.HumanTask(title="Refund?"), key="approval")
            if decision.outcome != "approved":
                return {"refunded": False, "outcome": decision.outcome}
        return ctx.step("refund", lambda: psp.refund(ctx.intent.payload["amount"]))

    worker.run(tether.connect())

A handler runs from its start each time the intent is claimed (new, resumed after a wait, or
taken over after a worker died). Steps already recorded return their result without running
again, and a wait opened with a key returns how it ended instead of opening again, so the
handler reads as straight-line code. Returning completes the intent; raising fails it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from .client import AgentGuard, Client, default_owner
from .client._sync import transient
from .errors import (
    AgentStopped,
    Forbidden,
    IntentTerminal,
    LeaseLost,
    RateLimited,
    StoreClosed,
    StoreError,
    TetherError,
)
from .model import (
    Claim,
    ErrorInfo,
    HumanTask,
    Intent,
    Lease,
    OnTimeout,
    Step,
    UsageReport,
    Wait,
    WaitKind,
    WaitSpec,
)

T = TypeVar("T")
logger = logging.getLogger("tether.worker")

Handler = Callable[["WorkContext"], Any]


class Suspended(BaseException):
    """Raised inside a handler when it opened a wait: the intent waits, the handler stops.

    A ``BaseException``, so a handler's ``except Exception`` cannot swallow it by mistake.
    """

    def __init__(self, wait: Wait) -> None:
        super().__init__(f"waiting on {wait.kind.value} wait {wait.wait_id}")
        self.wait = wait


class _Renewals:
    """The process's lease renewals: one scheduler thread keeps every live
    :class:`LeaseHeartbeat` in a heap by due time and hands each due renewal to a small pool,
    so a claim costs no thread start and one slow renewal holds up no other."""

    POOL = 4

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, LeaseHeartbeat]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        os.register_at_fork(after_in_child=self._forget)  # a forked child has no threads

    def _forget(self) -> None:
        self._cond = threading.Condition()
        self._due, self._thread, self._pool = [], None, None

    def schedule(self, beat: LeaseHeartbeat) -> None:
        with self._cond:
            heapq.heappush(
                self._due, (time.monotonic() + beat.seconds / 3, next(self._order), beat)
            )
            if self._thread is None:
                self._pool = ThreadPoolExecutor(self.POOL, thread_name_prefix="tether-lease")
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name="tether-renewals"
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._cond.wait(self._due[0][0] - time.monotonic() if self._due else None)
                beat = heapq.heappop(self._due)[2]
                pool = self._pool
            if not beat.ended and pool is not None:
                try:
                    pool.submit(beat._renew)
                except RuntimeError:  # the interpreter is shutting down: nothing to renew for
                    return


_RENEWALS = _Renewals()


class LeaseHeartbeat:
    """Extends a lease every third of its length, while a ``with`` block runs.

    The worker keeps each claim's lease alive with it; an adapter that runs work outside a
    :class:`Worker` uses it the same way. The renewals run on the process's own threads (one
    scheduler and a small pool, shared by every heartbeat), not on an event loop: a step that
    blocks an event loop must not let the lease lapse. ``lease`` is the lease as last
    renewed; ``lost`` is set once another worker took the intent over. No renewal runs after
    the block has ended.

    Example::

        with tether.LeaseHeartbeat(client, lease, 30.0) as beat:
            run_the_work(lease=beat.lease)
    """

    def __init__(
        self,
        client: Client,
        lease: Lease,
        seconds: float,
        *,
        on_renew: Callable[[Lease], None] | None = None,
    ) -> None:
        self.client = client
        self.lease = lease
        self.seconds = seconds
        self.lost = threading.Event()
        self.ended = False
        self._on_renew = on_renew
        self._lock = threading.Lock()  # held by a renewal in flight; the block's end waits

    def __enter__(self) -> LeaseHeartbeat:
        _RENEWALS.schedule(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.ended = True

    def _renew(self) -> None:
        with self._lock:
            if self.ended:
                return
            try:
                self.lease = self.client.heartbeat(self.lease, lease_seconds=self.seconds)
            except LeaseLost:
                logger.warning("lost the lease on intent %s", self.lease.intent_id)
                self.lost.set()
                return
            except Exception:  # the store or server away, or worse: keep trying
                logger.warning("lease heartbeat failed; retrying", exc_info=True)
            else:
                if self._on_renew is not None:
                    self._on_renew(self.lease)
        _RENEWALS.schedule(self)


@dataclass
class WorkContext:
    """What a handler gets: the intent, its lease, and durable helpers bound to both."""

    client: Client
    claim: Claim
    lease: Lease
    _lost: threading.Event = field(default_factory=threading.Event)
    _steps: dict[str, Step] | None = None
    """The journal as this claim found it (read once), plus what this run recorded."""
    _waits: dict[str, Wait] | None = None
    """The intent's waits by key, read once per claim, plus those this run opened."""
    _patience: float = 30.0
    """How long a step's record is retried through an outage: the claim's lease length."""
    _guard: AgentGuard | None = None
    """The agent's status and policy as this process sees them, kept current by a watcher:
    a boundary asks the store only when it says no."""

    @property
    def intent(self) -> Intent:
        return self.claim.intent

    @property
    def resumed(self) -> bool:
        """True when the intent comes back after a wait (or a dead worker)."""
        return self.claim.resumed

    @property
    def last_wait(self) -> Wait | None:
        return self.claim.last_wait

    @property
    def lease_lost(self) -> bool:
        return self._lost.is_set()

    def step(self, key: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` once for this intent and key; later runs get its recorded result.

        A step not yet recorded is a boundary: a killed or paused agent stops before it runs
        (see :meth:`check`). The journal is read once per claim, so replaying recorded steps
        costs no round trip each.
        """
        return self._once(key, fn, self._boundary)

    def tool(self, name: str, fn: Callable[[], T], *, key: str | None = None) -> T:
        """Call the tool ``name`` once (a step keyed ``key``, default ``tool:<name>``), if the
        agent's tool scope allows it; :class:`tether.ToolDenied` if not."""
        return self._once(key or f"tool:{name}", fn, lambda: self._boundary(name))

    def _boundary(self, tool: str | None = None) -> None:
        """Before a step or tool runs. The agent's guard answers while the agent is active
        (and the tool in scope): no round trip. Otherwise the store decides, and records the
        hold or the denial. A cancel that lands meanwhile shows at the step's record."""
        if self._guard is not None and self._guard.allows(tool):
            return
        if tool is None:
            self.check()
        else:
            self.client.authorize_tool(self.intent.intent_id, tool, lease=self.lease)

    def _held(self) -> None:
        """Before anything runs or opens: a lease this worker knows it lost ends the handler
        (another worker may run the intent now; a step's body must not run twice at once)."""
        if self._lost.is_set():
            raise LeaseLost(
                f"the lease on intent {self.intent.intent_id} was lost; another worker goes on",
                details={"intent_id": self.intent.intent_id},
            )

    def _once(self, key: str, fn: Callable[[], T], boundary: Callable[[], None]) -> T:
        if self._steps is None:
            self._steps = {s.key: s for s in self.client.list_steps(self.intent.intent_id)}
        done = self._steps.get(key)
        if done is not None:
            return done.result  # type: ignore[no-any-return]
        self._held()
        boundary()
        value = fn()
        recorded = self._record(key, value)
        self._steps[key] = recorded
        return recorded.result  # type: ignore[no-any-return]

    def _record(self, key: str, value: Any) -> Step:
        """Record a step that has run, retried through an outage while the lease can hold."""
        return self.client.record_step(
            self.intent.intent_id, key, value, lease=self.lease, retry_for=self._patience
        )

    def check(self) -> None:
        """A boundary: raises :class:`tether.AgentStopped` if the agent was killed or paused
        (or the intent waits for a spend approval), :class:`tether.IntentTerminal` if the
        intent was canceled. The worker stops the handler quietly on either."""
        self.client.check(self.intent.intent_id, lease=self.lease)

    def report_usage(
        self,
        *,
        model: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
    ) -> UsageReport:
        """Record a model turn's usage on this intent (its agent's spend)."""
        return self.client.report_usage(
            self.intent.intent_id, model=model, tokens_in=tokens_in, tokens_out=tokens_out,
            cost_usd=cost_usd, lease=self.lease,
        )  # fmt: skip

    def _resume_or_open(self, key: str, spec: Callable[[], WaitSpec]) -> Wait:
        """The wait under ``key`` if it has ended; otherwise (opening it first if this is the
        first run) suspend the handler until it does."""
        wait = self._existing(key)
        if wait is None:
            self._held()
            wait = self.client.open_wait(self.intent.intent_id, spec(), lease=self.lease)
        if wait.is_open:
            raise Suspended(wait)
        return wait

    def wait_for_human(
        self,
        task: HumanTask,
        *,
        key: str,
        timeout: float | None = None,
        on_timeout: OnTimeout | None = None,
    ) -> Wait:
        """Ask a person; the first run suspends here, the resumed run gets the closed wait
        (``outcome`` is the answer, or ``"timeout"``)."""
        return self._resume_or_open(
            key,
            lambda: WaitSpec(
                kind=WaitKind.HUMAN,
                key=key,
                human_task=task,
                deadline_at=self.client.clock.now() + timedelta(seconds=timeout)
                if timeout
                else None,
                on_timeout=on_timeout or OnTimeout(),
            ),
        )

    def wait_for_tool(
        self,
        tool_name: str,
        start: Callable[[str], None],
        *,
        key: str,
        heartbeat_timeout: float | None = None,
    ) -> Wait:
        """Start a long external call and suspend until it posts its result. ``start`` gets
        the callback token, once the wait is recorded. A worker that dies after the wait is
        recorded and before ``start`` has made its call leaves the intent waiting for a
        call that was never made: pass ``heartbeat_timeout`` (the call must then report in
        time, through the token's heartbeat) so that such a wait times out and the intent
        goes on, or make ``start`` report its call elsewhere first."""
        wait = self._existing(key)
        if wait is None:
            self._held()
            spec = WaitSpec(kind=WaitKind.TOOL, key=key, tool_name=tool_name,
                            heartbeat_timeout_seconds=heartbeat_timeout)  # fmt: skip
            wait = self.client.open_wait(self.intent.intent_id, spec, lease=self.lease)
            assert wait.callback_token is not None
            start(wait.callback_token)
        if wait.is_open:
            raise Suspended(wait)
        return wait

    def sleep(self, seconds: float, *, key: str) -> Wait:
        """A durable timer: suspend now, resume after ``seconds`` (even across restarts)."""
        return self._resume_or_open(
            key,
            lambda: WaitSpec(
                kind=WaitKind.TIME,
                key=key,
                fire_at=self.client.clock.now() + timedelta(seconds=seconds),
            ),
        )

    def _existing(self, key: str) -> Wait | None:
        if self._waits is None:
            self._waits = {w.key: w for w in self.client.list_waits(self.intent.intent_id)}
        return self._waits.get(key)


class Worker:
    """Runs handlers for one agent's intents, by intent type."""

    def __init__(
        self,
        client: Client | None = None,
        *,
        agent: str,
        owner: str | None = None,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
    ) -> None:
        self.client = client
        self.agent = agent
        self.owner = owner or default_owner()
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.handlers: dict[str, Handler] = {}
        self._stop = threading.Event()
        self._last_beat = -1e9
        self._fires_timers = True

    def handler(self, intent_type: str) -> Callable[[Handler], Handler]:
        """Register ``fn`` for ``intent_type``."""

        def register(fn: Handler) -> Handler:
            self.handlers[intent_type] = fn
            return fn

        return register

    def stop(self) -> None:
        self._stop.set()

    def run(self, client: Client | None = None, *, max_intents: int | None = None) -> int:
        """Claim and run intents until :meth:`stop` (or ``max_intents`` handled)."""
        self.client = client or self.client
        done, outage = 0, 0
        while not self._stop.is_set() and (max_intents is None or done < max_intents):
            try:
                if self.run_once():
                    done += 1
                outage = 0
            except StoreClosed:  # closed by this process: no use waiting for it
                logger.info("the store is closed; the worker stops")
                break
            except (StoreError, RateLimited) as exc:
                if not transient(exc):
                    raise
                outage += 1  # the store or server is away (a restart), or asks to slow down
                logger.warning("cannot reach the store (%s); retrying", exc.message)
                pace = exc.retry_after if isinstance(exc, RateLimited) else 0.0
                self._stop.wait(max(pace, min(5.0, 0.1 * 2**outage)))
        return done

    def run_once(self) -> bool:
        """Claim one intent and run its handler; wait up to ``poll_seconds`` for work (new
        or resumed work wakes the wait at once; an expired lease is noticed by the next one).

        While the agent is paused or killed the worker claims nothing; its guard wakes it
        as soon as the agent is resumed."""
        client = self._client()
        if not self.handlers:  # it would claim every type and fail what it cannot handle
            raise TetherError("the worker has no handlers: register one with @worker.handler")
        self._beat(client)
        guard = client.guard(self.agent)
        if guard.stopped and not guard.wait_until_active(self.poll_seconds):
            return False
        claim = client.claim(
            self.agent, owner=self.owner, lease_seconds=self.lease_seconds,
            intent_types=list(self.handlers) or None, start=True, journal=True,
            wait=self.poll_seconds,  # woken at once by new or resumed work
        )  # fmt: skip
        if claim is None:
            if self._fires_timers:  # the server fires timers itself; an agent key may not
                try:
                    client.fire_due_timers()
                except Forbidden:
                    self._fires_timers = False
            return False
        self._handle(client, claim, guard)
        return True

    def _client(self) -> Client:
        if self.client is None:
            raise TetherError("the worker has no client: pass one to Worker(...) or run(...)")
        return self.client

    def _handle(self, client: Client, claim: Claim, guard: AgentGuard | None = None) -> None:
        ctx = WorkContext(
            client=client, claim=claim, lease=claim.lease, _patience=self.lease_seconds,
            _guard=guard,
            _steps={s.key: s for s in claim.steps} if claim.steps is not None else None,
            _waits={w.key: w for w in claim.waits} if claim.waits is not None else None,
        )  # fmt: skip
        beat = LeaseHeartbeat(client, claim.lease, self.lease_seconds,
                              on_renew=lambda lease: setattr(ctx, "lease", lease))  # fmt: skip
        ctx._lost = beat.lost
        intent_id = claim.intent.intent_id
        with beat:
            self._run(client, claim, ctx, intent_id)

    def _run(self, client: Client, claim: Claim, ctx: WorkContext, intent_id: str) -> None:
        try:
            handler = self.handlers[claim.intent.intent_type]
            if claim.intent.status.value in ("DELIVERED", "SUBMITTED", "ACKNOWLEDGED"):
                client.start(intent_id, lease=claim.lease)
            result = handler(ctx)
            client.complete(intent_id, result, lease=claim.lease)
        except Suspended as suspended:
            logger.info("intent %s waits (%s)", intent_id, suspended.wait.kind.value)
        except AgentStopped as stopped:
            logger.info("intent %s held: %s", intent_id, stopped.message)
        except IntentTerminal:
            logger.info("intent %s ended while it ran (canceled?); stopped", intent_id)
        except LeaseLost:
            logger.warning("lost the lease on intent %s; another worker continues it", intent_id)
        except (StoreError, RateLimited) as exc:
            if not transient(exc):
                self._failed(client, claim, intent_id, exc)
                return
            # the store or server went away, or asked to slow down: not the handler's fault
            logger.warning("intent %s left for a retry: %s", intent_id, exc.message)
        except Exception as exc:
            self._failed(client, claim, intent_id, exc)

    def _failed(self, client: Client, claim: Claim, intent_id: str, exc: Exception) -> None:
        """The handler failed: the intent fails with its error (``handler_error``)."""
        logger.error("handler failed on intent %s", intent_id, exc_info=exc)
        try:
            client.fail(
                intent_id,
                ErrorInfo(code="handler_error", message=f"{type(exc).__name__}: {exc}"[:2000]),
                lease=claim.lease,
            )
        except TetherError:
            logger.exception("could not record the failure of intent %s", intent_id)

    def _beat(self, client: Client) -> None:
        """The agent's heartbeat (its health in the mesh), at most every 10 seconds."""
        now = time.monotonic()
        if now - self._last_beat < 10.0:
            return
        self._last_beat = now
        try:
            client.agent_heartbeat(self.agent)
        except TetherError as exc:  # (an answer, not a bug: no traceback)
            logger.warning("agent heartbeat failed (%s): %s", exc.code, exc.message)


def load(target: str) -> Worker:
    """``module:object`` to a Worker (or a callable that returns one)."""
    import importlib

    module_name, _, attr = target.partition(":")
    if not attr:
        raise TetherError(f"expected MODULE:OBJECT, got {target!r}")
    obj: Any = getattr(importlib.import_module(module_name), attr)
    if callable(obj) and not isinstance(obj, Worker):
        obj = obj()
    if not isinstance(obj, Worker):
        raise TetherError(f"{target} is not a tether.Worker")
    return obj


__all__ = ["LeaseHeartbeat", "Suspended", "WorkContext", "Worker", "load"]
