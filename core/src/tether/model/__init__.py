"""tether's data model: pydantic types shared by the engine, server and clients."""

from .agents import (
    Agent,
    AgentPolicy,
    AgentStatus,
    BreachAction,
    CostPolicy,
    Health,
    LimitPolicy,
    MeshEvent,
    SendMode,
    SendPolicy,
    Spend,
    SpendWindow,
    ToolPolicy,
    TurnUsage,
    Usage,
    UsageReport,
)
from .base import SCHEMA_VERSION, AgentAddress, IntentType
from .events import ChainReport, Event
from .intents import ErrorInfo, Intent, LeaseInfo, NewIntent, Page, PendingWith
from .keys import ApiKey, KeyRole, NewKey
from .principals import Principal, PrincipalKind
from .status import TERMINAL, Status, WaitingReason
from .waits import TIMEOUT, HumanTask, OnTimeout, TaskType, Wait, WaitKind, WaitSpec, WaitStatus
from .webhooks import Delivery, DeliveryStatus, Subscription
from .work import Claim, FeedItem, Lease, StateEntry, StateRecord, Step

__all__ = [
    "SCHEMA_VERSION",
    "TERMINAL",
    "TIMEOUT",
    "Agent",
    "AgentAddress",
    "AgentPolicy",
    "AgentStatus",
    "ApiKey",
    "BreachAction",
    "ChainReport",
    "Claim",
    "CostPolicy",
    "Delivery",
    "DeliveryStatus",
    "ErrorInfo",
    "Event",
    "FeedItem",
    "Health",
    "HumanTask",
    "Intent",
    "IntentType",
    "KeyRole",
    "Lease",
    "LeaseInfo",
    "LimitPolicy",
    "MeshEvent",
    "NewIntent",
    "NewKey",
    "OnTimeout",
    "Page",
    "PendingWith",
    "Principal",
    "PrincipalKind",
    "SendMode",
    "SendPolicy",
    "Spend",
    "SpendWindow",
    "StateEntry",
    "StateRecord",
    "Status",
    "Step",
    "Subscription",
    "TaskType",
    "ToolPolicy",
    "TurnUsage",
    "Usage",
    "UsageReport",
    "Wait",
    "WaitKind",
    "WaitSpec",
    "WaitStatus",
    "WaitingReason",
]
