"""tether's data model: pydantic types shared by the engine, server and clients."""

from .agents import Agent, AgentStatus
from .base import SCHEMA_VERSION, AgentAddress, IntentType
from .events import ChainReport, Event
from .intents import ErrorInfo, Intent, LeaseInfo, NewIntent, Page, PendingWith
from .keys import ApiKey, KeyRole, NewKey
from .principals import Principal, PrincipalKind
from .status import TERMINAL, Status, WaitingReason
from .waits import TIMEOUT, HumanTask, OnTimeout, TaskType, Wait, WaitKind, WaitSpec, WaitStatus
from .webhooks import Delivery, DeliveryStatus, Subscription
from .work import Claim, FeedItem, Lease, StateRecord, Step

__all__ = [
    "SCHEMA_VERSION",
    "TERMINAL",
    "TIMEOUT",
    "Agent",
    "AgentAddress",
    "AgentStatus",
    "ApiKey",
    "ChainReport",
    "Claim",
    "Delivery",
    "DeliveryStatus",
    "ErrorInfo",
    "Event",
    "FeedItem",
    "HumanTask",
    "Intent",
    "IntentType",
    "KeyRole",
    "Lease",
    "LeaseInfo",
    "NewIntent",
    "NewKey",
    "OnTimeout",
    "Page",
    "PendingWith",
    "Principal",
    "PrincipalKind",
    "StateRecord",
    "Status",
    "Step",
    "Subscription",
    "TaskType",
    "Wait",
    "WaitKind",
    "WaitSpec",
    "WaitStatus",
    "WaitingReason",
]
