"""Webhook subscriptions and deliveries: signed pushes of lifecycle events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from .base import Model


class Subscription(Model):
    """Where to push which event types (``*`` for every one). The secret signs each delivery
    (Standard Webhooks) and is shown when the subscription is created."""

    subscription_id: str
    workspace: str = "default"
    owner: str
    callback_url: str
    event_types: list[str]
    description: str | None = None
    created_at: datetime
    revoked_at: datetime | None = None
    secret: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def secret_hint(self) -> str | None:
        return f"...{self.secret[-4:]}" if self.secret else None


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEAD = "dead"


class Delivery(Model):
    """One event for one subscription. ``delivery_id`` is the stable ``webhook-id`` header,
    the same on every retry and replay, so receivers can drop duplicates."""

    delivery_id: str
    subscription_id: str
    intent_id: str
    seq: int
    event_type: str
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_status: int | None = None
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None
