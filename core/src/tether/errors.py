"""One exception hierarchy, caught by meaning.

Every error carries a stable ``code``, the HTTP ``status`` the server answers with, a
human ``message`` and structured ``details``. The wire shape is
``{"error": {"code", "message", "details"}}`` (see :meth:`TetherError.to_wire`), and the HTTP
client turns that shape back into the same class with :func:`error_from_wire`.

Example::

    try:
        client.respond(intent_id, outcome="approved", actor=alice)
    except tether.Conflict:
        ...  # somebody else resolved the wait first
"""

from __future__ import annotations

from typing import Any, ClassVar


class TetherError(Exception):
    """Base class of every error tether raises on purpose."""

    status: ClassVar[int] = 500
    code: str = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details or {}

    def to_wire(self) -> dict[str, Any]:
        """The error as the one JSON shape the API uses."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidRequest(TetherError):
    """The request is malformed or breaks a rule of the model (400/422)."""

    status = 422
    code = "invalid_request"


class Unauthorized(TetherError):
    """No valid credential was presented (401)."""

    status = 401
    code = "unauthorized"


class Forbidden(TetherError):
    """The principal may not do this (403)."""

    status = 403
    code = "forbidden"


class NotFound(TetherError):
    """The intent, wait, step or state does not exist (or is not visible) (404)."""

    status = 404
    code = "not_found"


class Conflict(TetherError):
    """The request conflicts with the current state (409). Subclasses say how."""

    status = 409
    code = "conflict"


class IllegalTransition(Conflict):
    """The lifecycle forbids this change from the intent's current status."""

    code = "illegal_transition"


class IntentTerminal(IllegalTransition):
    """The intent has ended; a terminal intent never changes again."""

    code = "intent_terminal"


class IdempotencyConflict(Conflict):
    """An idempotency key was reused with a different request body."""

    code = "idempotency_conflict"


class VersionConflict(Conflict):
    """A compare-and-set failed: the stored version is not the one expected."""

    code = "version_conflict"


class StaleGeneration(VersionConflict):
    """An agent's policy or status changed since the generation the caller read (409)."""

    code = "stale_generation"


class WaitResolved(Conflict):
    """The wait was already resolved (or timed out, or was canceled)."""

    code = "wait_resolved"


class LeaseLost(Conflict):
    """The caller's lease on the intent expired or was taken by another worker."""

    code = "lease_lost"


class AgentStopped(Forbidden):
    """The agent may not go on now (403): killed, paused, or held for a person's approval.

    Raised at a boundary (a step, a tool call, a model turn, a claim). The intent is not
    failed: its lease is released and it is claimed again once the agent may work. Workers
    and adapters catch this class to stop quietly.
    """

    code = "agent_stopped"


class AgentKilled(AgentStopped):
    """The agent is killed: new intents to or from it are refused, running ones stop."""

    code = "agent_killed"


class AgentPaused(AgentStopped):
    """The agent is paused: its work is held, not failed, until it is resumed."""

    code = "agent_paused"


class ApprovalPending(AgentStopped):
    """The intent crossed its agent's spend cap and waits for a person to approve going on."""

    code = "spend_approval_pending"


class ToolDenied(Forbidden):
    """The agent's tool scope does not allow this tool (403); the denial is on the audit trail."""

    code = "tool_not_allowed"


class SenderNotAllowed(Forbidden):
    """The receiving agent's send policy does not accept intents from this sender (403)."""

    code = "sender_not_allowed"


class PayloadTooLarge(TetherError):
    """The request body is over the configured limit (413)."""

    status = 413
    code = "payload_too_large"


class RateLimited(TetherError):
    """Too many requests (429); ``retry_after`` says when to try again, in seconds."""

    status = 429
    code = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float = 1.0,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            message, code=code, details={"retry_after": retry_after, **(details or {})}
        )
        self.retry_after = retry_after


class WaitTimeout(TetherError):
    """A client-side wait (``wait_for``) gave up before the intent ended."""

    status = 408
    code = "wait_timeout"


class StoreError(TetherError):
    """The store cannot be used: unreachable, corrupt, or newer than this tether (503)."""

    status = 503
    code = "store_unavailable"


class StoreClosed(StoreError):
    """This process closed the store: nothing more goes through it, and waiting will not
    change that (a client retrying through an outage stops at once). Over HTTP the server
    reports it as ``store_unavailable``, which a client does retry."""


class CorruptStore(StoreError):
    """Stored data failed an integrity check and was not loaded."""

    code = "store_corrupt"


_BY_CODE: dict[str, type[TetherError]] = {}


def _register(cls: type[TetherError]) -> None:
    if "code" in vars(cls):  # a subclass sharing its parent's code is read as the parent
        _BY_CODE[cls.code] = cls
    for sub in cls.__subclasses__():
        _register(sub)


_register(TetherError)

_BY_STATUS: dict[int, type[TetherError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    408: WaitTimeout,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: RateLimited,
    502: StoreError,  # (a proxy before the server: it is away for now, as on a 503)
    503: StoreError,
    504: StoreError,
}


def error_from_wire(status: int, body: Any) -> TetherError:
    """Rebuild the exception a server raised from its status and error body."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return _BY_STATUS.get(status, TetherError)(f"HTTP {status}: {body!r}")
    code = str(err.get("code", ""))
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status, TetherError)
    details = err.get("details") or {}
    message = str(err.get("message", ""))
    if cls is RateLimited:
        return RateLimited(
            message,
            retry_after=float(details.get("retry_after", 1.0)),
            code=code or None,
            details=details,
        )
    return cls(message, code=code or None, details=details)
