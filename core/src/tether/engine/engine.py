"""The engine: every operation on intents, each one transaction on the store.

The in-process client calls this directly; the server calls the same methods. Each method
takes the acting :class:`~tether.model.Principal` (``actor``); without one it acts as the
engine's default principal (an admin of the default workspace in library mode).
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypedDict, TypeVar, Unpack

from ..clock import Clock, to_text
from ..errors import (
    AgentStopped,
    ApprovalPending,
    InvalidRequest,
    RateLimited,
    SenderNotAllowed,
    TetherError,
    WaitTimeout,
)
from ..model import (
    Agent,
    AgentPolicy,
    AgentStatus,
    ApiKey,
    ChainReport,
    Claim,
    Delivery,
    ErrorInfo,
    Event,
    FeedItem,
    Health,
    Intent,
    KeyRole,
    Lease,
    MeshEvent,
    NewIntent,
    NewKey,
    Page,
    Principal,
    SpendWindow,
    StateEntry,
    StateRecord,
    Status,
    Step,
    Subscription,
    TurnUsage,
    UsageReport,
    Wait,
    WaitSpec,
)
from ..store import AGENT_CHANGES, Store, Tx, work_for
from ..store.bridge import bridged
from ..store.schema import CLAIMABLE
from . import audit, intents, journal, keys, leases, mesh, timers, waits, webhooks
from .context import Ctx
from .records import load_intent, load_intent_and

T = TypeVar("T")

_REMEMBERED = 4096
"""Claimers (and agents) an engine keeps per-claimer state for; older ones are forgotten."""


def _forget_oldest(kept: dict[Any, Any]) -> None:
    """Drop the oldest entries (a dict's order is insertion order) beyond ``_REMEMBERED``:
    many claimers and agents come and go. Safe against other threads doing the same."""
    while len(kept) > _REMEMBERED:
        with contextlib.suppress(KeyError, StopIteration, RuntimeError):
            del kept[next(iter(kept))]


class Resolution(TypedDict, total=False):
    """How :meth:`Engine.resolve` ends an intent (its keyword arguments but the actor)."""

    result: Any
    error: ErrorInfo | None
    reason: str | None
    lease_token: str | None


class Engine:
    """Intents, waits, timers, the journal, state and leases over one :class:`Store`."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        actor: Principal | None = None,
        fire_timers_on_open: bool = True,
    ) -> None:
        self.store = store
        self.clock = clock or Clock()
        self.actor = actor or Principal.admin()
        row = store.read(lambda tx: tx.one("SELECT value FROM tether_meta WHERE key = 'secret'"))
        if row is None:
            from ..errors import CorruptStore

            raise CorruptStore("the store has no secret; it was not created by tether")
        self._secret: str = row[0]
        self._idle: dict[tuple[str, str], None] = {}
        """(agent, owner) of claims that found nothing last time (bounded; oldest first)."""
        self._claim_turns: dict[str, threading.Lock] = {}
        """Per agent, the turns its idle claimers in this process take (see :meth:`claim`)."""
        if fire_timers_on_open:
            self.fire_due_timers()

    def with_actor(self, actor: Principal) -> Engine:
        """The same engine (same store) acting as ``actor`` by default."""
        view = copy.copy(self)
        view.actor = actor
        return view

    # -- plumbing ----------------------------------------------------------------------------

    def _ctx(self, actor: Principal | None) -> Ctx:
        return Ctx(now=self.clock.now(), actor=actor or self.actor, secret=self._secret)

    def _write(self, fn: Callable[[Tx, Ctx], T], actor: Principal | None) -> T:
        try:
            return self.store.write(lambda tx: fn(tx, self._ctx(actor)))
        except UnicodeEncodeError as exc:  # (raised where a store binds the text)
            raise _not_unicode(exc) from exc

    def _read(self, fn: Callable[[Tx, Ctx], T], actor: Principal | None) -> T:
        try:
            return self.store.read(lambda tx: fn(tx, self._ctx(actor)))
        except UnicodeEncodeError as exc:
            raise _not_unicode(exc) from exc

    # -- intents -----------------------------------------------------------------------------

    def create_intent(
        self, req: NewIntent, *, idempotency_key: str | None = None, actor: Principal | None = None
    ) -> Intent:
        """Create an intent; the same ``idempotency_key`` and body return the same intent."""
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
            raise InvalidRequest("an idempotency key is 1 to 255 characters")
        try:
            return self._write(
                lambda tx, ctx: intents.create(tx, ctx, req, idempotency_key)[0], actor
            )
        except (AgentStopped, SenderNotAllowed, RateLimited) as exc:
            self._record_refusal(exc, actor, to_agent=req.to_agent, intent_type=req.intent_type)
            raise

    def _record_refusal(self, exc: TetherError, actor: Principal | None, **details: Any) -> None:
        """A policy refused something that left no intent to record it on: the mesh's audit
        keeps it (in its own transaction, since the refused one rolled back)."""
        agent = exc.details.get("agent")
        if isinstance(agent, str):
            entry = {"code": exc.code, "message": exc.message, **details}
            self._write(lambda tx, ctx: mesh.record(tx, ctx, agent, "intent.refused", entry), actor)

    def get_intent(self, intent_id: str, *, actor: Principal | None = None) -> Intent:
        return self._read(lambda tx, ctx: intents.read(tx, ctx, intent_id), actor)

    def list_intents(
        self,
        *,
        status: list[Status] | None = None,
        to_agent: str | None = None,
        from_agent: str | None = None,
        intent_type: str | None = None,
        correlation_id: str | None = None,
        parent_intent_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        actor: Principal | None = None,
    ) -> Page[Intent]:
        return self._read(
            lambda tx, ctx: intents.list_page(
                tx,
                ctx,
                status=status,
                to_agent=to_agent,
                from_agent=from_agent,
                intent_type=intent_type,
                correlation_id=correlation_id,
                parent_intent_id=parent_intent_id,
                cursor=cursor,
                limit=limit,
            ),
            actor,
        )

    def list_events(
        self, intent_id: str, *, since: int = 0, limit: int = 1000, actor: Principal | None = None
    ) -> list[Event]:
        return self._read(lambda tx, ctx: intents.events(tx, ctx, intent_id, since, limit), actor)

    def events_of_many(
        self, intent_ids: list[str], *, actor: Principal | None = None
    ) -> dict[str, list[Event]]:
        """The events of each of ``intent_ids`` the actor may see, in one read."""
        return self._read(lambda tx, ctx: intents.events_of_many(tx, ctx, intent_ids), actor)

    def acknowledge(
        self, intent_id: str, *, lease_token: str | None = None, actor: Principal | None = None
    ) -> Intent:
        return self._write(
            lambda tx, ctx: intents.acknowledge(tx, ctx, intent_id, lease_token), actor
        )

    def start(
        self,
        intent_id: str,
        *,
        owner: str = "direct",
        lease_seconds: float = 60.0,
        lease_token: str | None = None,
        actor: Principal | None = None,
    ) -> Lease:
        """Mark the intent IN_PROGRESS under a lease held by the caller."""
        return self._write(
            lambda tx, ctx: leases.start(tx, ctx, intent_id, owner, lease_seconds, lease_token),
            actor,
        )

    def resolve(
        self,
        intent_id: str,
        status: Status,
        *,
        result: Any = None,
        error: ErrorInfo | None = None,
        reason: str | None = None,
        lease_token: str | None = None,
        actor: Principal | None = None,
    ) -> Intent:
        """End the intent: COMPLETED, FAILED or CANCELED (409 if it has already ended)."""
        return self.resolve_with_event(
            intent_id, status, result=result, error=error, reason=reason,
            lease_token=lease_token, actor=actor,
        )[0]  # fmt: skip

    def resolve_with_event(
        self,
        intent_id: str,
        status: Status,
        *,
        actor: Principal | None = None,
        **how: Unpack[Resolution],
    ) -> tuple[Intent, Event]:
        """:meth:`resolve`, and the event that ended the intent (AXP's answer carries it)."""
        return self._write(
            lambda tx, ctx: intents.resolve(tx, ctx, intent_id, status, **how), actor
        )

    # -- waits -------------------------------------------------------------------------------

    def open_wait(
        self,
        intent_id: str,
        spec: WaitSpec,
        *,
        lease_token: str | None = None,
        actor: Principal | None = None,
    ) -> Wait:
        def op(tx: Tx, ctx: Ctx) -> Wait:
            if spec.key is None:
                return waits.open_wait(
                    tx, ctx, load_intent(tx, intent_id, ctx.actor), spec, lease_token
                )
            # the wait of the key is read once the intent is locked, in the same round trip
            row, keyed = load_intent_and(
                tx, intent_id, ctx.actor, waits.WAIT_BY_KEY, (intent_id, spec.key)
            )
            return waits.open_wait(tx, ctx, row, spec, lease_token, keyed)

        return self._write(op, actor)

    def wait_for_child(
        self,
        intent_id: str,
        child: NewIntent,
        *,
        key: str | None = None,
        spec: WaitSpec | None = None,
        lease_token: str | None = None,
        actor: Principal | None = None,
    ) -> tuple[Intent, Wait]:
        """Create a child intent and wait for it, in one transaction (idempotent by ``key``)."""
        from ..model import WaitKind

        def op(tx: Tx, ctx: Ctx) -> tuple[Intent, Wait]:
            row = load_intent(tx, intent_id, ctx.actor)
            idem = f"child:{intent_id}:{key}" if key is not None else None
            body = child.model_copy(update={"parent_intent_id": intent_id})
            created, _ = intents.create(tx, ctx, body, idem)
            base = spec or WaitSpec(kind=WaitKind.AGENT, child_intent_id=created.intent_id)
            wait_spec = base.model_copy(update={"child_intent_id": created.intent_id, "key": key})
            row = load_intent(tx, intent_id, ctx.actor)
            wait = waits.open_wait(tx, ctx, row, wait_spec, lease_token)
            return intents.read(tx, ctx, created.intent_id), wait

        return self._write(op, actor)

    def get_wait(self, wait_id: str, *, actor: Principal | None = None) -> Wait:
        return self._read(lambda tx, ctx: waits.get(tx, ctx, wait_id), actor)

    def list_waits(self, intent_id: str, *, actor: Principal | None = None) -> list[Wait]:
        return self._read(lambda tx, ctx: waits.list_for_intent(tx, ctx, intent_id), actor)

    def respond(
        self,
        intent_id: str,
        outcome: str,
        *,
        comment: str | None = None,
        data: dict[str, Any] | None = None,
        wait_id: str | None = None,
        actor: Principal | None = None,
    ) -> Intent:
        """A person answers the intent's open human task (checked against the task)."""

        def op(tx: Tx, ctx: Ctx) -> Intent:
            target = waits.wait_of_intent(tx, ctx, intent_id, wait_id)
            return waits.respond(tx, ctx, target, outcome, comment, data)

        return self._write(op, actor)

    def resume(
        self,
        intent_id: str,
        outcome: str,
        *,
        result: Any = None,
        comment: str | None = None,
        wait_id: str | None = None,
        lease_token: str | None = None,
        actor: Principal | None = None,
    ) -> Intent:
        """Resolve the intent's open wait with ``outcome`` (a human task goes through respond)."""

        def op(tx: Tx, ctx: Ctx) -> Intent:
            target = waits.wait_of_intent(tx, ctx, intent_id, wait_id)
            return waits.resume(tx, ctx, target, outcome, result, comment, lease_token)

        return self._write(op, actor)

    def inbox_changes(
        self,
        *,
        reply_to: str | None = None,
        after: tuple[str, str] = ("", ""),
        limit: int = 50,
        latest: bool = False,
        thread_status: str | None = None,
        actor: Principal | None = None,
    ) -> list[tuple[str, Intent]]:
        """Threads (intents) changed after the cursor ``(updated_at, intent_id)``, oldest first,
        each with its cursor text; with ``latest``, the most recently changed, newest first.
        ``thread_status`` (``pending``, ``active``, ``done``): only threads of that status."""
        if thread_status is not None and thread_status not in intents.THREAD_STATUS:
            raise InvalidRequest("a thread's status is pending, active or done")

        def op(tx: Tx, ctx: Ctx) -> list[tuple[str, Intent]]:
            found = intents.changed_since(
                tx, ctx, reply_to=reply_to, after=after, limit=limit, latest=latest,
                thread_status=thread_status,
            )  # fmt: skip
            return [
                (f"{at}|{intent_id}", intents.read(tx, ctx, intent_id)) for at, intent_id in found
            ]

        return self._read(op, actor)

    def reply(self, intent_id: str, message: str, *, actor: Principal | None = None) -> Intent:
        """Add a message to the intent's thread (recorded on its audit trail)."""
        return self._write(lambda tx, ctx: waits.reply(tx, ctx, intent_id, message), actor)

    def delegate(
        self,
        intent_id: str,
        delegate_to: str,
        *,
        note: str | None = None,
        actor: Principal | None = None,
    ) -> Intent:
        """Hand the intent's open human task to another person."""
        return self._write(
            lambda tx, ctx: waits.delegate(tx, ctx, intent_id, delegate_to, note), actor
        )

    def complete_tool(
        self,
        token: str,
        *,
        result: Any = None,
        error: str | None = None,
        actor: Principal | None = None,
    ) -> Intent:
        """A tool posts its result with the wait's callback token (single use)."""
        return self._write(
            lambda tx, ctx: waits.complete_tool(tx, ctx, token, result, error), actor
        )

    def heartbeat_tool(
        self, token: str, *, extend_seconds: float | None = None, actor: Principal | None = None
    ) -> Wait:
        return self._write(
            lambda tx, ctx: waits.heartbeat_tool(tx, ctx, token, extend_seconds), actor
        )

    def list_tasks(
        self, *, mine: bool = False, limit: int = 100, actor: Principal | None = None
    ) -> list[Intent]:
        """Intents waiting for a person, oldest first; ``mine``: only those ``actor`` may act on."""
        return self._read(lambda tx, ctx: waits.tasks(tx, ctx, mine, limit), actor)

    # -- timers ------------------------------------------------------------------------------

    def fire_due_timers(self, *, limit: int = 500) -> int:
        """Fire timers whose time has come; return how many fired. Checks with a read first,
        so an idle ticker never writes."""
        due = self.next_timer_due()
        if due is None or due > to_text(self.clock.now()):
            return 0
        total = 0
        while True:
            fired = self._write(
                lambda tx, ctx: timers.fire_due(tx, ctx, limit), Principal.system("timer")
            )
            total += fired
            if fired < limit:
                return total

    def next_timer_due(self) -> str | None:
        return self.store.read(timers.next_due)

    # -- journal and state -------------------------------------------------------------------

    def get_step(self, intent_id: str, key: str, *, actor: Principal | None = None) -> Step | None:
        return self._read(lambda tx, ctx: journal.get_step(tx, ctx, intent_id, key), actor)

    def list_steps(self, intent_id: str, *, actor: Principal | None = None) -> list[Step]:
        return self._read(lambda tx, ctx: journal.list_steps(tx, ctx, intent_id), actor)

    def record_step(
        self,
        intent_id: str,
        key: str,
        result: Any,
        *,
        lease_token: str | None = None,
        usage: TurnUsage | None = None,
        actor: Principal | None = None,
    ) -> Step:
        """Record a finished step (the first record of a key wins). ``usage`` reports the
        model turn the step holds in the same transaction; if that crosses a
        ``require_approval`` spend cap, the step is recorded and :class:`ApprovalPending`
        is raised: the intent now waits for a person."""
        step, wait_id = self._write(
            lambda tx, ctx: journal.record_step(tx, ctx, intent_id, key, result, lease_token,
                                                usage),
            actor,
        )  # fmt: skip
        if wait_id is not None:
            raise ApprovalPending(
                f"intent {intent_id} crossed its agent's spend cap and waits for approval",
                details={"intent_id": intent_id, "wait_id": wait_id, "step": key},
            )
        return step

    def get_state(
        self, intent_id: str, key: str = "default", *, actor: Principal | None = None
    ) -> StateRecord | None:
        return self._read(lambda tx, ctx: journal.get_state(tx, ctx, intent_id, key), actor)

    def put_state(
        self,
        intent_id: str,
        data: Any,
        *,
        expected_version: int,
        key: str = "default",
        lease_token: str | None = None,
        actor: Principal | None = None,
    ) -> StateRecord:
        return self._write(
            lambda tx, ctx: journal.put_state(
                tx, ctx, intent_id, key, data, expected_version, lease_token
            ),
            actor,
        )

    def list_state(
        self,
        intent_id: str,
        *,
        prefix: str = "",
        after: str = "",
        limit: int = 100,
        actor: Principal | None = None,
    ) -> list[StateEntry]:
        """The intent's state keys (no data) that start with ``prefix``, after ``after``, in
        code point order."""
        return self._read(
            lambda tx, ctx: journal.list_state(tx, ctx, intent_id, prefix, after, limit), actor
        )

    def delete_state(
        self,
        intent_id: str,
        key: str,
        *,
        expected_version: int | None = None,
        lease_token: str | None = None,
        actor: Principal | None = None,
    ) -> bool:
        return self._write(
            lambda tx, ctx: journal.delete_state(
                tx, ctx, intent_id, key, expected_version, lease_token
            ),
            actor,
        )

    def delete_state_prefix(
        self,
        intent_id: str,
        prefix: str,
        *,
        lease_token: str | None = None,
        actor: Principal | None = None,
    ) -> int:
        return self._write(
            lambda tx, ctx: journal.delete_state_prefix(tx, ctx, intent_id, prefix, lease_token),
            actor,
        )

    # -- leases ------------------------------------------------------------------------------

    def claim(
        self,
        agent: str,
        *,
        owner: str,
        lease_seconds: float = 30.0,
        intent_types: list[str] | None = None,
        start: bool = False,
        journal: bool = False,
        wait: float = 0.0,
        actor: Principal | None = None,
    ) -> Claim | None:
        """Claim the next runnable intent of ``agent``; ``start`` also begins work on it;
        ``journal`` returns its steps and waits with it. With nothing to claim, ``wait``
        seconds for an intent of the agent to become claimable (created, resumed, released:
        they wake the wait at once; a lease that expires is seen by the next claim)."""
        if not 0 <= wait <= 300:
            raise InvalidRequest("wait is between 0 and 300 seconds")
        topic = work_for(agent)
        deadline = time.monotonic() + wait
        # A claimer that found nothing last time, or was woken, looks first (a read): idle
        # workers polling make no writes. A busy claimer claims straight away. Idle claimers
        # of one agent in this process take turns to look and claim, so those woken by one
        # new intent make one write between them, not one each (each would see it claimable,
        # and all but one would write a claim that finds nothing).
        idle = (agent, owner)
        look = idle in self._idle

        def attempt() -> Claim | None:
            return self._write(
                lambda tx, ctx: leases.claim(tx, ctx, agent, owner, lease_seconds,
                                             intent_types, start, journal),
                actor,
            )  # fmt: skip

        while True:
            seen = self.store.topic_counter(topic)
            found = None
            if not look:
                found = attempt()
            else:
                with self._turns(agent):
                    if self.claimable(agent, intent_types=intent_types, actor=actor):
                        found = attempt()
            remaining = deadline - time.monotonic()
            if found is not None or remaining <= 0:
                self._remember(idle, found is None)
                return found
            self.store.wait_for_change(seen, remaining, topic=topic)
            look = True

    def _turns(self, agent: str) -> contextlib.AbstractContextManager[Any]:
        """The lock idle claimers of ``agent`` take turns on. None on an event loop (the
        server's embedded store): a greenlet holding it there would block the loop's others."""
        if bridged():
            return contextlib.nullcontext()
        turns = self._claim_turns.get(agent)
        if turns is None:
            turns = self._claim_turns.setdefault(agent, threading.Lock())
            # (a claimer still holding a forgotten lock only loses its turn's exclusivity:
            # its claim is still one write, and two claimers never take one intent)
            _forget_oldest(self._claim_turns)
        return turns

    def _remember(self, claimer: tuple[str, str], idle: bool) -> None:
        if not idle:
            self._idle.pop(claimer, None)
        elif claimer not in self._idle:
            self._idle[claimer] = None
            _forget_oldest(self._idle)

    def claimable(
        self, agent: str, *, intent_types: list[str] | None = None, actor: Principal | None = None
    ) -> bool:
        """Whether a claim for ``agent`` could find work now (a read, no lease taken)."""
        return self._read(lambda tx, ctx: leases.any_claimable(tx, ctx, agent, intent_types), actor)

    def agent_feed(
        self,
        agent: str,
        *,
        since: int = 0,
        statuses: list[Status] | None = None,
        limit: int = 100,
        actor: Principal | None = None,
    ) -> list[FeedItem]:
        """The agent's work feed after position ``since`` (default: intents not yet ended)."""
        if not 0 <= since <= 2**62 or not 1 <= limit <= 1000:
            raise InvalidRequest("since is 0 or more; limit is 1 to 1000")
        wanted = statuses or [s for s in Status if not s.terminal]
        return self._read(lambda tx, ctx: leases.feed(tx, ctx, agent, since, wanted, limit), actor)

    def claim_intent(
        self,
        intent_id: str,
        *,
        owner: str,
        lease_seconds: float = 30.0,
        actor: Principal | None = None,
    ) -> Claim:
        return self._write(
            lambda tx, ctx: leases.claim_intent(tx, ctx, intent_id, owner, lease_seconds), actor
        )

    def heartbeat_lease(
        self,
        intent_id: str,
        token: str,
        *,
        lease_seconds: float = 30.0,
        actor: Principal | None = None,
    ) -> Lease:
        return self._write(
            lambda tx, ctx: leases.heartbeat(tx, ctx, intent_id, token, lease_seconds), actor
        )

    def release_lease(self, intent_id: str, token: str, *, actor: Principal | None = None) -> None:
        self._write(lambda tx, ctx: leases.release(tx, ctx, intent_id, token), actor)

    def backlog(self) -> dict[str, int]:
        """Counts for operators: open waits by kind, runnable intents with no live lease,
        pending timers."""

        def count(tx: Tx) -> dict[str, int]:
            out = {
                f"wait:{kind}": n
                for kind, n in tx.all(
                    "SELECT kind, COUNT(*) FROM waits WHERE status = 'open' GROUP BY kind"
                )
            }
            runnable = tx.one(
                f"SELECT COUNT(*) FROM intents WHERE {CLAIMABLE} "  # (its partial index)
                "AND (lease_expires_at IS NULL OR lease_expires_at <= ?)",
                (to_text(self.clock.now()),),
            )
            pending = tx.one("SELECT COUNT(*) FROM timers WHERE status = 'pending'")
            out["runnable"] = runnable[0] if runnable else 0
            out["timers"] = pending[0] if pending else 0
            return out

        return self.store.read(count)

    # -- webhooks ----------------------------------------------------------------------------

    def subscribe(
        self,
        callback_url: str,
        event_types: list[str],
        *,
        secret: str | None = None,
        description: str | None = None,
        allow_private: bool = False,
        actor: Principal | None = None,
    ) -> Subscription:
        """Push these event types (or ``*``) to ``callback_url``, signed with ``secret``
        (generated if not given, and returned once)."""
        webhooks.check_target(callback_url, allow_private=allow_private)
        return self._write(
            lambda tx, ctx: webhooks.subscribe(
                tx, ctx, callback_url, event_types, secret, description
            ),
            actor,
        )

    def list_subscriptions(
        self, *, include_inactive: bool = False, actor: Principal | None = None
    ) -> list[Subscription]:
        return self._read(lambda tx, ctx: webhooks.subscriptions(tx, ctx, include_inactive), actor)

    def revoke_subscription(
        self, subscription_id: str, *, actor: Principal | None = None
    ) -> Subscription:
        return self._write(lambda tx, ctx: webhooks.revoke(tx, ctx, subscription_id), actor)

    def list_deliveries(
        self, subscription_id: str, *, limit: int = 100, actor: Principal | None = None
    ) -> list[Delivery]:
        return self._read(
            lambda tx, ctx: webhooks.deliveries(tx, ctx, subscription_id, limit), actor
        )

    def replay_deliveries(
        self,
        *,
        delivery_id: str | None = None,
        subscription_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: Principal | None = None,
    ) -> int:
        """Send again (with the same webhook ids): one delivery, or a subscription's
        deliveries created in ``[since, until]``. Returns how many were queued."""
        return self._write(
            lambda tx, ctx: webhooks.replay(
                tx, ctx, delivery_id=delivery_id, subscription_id=subscription_id,
                since=to_text(since) if since else None, until=to_text(until) if until else None,
            ),
            actor,
        )  # fmt: skip

    def any_webhook_subscription(self) -> bool:
        """Whether any webhook subscription is live: without one nothing is queued, so the
        dispatcher need not look for due deliveries after every commit."""
        return self.store.read(webhooks.any_live)

    def take_due_deliveries(self, *, limit: int = 50) -> list[tuple[Delivery, str, str]]:
        """For the dispatcher: due deliveries with their target URL and secret. Checks with a
        read first, so an idle dispatcher never writes (and never wakes anyone)."""
        now = to_text(self.clock.now())
        if not self.store.read(lambda tx: webhooks.any_due(tx, now)):
            return []
        return self._write(
            lambda tx, ctx: webhooks.due(tx, ctx, limit), Principal.system("webhooks")
        )

    def record_delivery(
        self, delivery_id: str, *, ok: bool, status: int | None, error: str | None,
        max_attempts: int, backoff: float,
    ) -> None:  # fmt: skip
        self._write(
            lambda tx, ctx: webhooks.record(
                tx, ctx, delivery_id, ok=ok, status=status, error=error,
                max_attempts=max_attempts, backoff=backoff,
            ),
            Principal.system("webhooks"),
        )  # fmt: skip

    # -- keys ------------------------------------------------------------------------------

    def create_key(
        self,
        role: KeyRole,
        *,
        agent: str | None = None,
        subject: str | None = None,
        groups: list[str] | None = None,
        workspace: str = "default",
    ) -> NewKey:
        """Create an API key; its secret is returned once and stored only as a hash."""
        return self._write(
            lambda tx, ctx: keys.create(
                tx,
                ctx,
                role,
                agent=agent,
                subject=subject,
                groups=groups or [],
                workspace=workspace,
            ),
            None,
        )

    def authenticate(self, presented: str) -> ApiKey | None:
        return self.store.read(lambda tx: keys.authenticate(tx, presented))

    def list_keys(self, *, workspace: str | None = None) -> list[ApiKey]:
        return self.store.read(lambda tx: keys.list_keys(tx, workspace))

    def revoke_key(self, key_id: str, *, workspace: str | None = None) -> None:
        """Revoke a live key (with ``workspace``: only one of that workspace's, else
        :class:`NotFound`)."""
        self._write(lambda tx, ctx: keys.revoke(tx, ctx, key_id, workspace), None)

    def has_keys(self) -> bool:
        return self.store.read(keys.any_live)

    # -- mesh: agents, their policy, and the checks at every boundary -----------------------

    def get_agent(self, address: str, *, actor: Principal | None = None) -> Agent:
        return self._read(lambda tx, ctx: mesh.get(tx, ctx, address), actor)

    def register_agent(self, address: str, *, actor: Principal | None = None) -> Agent:
        """Register an agent before it is used (it exists once used anyway)."""
        return self._write(lambda tx, ctx: mesh.to_model(tx, ctx, mesh.ensure(tx, ctx, address)),
                           actor)  # fmt: skip

    def list_agents(
        self,
        *,
        status: AgentStatus | None = None,
        health: Health | None = None,
        after: str | None = None,
        limit: int = 100,
        actor: Principal | None = None,
    ) -> list[Agent]:
        return self._read(
            lambda tx, ctx: mesh.list_agents(
                tx, ctx, status=status, health_is=health, after=after, limit=limit
            ),
            actor,
        )

    def set_agent_status(
        self,
        address: str,
        status: AgentStatus,
        *,
        reason: str | None = None,
        generation: int | None = None,
        actor: Principal | None = None,
    ) -> Agent:
        """Kill, pause or resume an agent (compare-and-set on ``generation`` when given)."""
        return self._write(
            lambda tx, ctx: mesh.set_status(tx, ctx, address, status, reason, generation), actor
        )

    def set_agent_policy(
        self,
        address: str,
        policy: AgentPolicy,
        *,
        generation: int | None = None,
        actor: Principal | None = None,
    ) -> Agent:
        """Replace an agent's policy (compare-and-set on ``generation`` when given)."""
        return self._write(
            lambda tx, ctx: mesh.set_policy(tx, ctx, address, policy, generation), actor
        )

    def agent_heartbeat(
        self,
        address: str,
        metrics: dict[str, Any] | None = None,
        *,
        actor: Principal | None = None,
    ) -> Agent:
        return self._write(lambda tx, ctx: mesh.heartbeat(tx, ctx, address, metrics), actor)

    def mesh_events(
        self,
        *,
        agent: str | None = None,
        event_type: str | None = None,
        after: int = 0,
        limit: int = 50,
        actor: Principal | None = None,
    ) -> list[MeshEvent]:
        return self._read(
            lambda tx, ctx: mesh.events(
                tx, ctx, agent=agent, event_type=event_type, after=after, limit=limit
            ),
            actor,
        )

    def check(
        self,
        intent_id: str,
        *,
        tool: str | None = None,
        lease_token: str | None = None,
        actor: Principal | None = None,
    ) -> None:
        """A boundary: raise if the work on the intent may not go on (the agent is killed or
        paused, the intent waits for a spend approval or has ended, or ``tool`` is outside
        the agent's scope). The common case is one read; a refusal is recorded first."""
        if self._read(
            lambda tx, ctx: mesh.boundary(tx, ctx, intent_id, tool, lease_token, write=False),
            actor,
        ) is None:  # fmt: skip
            return
        refusal = self._write(
            lambda tx, ctx: mesh.boundary(tx, ctx, intent_id, tool, lease_token, write=True),
            actor,
        )
        if refusal is not None:
            raise refusal

    def report_usage(
        self,
        intent_id: str,
        *,
        model: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
        lease_token: str | None = None,
        actor: Principal | None = None,
    ) -> UsageReport:
        """Record one model turn's usage on the intent and its agent's spend."""

        def op(tx: Tx, ctx: Ctx) -> UsageReport:
            report = mesh.report_usage(
                tx, ctx, intent_id, model, tokens_in, tokens_out, cost_usd, lease_token
            )
            assert report is not None  # with totals there always is one
            return report

        return self._write(op, actor)

    def intent_usage(self, intent_id: str, *, actor: Principal | None = None) -> SpendWindow:
        def op(tx: Tx, ctx: Ctx) -> SpendWindow:
            load_intent(tx, intent_id, ctx.actor)
            return mesh.intent_spend(tx, intent_id)

        return self._read(op, actor)

    def watch_agent(
        self,
        address: str,
        *,
        after_generation: int,
        timeout: float,
        actor: Principal | None = None,
    ) -> Agent:
        """The agent once its generation is past ``after_generation`` (a kill, pause, resume
        or policy change), or as it is when ``timeout`` seconds pass."""
        limit = time.monotonic() + timeout
        seen = self.store.topic_counter(AGENT_CHANGES)  # woken by agent changes, not every commit
        while True:
            found = self._read(lambda tx, ctx: mesh.find(tx, ctx, address), actor)
            if found is None:  # one may watch an agent before its first use
                found = self._write(lambda tx, ctx: mesh.ensure(tx, ctx, address), actor)
            generation = found.generation
            remaining = limit - time.monotonic()
            if generation > after_generation or remaining <= 0:
                return self.get_agent(address, actor=actor)
            seen = self.store.wait_for_change(seen, remaining, topic=AGENT_CHANGES)

    # -- waiting -----------------------------------------------------------------------------

    def wait_for_intent(
        self,
        intent_id: str,
        *,
        statuses: frozenset[Status],
        timeout: float | None,
        after_seq: int = 0,
        actor: Principal | None = None,
    ) -> Intent:
        """Block until the intent is in one of ``statuses`` (or, with ``after_seq``, changed
        past that seq); raise :class:`WaitTimeout` after ``timeout`` seconds."""
        limit = None if timeout is None else time.monotonic() + timeout
        seen = self.store.change_counter
        while True:
            intent = self.get_intent(intent_id, actor=actor)
            if intent.status in statuses or (after_seq and intent.seq > after_seq):
                return intent
            due = self.next_timer_due()
            if due is not None and due <= to_text(self.clock.now()):
                self.fire_due_timers()
                continue
            remaining = 1.0 if limit is None else limit - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(
                    f"intent {intent_id} is still {intent.status.value}",
                    details={
                        "intent_id": intent_id,
                        "status": intent.status.value,
                        "seq": intent.seq,
                    },
                )
            seen = self.store.wait_for_change(seen, min(remaining, 1.0))

    # -- audit -------------------------------------------------------------------------------

    def verify_audit(
        self, intent_id: str | None = None, *, workspace: str | None = None, batch: int = 500
    ) -> ChainReport:
        """Recompute hash chains (one intent, or every intent in batches: of ``workspace``
        if given, else of all)."""
        if intent_id is not None:
            checked, problems = self.store.read(lambda tx: audit.verify(tx, [intent_id]))
            return audit.report(1, checked, problems)
        after, intents_n, events_n, problems = "", 0, 0, []
        while True:
            ids, checked, found = self.store.read(
                lambda tx, a=after: audit.verify_all(tx, a, batch, workspace)  # type: ignore[misc]
            )
            intents_n += len(ids)
            events_n += checked
            problems.extend(found)
            if len(ids) < batch:
                return audit.report(intents_n, events_n, problems)
            after = ids[-1]


def _not_unicode(exc: UnicodeEncodeError) -> InvalidRequest:
    """Text a store cannot hold: a lone surrogate (valid in JSON's escapes and in Python
    strings, not in UTF-8). Nothing of the request was stored."""
    return InvalidRequest(
        f"text must be valid Unicode: {exc.reason} at position {exc.start}",
        code="invalid_text",
    )
