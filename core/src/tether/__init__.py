"""tether: durable execution for AI agents.

An agent submits an intent; the intent waits for a person, a long tool call, another agent or
a time; the agent's process may exit; when the wait resolves, work resumes where it stopped,
with every step on a hash-chained audit trail.

Example::

    import tether

    client = tether.connect()
    intent = client.create_intent("refund.request.v1", "agent://demo/refunds", {"amount": 120})
    lease = client.start(intent.intent_id)
    client.wait_for_human(intent.intent_id, tether.HumanTask(title="Refund 120 EUR?"), lease=lease)
"""

from ._version import __version__
from .client import AsyncClient, Client, connect, connect_async
from .clock import Clock, FrozenClock
from .errors import (
    Conflict,
    CorruptStore,
    Forbidden,
    IdempotencyConflict,
    IllegalTransition,
    IntentTerminal,
    InvalidRequest,
    LeaseLost,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    StoreError,
    TetherError,
    Unauthorized,
    VersionConflict,
    WaitResolved,
    WaitTimeout,
)
from .model import (
    TERMINAL,
    TIMEOUT,
    Agent,
    AgentStatus,
    ApiKey,
    ChainReport,
    Claim,
    ErrorInfo,
    Event,
    HumanTask,
    Intent,
    KeyRole,
    Lease,
    NewIntent,
    OnTimeout,
    Page,
    PendingWith,
    Principal,
    PrincipalKind,
    StateRecord,
    Status,
    Step,
    TaskType,
    Wait,
    WaitingReason,
    WaitKind,
    WaitSpec,
    WaitStatus,
)
from .settings import Settings
from .worker import Suspended, WorkContext, Worker

__all__ = [
    "TERMINAL",
    "TIMEOUT",
    "Agent",
    "AgentStatus",
    "ApiKey",
    "AsyncClient",
    "ChainReport",
    "Claim",
    "Client",
    "Clock",
    "Conflict",
    "CorruptStore",
    "ErrorInfo",
    "Event",
    "Forbidden",
    "FrozenClock",
    "HumanTask",
    "IdempotencyConflict",
    "IllegalTransition",
    "Intent",
    "IntentTerminal",
    "InvalidRequest",
    "KeyRole",
    "Lease",
    "LeaseLost",
    "NewIntent",
    "NotFound",
    "OnTimeout",
    "Page",
    "PayloadTooLarge",
    "PendingWith",
    "Principal",
    "PrincipalKind",
    "RateLimited",
    "Settings",
    "StateRecord",
    "Status",
    "Step",
    "StoreError",
    "Suspended",
    "TaskType",
    "TetherError",
    "Unauthorized",
    "VersionConflict",
    "Wait",
    "WaitKind",
    "WaitResolved",
    "WaitSpec",
    "WaitStatus",
    "WaitTimeout",
    "WaitingReason",
    "WorkContext",
    "Worker",
    "__version__",
    "connect",
    "connect_async",
]
