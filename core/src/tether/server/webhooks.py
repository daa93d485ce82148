"""Webhooks over HTTP: subscriptions, delivery logs, replay, and the dispatcher that sends.

Each delivery is signed per the Standard Webhooks spec (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``) and with AXP's ``X-AXME-Signature`` (hex HMAC-SHA256 of the body with
the subscription's secret). A 2xx answer marks it delivered; anything else is retried with
exponential backoff and jitter, then dead-lettered.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from datetime import UTC, datetime
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from standardwebhooks.webhooks import Webhook
from starlette.concurrency import run_in_threadpool

from ..engine import Engine
from ..model import Delivery, Principal, Subscription
from ..settings import Settings
from ..store import WEBHOOK_CHANGES
from .auth import AGENTS, require
from .bodies import Body
from .changes import ChangeFeed
from .deps import JSONModel, engine

logger = logging.getLogger("tether.webhooks")
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

Owner = Annotated[Principal, Depends(require(*AGENTS))]
EngineDep = Annotated[Engine, Depends(engine)]


class NewSubscription(Body):
    callback_url: Annotated[str, Field(min_length=8, max_length=2048)]
    event_types: list[str]
    secret: str | None = None
    description: str | None = None
    active: bool = True


class SubscriptionOut(Body):
    ok: bool = True
    subscription: Subscription
    secret: str | None = None


class SubscriptionList(Body):
    ok: bool = True
    subscriptions: list[Subscription]


class DeliveryList(Body):
    ok: bool = True
    deliveries: list[Delivery]


class ReplayRange(Body):
    since: datetime | None = None
    until: datetime | None = None


class Replayed(Body):
    ok: bool = True
    queued: int


@router.post("/subscriptions", response_model=SubscriptionOut, summary="Subscribe to events (AXP)")
def create_subscription(
    body: NewSubscription, who: Owner, e: EngineDep, request: Request
) -> JSONModel:
    """Push these event types (``intent.*`` or ``*``) to ``callback_url``. The secret (given,
    or generated) is in this response only."""
    settings: Settings = request.app.state.settings
    sub = e.subscribe(
        body.callback_url, body.event_types, secret=body.secret, description=body.description,
        allow_private=settings.webhook_allow_private, actor=who,
    )  # fmt: skip
    secret = sub.secret
    return JSONModel(
        SubscriptionOut(subscription=sub.model_copy(update={"secret": None}), secret=secret)
    )


@router.get("/subscriptions", response_model=SubscriptionList)
def list_subscriptions(who: Owner, e: EngineDep, include_inactive: bool = False) -> JSONModel:
    return JSONModel(
        SubscriptionList(
            subscriptions=e.list_subscriptions(include_inactive=include_inactive, actor=who)
        )
    )


@router.delete("/subscriptions/{subscription_id}", response_model=SubscriptionOut)
def delete_subscription(subscription_id: str, who: Owner, e: EngineDep) -> JSONModel:
    return JSONModel(
        SubscriptionOut(subscription=e.revoke_subscription(subscription_id, actor=who))
    )


@router.get("/subscriptions/{subscription_id}/deliveries", response_model=DeliveryList,
            summary="A subscription's delivery log, newest first")  # fmt: skip
def list_deliveries(
    subscription_id: str,
    who: Owner,
    e: EngineDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONModel:
    return JSONModel(
        DeliveryList(deliveries=e.list_deliveries(subscription_id, limit=limit, actor=who))
    )


@router.post("/subscriptions/{subscription_id}/replay", response_model=Replayed,
             summary="Send a time range again")  # fmt: skip
def replay_range(subscription_id: str, body: ReplayRange, who: Owner, e: EngineDep) -> JSONModel:
    queued = e.replay_deliveries(
        subscription_id=subscription_id, since=body.since, until=body.until, actor=who
    )
    return JSONModel(Replayed(queued=queued))


@router.post("/deliveries/{delivery_id}/replay", response_model=Replayed, summary="Send one again")
def replay_one(delivery_id: str, who: Owner, e: EngineDep) -> JSONModel:
    return JSONModel(Replayed(queued=e.replay_deliveries(delivery_id=delivery_id, actor=who)))


def signed_headers(delivery: Delivery, secret: str, body: str, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers plus AXP's ``X-AXME-Signature``."""
    signature = Webhook(secret).sign(delivery.delivery_id, now, body)
    axme = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "webhook-id": delivery.delivery_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "x-axme-signature": f"sha256={axme}",
        "user-agent": "tether-webhooks",
    }


CHECK_INTERVAL = 0.01
"""The dispatcher looks for due deliveries at most this often (seconds). The change feed wakes
it on every commit, and each look is a store read on a worker thread: under load that was
a read per write request; now a new delivery waits at most this long more to be sent."""


async def dispatch(
    engine: Engine, settings: Settings, feed: ChangeFeed, *, idle: float = 0.5
) -> None:
    """Send due deliveries until cancelled. Safe to run in every replica.

    While no subscription is live nothing can be queued, so the dispatcher does not look
    after every commit: it waits for a subscription to be created (in this process, or in
    another replica that names its change's topics) and otherwise looks again every
    ``idle`` seconds (a subscription created by another process on a SQLite file)."""
    loop = asyncio.get_running_loop()
    live, live_topic, live_read = True, -1, -idle
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as http:
        while True:
            seen = feed.version
            looked = loop.time()
            topic = engine.store.topic_counter(WEBHOOK_CHANGES)
            try:
                if topic != live_topic or looked - live_read >= idle:
                    live = await run_in_threadpool(engine.any_webhook_subscription)
                    live_topic, live_read = topic, looked
                due = await run_in_threadpool(engine.take_due_deliveries, limit=50) if live else []
            except Exception:
                logger.exception("taking due webhook deliveries failed; retrying")
                due = []
            if due:
                sent = await asyncio.gather(
                    *(_send(engine, settings, http, *item) for item in due),
                    return_exceptions=True,
                )
                for failed in sent:
                    if isinstance(failed, Exception):
                        logger.error("sending a webhook delivery failed", exc_info=failed)
                continue
            if feed.draining:  # shutting down: its waits end at once, so keep the idle pace
                await asyncio.sleep(idle)
            elif not live:
                await feed.wait_topic(WEBHOOK_CHANGES, topic, idle)
            else:
                await feed.wait(seen, idle)
            # commits that land meanwhile are seen by the next look, which reads the store
            pause = looked + CHECK_INTERVAL - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)


async def _send(
    engine: Engine,
    settings: Settings,
    http: httpx.AsyncClient,
    delivery: Delivery,
    url: str,
    secret: str,
) -> None:
    import json

    status: int | None = None
    error: str | None = None
    try:
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)
        headers = signed_headers(delivery, secret, body, datetime.now(UTC))
        response = await http.post(url, content=body.encode(), headers=headers)
        status = response.status_code
        ok = 200 <= status < 300
        if not ok:
            error = f"HTTP {status}"
    except Exception as exc:  # (a subscription stored before its target or secret was
        # checked as now fails its own deliveries, never the dispatcher's other work)
        ok, error = False, f"{type(exc).__name__}: {exc}"
    try:
        await run_in_threadpool(
            engine.record_delivery, delivery.delivery_id, ok=ok, status=status, error=error,
            max_attempts=settings.webhook_max_attempts, backoff=settings.webhook_backoff_seconds,
        )  # fmt: skip
    except Exception:
        logger.exception("recording webhook delivery %s failed", delivery.delivery_id)
