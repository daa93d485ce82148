"""Webhooks: subscriptions, and an outbox written in the same transaction as each change.

Every event appended to an intent is queued, in that transaction, for each live subscription
of its workspace whose event types match; so an event is pushed if and only if it happened.
A dispatcher (the server) takes due deliveries, at most the oldest undelivered one per
(subscription, intent), which keeps each intent's events in order at the receiver.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import random
import secrets
import socket
from datetime import timedelta
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from ..clock import from_text, to_text
from ..errors import InvalidRequest, NotFound
from ..ids import new_id
from ..model import Delivery, Subscription
from ..store import WEBHOOK_CHANGES, Tx
from .context import Ctx
from .records import dumps, for_update, loads, ts

SUBSCRIBABLE_EXTRA = ("inbox.thread_created", "inbox.thread_updated", "inbox.reply_received")
_SUB = "subscription_id, workspace, owner, callback_url, event_types, secret, description, created_at, revoked_at"
_DEL = (
    "delivery_id, subscription_id, intent_id, seq, event_type, payload, status, attempts, "
    "next_attempt_at, last_status, last_error, created_at, delivered_at"
)
SEND_LEASE_SECONDS = 15.0
"""How long a taken delivery is held before another dispatcher may send it (HTTP timeout + margin)."""


def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse what the sender could not post to (parsed as the sender parses it), and targets
    in private, link-local or reserved ranges unless allowed (loopback is allowed, for
    development). Every address the host resolves to is checked."""
    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidRequest(f"not a valid webhook target URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidRequest("a webhook target is an http:// or https:// URL with a host")
    if port is not None and not 0 < port < 65536:
        raise InvalidRequest(f"not a valid webhook target URL: port {port} is out of range")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parsed.host, port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidRequest(f"cannot resolve {parsed.host}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_loopback:
            continue
        if (
            address.is_private
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
        ):
            raise InvalidRequest(
                f"{parsed.host} resolves to {address}, a private or link-local address; "
                "allow private targets in the configuration to use it",
                code="private_target",
            )


def _signs(secret: str) -> bool:
    """Whether Standard Webhooks can sign with ``secret`` (its part after ``whsec_`` must be
    base64): a subscription whose deliveries could never be signed is refused up front."""
    try:
        Webhook(secret)
    except Exception:  # (the library raises its own bare error for bad base64)
        return False
    return True


def _subscription(row: tuple[Any, ...], with_secret: bool = False) -> Subscription:
    return Subscription(
        subscription_id=row[0], workspace=row[1], owner=row[2], callback_url=row[3],
        event_types=json.loads(row[4]), secret=row[5] if with_secret else None,
        description=row[6], created_at=from_text(row[7]), revoked_at=ts(row[8]),
    )  # fmt: skip


def _delivery(row: tuple[Any, ...]) -> Delivery:
    return Delivery(
        delivery_id=row[0], subscription_id=row[1], intent_id=row[2], seq=row[3],
        event_type=row[4], payload=loads(row[5], "delivery payload"), status=row[6],
        attempts=row[7], next_attempt_at=from_text(row[8]), last_status=row[9],
        last_error=row[10], created_at=from_text(row[11]), delivered_at=ts(row[12]),
    )  # fmt: skip


def subscribe(
    tx: Tx, ctx: Ctx, url: str, event_types: list[str], secret: str | None, description: str | None
) -> Subscription:
    if not event_types or len(event_types) > 32:
        raise InvalidRequest("a subscription names 1 to 32 event types ('*' for every one)")
    for kind in event_types:
        if kind != "*" and not kind.startswith("intent.") and kind not in SUBSCRIBABLE_EXTRA:
            raise InvalidRequest(f"unknown event type {kind!r}: use intent.* types or '*'")
    if secret is None:
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    elif not secret.startswith("whsec_") or len(secret) < 16 or not _signs(secret):
        raise InvalidRequest("a secret looks like whsec_<base64>, at least 16 characters")
    sub_id = new_id()
    tx.memo.pop(("webhook_subscriptions", ctx.actor.workspace), None)
    tx.touch(WEBHOOK_CHANGES)
    tx.execute(
        f"INSERT INTO webhook_subscriptions ({_SUB}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        (sub_id, ctx.actor.workspace, ctx.actor.actor, url, dumps(event_types), secret, description,
         ctx.now_text),
    )  # fmt: skip
    row = tx.one(f"SELECT {_SUB} FROM webhook_subscriptions WHERE subscription_id = ?", (sub_id,))
    assert row is not None
    return _subscription(row, with_secret=True)


def subscriptions(tx: Tx, ctx: Ctx, include_inactive: bool) -> list[Subscription]:
    live = "" if include_inactive else " AND revoked_at IS NULL"
    rows = tx.all(
        f"SELECT {_SUB} FROM webhook_subscriptions WHERE workspace = ?{live} ORDER BY created_at",
        (ctx.actor.workspace,),
    )
    return [_subscription(r) for r in rows]


def revoke(tx: Tx, ctx: Ctx, subscription_id: str) -> Subscription:
    tx.memo.pop(("webhook_subscriptions", ctx.actor.workspace), None)
    tx.touch(WEBHOOK_CHANGES)
    if (
        tx.execute(
            "UPDATE webhook_subscriptions SET revoked_at = ? WHERE subscription_id = ? AND workspace = ? "
            "AND revoked_at IS NULL",
            (ctx.now_text, subscription_id, ctx.actor.workspace),
        )
        != 1
    ):
        raise NotFound(f"no live subscription {subscription_id}")
    row = tx.one(
        f"SELECT {_SUB} FROM webhook_subscriptions WHERE subscription_id = ?", (subscription_id,)
    )
    assert row is not None
    return _subscription(row)


_INBOX_ALIASES = {
    "intent.human_task_assigned": "inbox.thread_created",
    "intent.reply": "inbox.reply_received",
    "intent.resumed": "inbox.thread_updated",
    "intent.delegated": "inbox.thread_updated",
    "intent.escalated": "inbox.thread_updated",
    "intent.reminder": "inbox.thread_updated",
}
"""AXP's inbox event types, raised by the intent events that change a thread."""


def _alias(event: dict[str, Any]) -> str | None:
    """The AXP inbox type an intent event also counts as, if any."""
    kind = event["event_type"]
    if kind == "intent.resumed" and event.get("details", {}).get("kind") != "human":
        return None
    return _INBOX_ALIASES.get(kind)


def _payload(ctx: Ctx, as_type: str, event: dict[str, Any]) -> str:
    return dumps({"type": as_type, "timestamp": ctx.now_text, "data": event})


def enqueue(tx: Tx, ctx: Ctx, workspace: str, event: dict[str, Any]) -> None:
    """Queue ``event`` for every matching live subscription (same transaction as the event).
    A subscription to an AXP inbox type gets the intent events that change a thread under
    that type; one to ``*`` gets every event once, under its own type. (PostgreSQL queues
    with :func:`enqueue_sql` instead, inside the event's own statement.)"""
    memo = ("webhook_subscriptions", workspace)  # once per transaction, not per event
    subs = tx.memo.get(memo)
    if subs is None:
        subs = tx.memo[memo] = tx.all(
            "SELECT subscription_id, event_types FROM webhook_subscriptions "
            "WHERE workspace = ? AND revoked_at IS NULL",
            (workspace,),
        )
    if not subs:
        return
    kind = event["event_type"]
    alias = _alias(event)
    for sub_id, types in subs:
        wanted = json.loads(types)
        if "*" in wanted or kind in wanted:
            as_type = kind
        elif alias is not None and alias in wanted:
            as_type = alias
        else:
            continue
        payload = _payload(ctx, as_type, event)
        tx.execute(
            f"INSERT INTO webhook_deliveries ({_DEL}) "
            "VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, NULL, NULL, ?, NULL)",
            (f"msg_{new_id()}", sub_id, event["intent_id"], event["seq"], as_type, payload,
             ctx.now_text, ctx.now_text),
        )  # fmt: skip


def enqueue_sql(ctx: Ctx, workspace: str, event: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """:func:`enqueue` as one ``INSERT ... SELECT`` (PostgreSQL), to run as a common table
    expression of the statement that records the event: the matching happens in the
    database, so queuing costs no round trip of its own."""
    kind, alias = event["event_type"], _alias(event)
    matches = "s.event_types::jsonb @> jsonb_build_array(?::text)"
    sql = (
        f"INSERT INTO webhook_deliveries ({_DEL}) SELECT 'msg_' || gen_random_uuid(), "
        f"s.subscription_id, ?, ?, CASE WHEN {matches} OR {matches} THEN ? ELSE ? END, "
        f"CASE WHEN {matches} OR {matches} THEN ? ELSE ? END, 'pending', 0, ?, NULL, NULL, ?, "
        "NULL FROM webhook_subscriptions s WHERE s.workspace = ? AND s.revoked_at IS NULL AND "
        f"({matches} OR {matches} OR {matches})"
    )
    as_kind = _payload(ctx, kind, event)
    as_alias = _payload(ctx, alias, event) if alias is not None else None
    params = (
        event["intent_id"], event["seq"],
        "*", kind, kind, alias,
        "*", kind, as_kind, as_alias,
        ctx.now_text, ctx.now_text, workspace,
        "*", kind, alias,
    )  # fmt: skip
    return sql, params


def any_live(tx: Tx) -> bool:
    """Whether any subscription, in any workspace, is live (nothing is queued without one)."""
    return (
        tx.one("SELECT 1 FROM webhook_subscriptions WHERE revoked_at IS NULL LIMIT 1") is not None
    )


def any_due(tx: Tx, now: str) -> bool:
    found = tx.one(
        "SELECT 1 FROM webhook_deliveries WHERE status IN ('pending', 'sending') AND next_attempt_at <= ? LIMIT 1",
        (now,),
    )
    return found is not None


def due(tx: Tx, ctx: Ctx, limit: int) -> list[tuple[Delivery, str, str]]:
    """Take due deliveries (with their target URL and secret) for sending: the oldest
    undelivered one per (subscription, intent), held for a while so one dispatcher sends it."""
    rows = tx.all(
        f"SELECT {', '.join('d.' + c for c in _DEL.split(', '))}, s.callback_url, s.secret "
        "FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.subscription_id = d.subscription_id "
        "WHERE d.status IN ('pending', 'sending') AND d.next_attempt_at <= ? AND s.revoked_at IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.subscription_id = d.subscription_id "
        "AND e.intent_id = d.intent_id AND e.seq < d.seq AND e.status IN ('pending', 'sending')) "
        "ORDER BY d.next_attempt_at, d.seq LIMIT ?"
        + for_update(tx, skip_locked=True).replace("FOR UPDATE", "FOR UPDATE OF d"),
        (ctx.now_text, limit),
    )
    hold = to_text(ctx.now + timedelta(seconds=SEND_LEASE_SECONDS))
    out = []
    for row in rows:
        tx.execute(
            "UPDATE webhook_deliveries SET status = 'sending', next_attempt_at = ? WHERE delivery_id = ?",
            (hold, row[0]),
        )
        out.append((_delivery(row[:13]), row[13], row[14]))
    return out


def record(
    tx: Tx,
    ctx: Ctx,
    delivery_id: str,
    *,
    ok: bool,
    status: int | None,
    error: str | None,
    max_attempts: int,
    backoff: float,
) -> None:
    """Record an attempt: delivered, retried later (exponential backoff with jitter), or
    dead-lettered after ``max_attempts``."""
    row = tx.one("SELECT attempts FROM webhook_deliveries WHERE delivery_id = ?", (delivery_id,))
    if row is None:
        return
    attempts = row[0] + 1
    if ok:
        tx.execute(
            "UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, last_status = ?, "
            "last_error = NULL, delivered_at = ? WHERE delivery_id = ?",
            (attempts, status, ctx.now_text, delivery_id),
        )
        return
    dead = attempts >= max_attempts
    delay = min(backoff * 2 ** (attempts - 1), 3600.0) * random.uniform(0.8, 1.2)
    tx.execute(
        "UPDATE webhook_deliveries SET status = ?, attempts = ?, last_status = ?, last_error = ?, "
        "next_attempt_at = ? WHERE delivery_id = ?",
        ("dead" if dead else "pending", attempts, status, (error or "")[:500],
         to_text(ctx.now + timedelta(seconds=delay)), delivery_id),
    )  # fmt: skip


def deliveries(tx: Tx, ctx: Ctx, subscription_id: str, limit: int) -> list[Delivery]:
    """A subscription's delivery log, newest first (the oldest were all an operator saw
    once a subscription had more than a page of them)."""
    _own(tx, ctx, subscription_id)
    rows = tx.all(
        f"SELECT {_DEL} FROM webhook_deliveries WHERE subscription_id = ? "
        "ORDER BY created_at DESC, intent_id DESC, seq DESC, delivery_id DESC LIMIT ?",
        (subscription_id, limit),
    )
    return [_delivery(r) for r in rows]


def _own(tx: Tx, ctx: Ctx, subscription_id: str) -> None:
    found = tx.one(
        "SELECT 1 FROM webhook_subscriptions WHERE subscription_id = ? AND workspace = ?",
        (subscription_id, ctx.actor.workspace),
    )
    if found is None:
        raise NotFound(f"no subscription {subscription_id}")


def replay(
    tx: Tx, ctx: Ctx, *, delivery_id: str | None, subscription_id: str | None,
    since: str | None, until: str | None,
) -> int:  # fmt: skip
    """Send deliveries again (same ids): one, or a subscription's within a time range."""
    if delivery_id is not None:
        row = tx.one(
            "SELECT subscription_id FROM webhook_deliveries WHERE delivery_id = ?", (delivery_id,)
        )
        if row is None:
            raise NotFound(f"no delivery {delivery_id}")
        _own(tx, ctx, row[0])
        where, params = "delivery_id = ?", [delivery_id]
    elif subscription_id is not None:
        _own(tx, ctx, subscription_id)
        where, params = "subscription_id = ? AND created_at >= ? AND created_at <= ?", [
            subscription_id, since or "", until or "9999",
        ]  # fmt: skip
    else:
        raise InvalidRequest("replay one delivery, or a subscription's deliveries in a time range")
    return tx.execute(
        f"UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ? WHERE {where}",
        (ctx.now_text, *params),
    )
