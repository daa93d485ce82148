"""The HTTP transport: the engine's operations, over tether's HTTP API (httpx + tenacity).

Reads, and writes that carry an idempotency key, are retried on connection errors and on
429/502/503/504 (honouring Retry-After); other writes are sent once, so a retry can never
apply a change twice.
"""

from __future__ import annotations

import json as _json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from ..clock import Clock, to_text
from ..errors import (
    InvalidRequest,
    NotFound,
    StoreError,
    TetherError,
    WaitTimeout,
    error_from_wire,
)
from ..model import (
    Agent,
    AgentPolicy,
    AgentStatus,
    ApiKey,
    ChainReport,
    Claim,
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
    TurnUsage,
    UsageReport,
    Wait,
    WaitSpec,
)

_RETRY_STATUS = {429, 502, 503, 504}


class _Retryable(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.response = response


def _retry_wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, _Retryable):
        after = exc.response.headers.get("retry-after")
        if after is not None:
            try:
                return min(float(after), 30.0)
            except ValueError:
                pass
    return (wait_exponential(multiplier=0.1, max=5.0) + wait_random(0, 0.1))(state)


def _policy(response: httpx.Response) -> bool:
    """A 429 from an agent's policy (its intent limit or spend cap) is an answer, not a
    transient overload: retrying within seconds would only be refused again."""
    if response.status_code != 429:
        return False
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return code in ("intent_limit_exceeded", "spend_cap_exceeded")


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, _Retryable | httpx.TransportError)


def _refused(exc: BaseException) -> bool:
    """A call that did not reach the server's handling (a rate limit's 429 is all a call
    without an idempotency key is made again for)."""
    return isinstance(exc, _Retryable)


def _q(value: str) -> str:
    """An id as one path segment: quoted, so that no id can reach another route (``/``,
    ``..``, ``?`` and ``#`` are data here); an empty id names nothing."""
    if not value:
        raise NotFound("no such item: the id is empty")
    return quote(value, safe="")


def _segments(path: str) -> str:
    """An agent address's ``workspace/name`` as path segments, each quoted."""
    return "/".join(_q(part) for part in path.split("/"))


def _lease(token: str | None) -> dict[str, str]:
    return {"X-Lease-Token": token} if token else {}


def _dump(model: BaseModel) -> dict[str, Any]:
    """A model as JSON data; a value JSON cannot hold is the caller's error."""
    try:
        return model.model_dump(mode="json", exclude_none=True)
    except PydanticSerializationError as exc:
        raise InvalidRequest(f"value is not JSON-serializable: {exc}") from exc


class HttpBackend:
    """Talks to ``tether serve``; the same operations as :class:`tether.engine.Engine`."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"x-api-key": api_key} if api_key else {}
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.clock = clock or Clock()
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        self._retries = retries

    def close(self) -> None:
        self._http.close()

    # -- plumbing ----------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        retry_it: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        def once() -> httpx.Response:
            try:
                content = _json.dumps(json, allow_nan=False).encode() if json is not None else None
            except (TypeError, ValueError) as exc:
                raise InvalidRequest(f"value is not JSON-serializable: {exc}") from exc
            response = self._http.request(
                method, path, content=content, params=params,
                headers={**(headers or {}), "content-type": "application/json"},
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )  # fmt: skip
            if (
                response.status_code in _RETRY_STATUS
                and (retry_it or response.status_code == 429)
                and not _policy(response)
            ):
                raise _Retryable(response)
            return response

        def again(retryable: Callable[[BaseException], bool]) -> httpx.Response:
            runner = retry(
                retry=retry_if_exception(retryable),
                stop=stop_after_attempt(self._retries + 1),
                wait=_retry_wait,
                reraise=True,
            )(once)
            try:
                return runner()
            except _Retryable as exc:
                return exc.response

        try:
            if retry_it:
                response = again(_is_retryable)
            else:
                try:
                    response = once()
                except _Retryable:
                    # Any call is made again after a rate limit's 429: it was refused before
                    # anything was done. (No other failure: a write may have been applied.)
                    response = again(_refused)
        except httpx.TransportError as exc:  # one error class for "the server is not there"
            raise StoreError(
                f"cannot reach {self.url}: {type(exc).__name__}: {exc}", code="server_unreachable"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = {"error": {"code": "bad_response", "message": response.text[:500]}}
        if response.status_code >= 400:
            raise error_from_wire(response.status_code, body)
        if not isinstance(body, dict):
            raise TetherError(f"unexpected response from {path}: {body!r}"[:500])
        return body

    def _get(
        self, path: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return self._send("GET", path, params=clean, retry_it=True, timeout=timeout)

    def _post(
        self, path: str, body: Any = None, *, lease: str | None = None, idem: str | None = None
    ) -> dict[str, Any]:
        headers = _lease(lease)
        if idem is not None:
            headers["Idempotency-Key"] = idem
        return self._send(
            "POST",
            path,
            json=body if body is not None else {},
            headers=headers,
            retry_it=idem is not None,
        )

    def _delete(self, path: str, params: dict[str, Any], lease_token: str | None) -> int:
        # Sent once, as other writes: a retry after a lost answer could delete a key that
        # was written again meanwhile.
        out = self._send("DELETE", path, params=params, headers=_lease(lease_token))
        return int(out["deleted"])

    # -- intents -----------------------------------------------------------------------------

    def create_intent(
        self, req: NewIntent, *, idempotency_key: str | None = None, actor: Principal | None = None
    ) -> Intent:
        body = _dump(req)
        body.setdefault("correlation_id", str(uuid.uuid4()))
        if req.correlation_id is None and idempotency_key is not None:
            # a retried create must send the same body: derive the id from the key
            body["correlation_id"] = str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"tether:{idempotency_key}")
            )
        return Intent.from_wire(self._post("/v1/intents", body, idem=idempotency_key)["intent"])

    def get_intent(self, intent_id: str, *, actor: Principal | None = None) -> Intent:
        return Intent.from_wire(self._get(f"/v1/intents/{_q(intent_id)}")["intent"])

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
        data = self._get(
            "/v1/intents",
            {
                "status": [s.value for s in status] if status else None,
                "to_agent": to_agent, "from_agent": from_agent, "intent_type": intent_type,
                "correlation_id": correlation_id, "parent_intent_id": parent_intent_id,
                "cursor": cursor, "limit": limit,
            },
        )  # fmt: skip
        return Page[Intent](
            items=[Intent.from_wire(i) for i in data["intents"]],
            next_cursor=data.get("next_cursor"),
        )

    def list_events(
        self, intent_id: str, *, since: int = 0, limit: int = 1000, actor: Principal | None = None
    ) -> list[Event]:
        data = self._get(f"/v1/intents/{_q(intent_id)}/events", {"since": since, "limit": limit})
        return [Event.model_validate(e) for e in data["events"]]

    def acknowledge(
        self, intent_id: str, *, lease_token: str | None = None, actor: Principal | None = None
    ) -> Intent:
        return Intent.from_wire(
            self._post(f"/v1/intents/{_q(intent_id)}/acknowledge", lease=lease_token)["intent"]
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
        body = {"owner": owner, "lease_seconds": lease_seconds, "lease_token": lease_token}
        return Lease.model_validate(self._post(f"/v1/intents/{_q(intent_id)}/start", body)["lease"])

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
        body: dict[str, Any] = {"status": status.value, "result": result}
        if error is not None:
            body["error"] = error.model_dump(mode="json")
        if reason is not None:
            body["reason"] = reason
        return Intent.from_wire(
            self._post(f"/v1/intents/{_q(intent_id)}/resolve", body, lease=lease_token)["intent"]
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
        data = self._post(f"/v1/intents/{_q(intent_id)}/waits", _dump(spec), lease=lease_token)
        return Wait.model_validate(data["wait"])

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
        body: dict[str, Any] = {
            "child": _dump(child),
            "key": key,
        }
        if spec is not None:
            body["deadline_at"] = to_text(spec.deadline_at) if spec.deadline_at else None
            body["on_timeout"] = spec.on_timeout.model_dump(mode="json")
        data = self._post(f"/v1/intents/{_q(intent_id)}/children", body, lease=lease_token)
        return Intent.from_wire(data["intent"]), Wait.model_validate(data["wait"])

    def get_wait(self, wait_id: str, *, actor: Principal | None = None) -> Wait:
        return Wait.model_validate(self._get(f"/v1/waits/{_q(wait_id)}")["wait"])

    def list_waits(self, intent_id: str, *, actor: Principal | None = None) -> list[Wait]:
        return [
            Wait.model_validate(w) for w in self._get(f"/v1/intents/{_q(intent_id)}/waits")["waits"]
        ]

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
        body = {"outcome": outcome, "comment": comment, "data": data, "wait_id": wait_id}
        return Intent.from_wire(self._post(f"/v1/intents/{_q(intent_id)}/respond", body)["intent"])

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
        body = {"outcome": outcome, "result": result, "comment": comment, "wait_id": wait_id}
        return Intent.from_wire(
            self._post(f"/v1/intents/{_q(intent_id)}/resume", body, lease=lease_token)["intent"]
        )

    def reply(self, intent_id: str, message: str, *, actor: Principal | None = None) -> Intent:
        self._post(f"/v1/inbox/{_q(intent_id)}/reply", {"message": message})
        return self.get_intent(intent_id)

    def delegate(
        self,
        intent_id: str,
        delegate_to: str,
        *,
        note: str | None = None,
        actor: Principal | None = None,
    ) -> Intent:
        self._post(
            f"/v1/inbox/{_q(intent_id)}/delegate", {"delegate_to": delegate_to, "note": note}
        )
        return self.get_intent(intent_id)

    def complete_tool(
        self,
        token: str,
        *,
        result: Any = None,
        error: str | None = None,
        actor: Principal | None = None,
    ) -> Intent:
        return Intent.from_wire(
            self._post(f"/v1/callbacks/{_q(token)}", {"result": result, "error": error})["intent"]
        )

    def heartbeat_tool(
        self, token: str, *, extend_seconds: float | None = None, actor: Principal | None = None
    ) -> Wait:
        data = self._post(
            f"/v1/callbacks/{_q(token)}/heartbeat", {"extend_seconds": extend_seconds}
        )
        return Wait.model_validate(data["wait"])

    def list_tasks(
        self, *, mine: bool = False, limit: int = 100, actor: Principal | None = None
    ) -> list[Intent]:
        data = self._get("/v1/me/tasks", {"mine": str(mine).lower(), "limit": limit})
        return [Intent.from_wire(t["intent"]) for t in data["tasks"]]

    def fire_due_timers(self, *, limit: int = 500) -> int:
        return int(self._post("/v1/timers/fire")["fired"])

    # -- journal and state -------------------------------------------------------------------

    def get_step(self, intent_id: str, key: str, *, actor: Principal | None = None) -> Step | None:
        step = self._get(f"/v1/intents/{_q(intent_id)}/step", {"key": key})["step"]
        return Step.model_validate(step) if step is not None else None

    def list_steps(self, intent_id: str, *, actor: Principal | None = None) -> list[Step]:
        return [
            Step.model_validate(s) for s in self._get(f"/v1/intents/{_q(intent_id)}/steps")["steps"]
        ]

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
        body: dict[str, Any] = {"key": key, "result": result}
        if usage is not None:
            body["usage"] = usage.model_dump(mode="json")
        data = self._post(f"/v1/intents/{_q(intent_id)}/steps", body, lease=lease_token)
        return Step.model_validate(data["step"])

    def get_state(
        self, intent_id: str, key: str = "default", *, actor: Principal | None = None
    ) -> StateRecord | None:
        state = self._get(f"/v1/intents/{_q(intent_id)}/state", {"key": key})["state"]
        return StateRecord.model_validate(state) if state is not None else None

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
        body = {"key": key, "data": data, "expected_version": expected_version}
        out = self._send(
            "PUT", f"/v1/intents/{_q(intent_id)}/state", json=body, headers=_lease(lease_token)
        )
        return StateRecord.model_validate(out["state"])

    def list_state(
        self,
        intent_id: str,
        *,
        prefix: str = "",
        after: str = "",
        limit: int = 100,
        actor: Principal | None = None,
    ) -> list[StateEntry]:
        params = {"prefix": prefix, "after": after, "limit": limit}
        data = self._get(f"/v1/intents/{_q(intent_id)}/state/keys", params)
        return [StateEntry.model_validate(k) for k in data["keys"]]

    def delete_state(
        self,
        intent_id: str,
        key: str,
        *,
        expected_version: int | None = None,
        lease_token: str | None = None,
        actor: Principal | None = None,
    ) -> bool:
        params: dict[str, Any] = {"key": key}
        if expected_version is not None:
            params["expected_version"] = expected_version
        return bool(self._delete(f"/v1/intents/{_q(intent_id)}/state", params, lease_token))

    def delete_state_prefix(
        self,
        intent_id: str,
        prefix: str,
        *,
        lease_token: str | None = None,
        actor: Principal | None = None,
    ) -> int:
        return self._delete(f"/v1/intents/{_q(intent_id)}/state", {"prefix": prefix}, lease_token)

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
        body = {
            "agent": agent,
            "owner": owner,
            "lease_seconds": lease_seconds,
            "intent_types": intent_types,
            "start": start,
            "journal": journal,
            "wait_seconds": wait,
        }
        found = self._send("POST", "/v1/claims", json=body, timeout=wait + 30.0)["claim"]
        return Claim.model_validate(_claim_json(found)) if found is not None else None

    def agent_feed(
        self,
        agent: str,
        *,
        since: int = 0,
        statuses: list[Status] | None = None,
        limit: int = 100,
        actor: Principal | None = None,
    ) -> list[FeedItem]:
        path = _segments(agent.removeprefix("agent://"))
        status = ",".join(s.value for s in statuses) if statuses else None
        data = self._get(
            f"/v1/agents/{path}/intents", {"since": since, "status": status, "limit": limit}
        )
        return [FeedItem.model_validate(i) for i in data["intents"]]

    def claim_intent(
        self,
        intent_id: str,
        *,
        owner: str,
        lease_seconds: float = 30.0,
        actor: Principal | None = None,
    ) -> Claim:
        found = self._post(
            f"/v1/intents/{_q(intent_id)}/claim", {"owner": owner, "lease_seconds": lease_seconds}
        )
        return Claim.model_validate(_claim_json(found["claim"]))

    def heartbeat_lease(
        self,
        intent_id: str,
        token: str,
        *,
        lease_seconds: float = 30.0,
        actor: Principal | None = None,
    ) -> Lease:
        data = self._post(
            f"/v1/intents/{_q(intent_id)}/lease/heartbeat",
            {"token": token, "lease_seconds": lease_seconds},
        )
        return Lease.model_validate(data["lease"])

    def release_lease(self, intent_id: str, token: str, *, actor: Principal | None = None) -> None:
        self._post(f"/v1/intents/{_q(intent_id)}/lease/release", {"token": token})

    # -- mesh --------------------------------------------------------------------------------

    @staticmethod
    def _agent_path(address: str) -> str:
        return f"/v1/mesh/agents/{_segments(address.removeprefix('agent://'))}"

    def get_agent(self, address: str, *, actor: Principal | None = None) -> Agent:
        return Agent.model_validate(self._get(self._agent_path(address))["agent"])

    def register_agent(self, address: str, *, actor: Principal | None = None) -> Agent:
        return Agent.model_validate(self._post("/v1/mesh/agents", {"address": address})["agent"])

    def list_agents(
        self,
        *,
        status: AgentStatus | None = None,
        health: Health | None = None,
        after: str | None = None,
        limit: int = 100,
        actor: Principal | None = None,
    ) -> list[Agent]:
        params = {"status": status, "health": health, "after": after, "limit": limit}
        data = self._get("/v1/mesh/agents", params)
        return [Agent.model_validate(a) for a in data["agents"]]

    def set_agent_status(
        self,
        address: str,
        status: AgentStatus,
        *,
        reason: str | None = None,
        generation: int | None = None,
        actor: Principal | None = None,
    ) -> Agent:
        verb = {AgentStatus.KILLED: "kill", AgentStatus.PAUSED: "pause"}.get(status, "resume")
        body = {"reason": reason, "generation": generation}
        return Agent.model_validate(
            self._post(f"{self._agent_path(address)}/{verb}", body)["agent"]
        )

    def set_agent_policy(
        self,
        address: str,
        policy: AgentPolicy,
        *,
        generation: int | None = None,
        actor: Principal | None = None,
    ) -> Agent:
        body = {**policy.model_dump(mode="json"), "generation": generation}
        data = self._send("PUT", f"{self._agent_path(address)}/policy", json=body)
        return Agent.model_validate(data["agent"])

    def agent_heartbeat(
        self,
        address: str,
        metrics: dict[str, Any] | None = None,
        *,
        actor: Principal | None = None,
    ) -> Agent:
        data = self._post("/v1/mesh/heartbeat", {"address": address, "metrics": metrics})
        return Agent.model_validate(data["agent"])

    def mesh_events(
        self,
        *,
        agent: str | None = None,
        event_type: str | None = None,
        after: int = 0,
        limit: int = 50,
        actor: Principal | None = None,
    ) -> list[MeshEvent]:
        params = {"agent": agent, "event_type": event_type, "after": after, "limit": limit}
        return [
            MeshEvent.model_validate(ev) for ev in self._get("/v1/mesh/events", params)["events"]
        ]

    def check(
        self,
        intent_id: str,
        *,
        tool: str | None = None,
        lease_token: str | None = None,
        actor: Principal | None = None,
    ) -> None:
        self._post(f"/v1/intents/{_q(intent_id)}/check", {"tool": tool}, lease=lease_token)

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
        body = {"model": model, "tokens_in": tokens_in, "tokens_out": tokens_out,
                "cost_usd": cost_usd}  # fmt: skip
        data = self._post(f"/v1/intents/{_q(intent_id)}/usage", body, lease=lease_token)
        return UsageReport.model_validate(data["usage"])

    def intent_usage(self, intent_id: str, *, actor: Principal | None = None) -> SpendWindow:
        return SpendWindow.model_validate(self._get(f"/v1/intents/{_q(intent_id)}/usage")["usage"])

    def watch_agent(
        self,
        address: str,
        *,
        after_generation: int,
        timeout: float,
        actor: Principal | None = None,
    ) -> Agent:
        window = max(0.0, min(timeout, 60.0))
        data = self._get(
            self._agent_path(address),
            {"after_generation": after_generation, "wait_seconds": window},
            timeout=window + 10.0,
        )
        return Agent.model_validate(data["agent"])

    # -- keys, waiting, audit ----------------------------------------------------------------

    def create_key(
        self,
        role: KeyRole,
        *,
        agent: str | None = None,
        subject: str | None = None,
        groups: list[str] | None = None,
        workspace: str = "default",
    ) -> NewKey:
        body = {
            "role": role.value,
            "agent": agent,
            "subject": subject,
            "groups": groups or [],
            "workspace": workspace,
        }
        data = self._post("/v1/keys", body)
        return NewKey(key=ApiKey.model_validate(data["api_key"]), secret=data["key"])

    def list_keys(self, *, workspace: str | None = None) -> list[ApiKey]:
        return [ApiKey.model_validate(k) for k in self._get("/v1/keys")["keys"]]

    def revoke_key(self, key_id: str) -> None:
        self._send("DELETE", f"/v1/keys/{_q(key_id)}")

    def wait_for_intent(
        self,
        intent_id: str,
        *,
        statuses: frozenset[Status],
        timeout: float | None,
        after_seq: int = 0,
        actor: Principal | None = None,
    ) -> Intent:
        import time

        limit = None if timeout is None else time.monotonic() + timeout
        intent = self.get_intent(intent_id)
        while intent.status not in statuses and not (after_seq and intent.seq > after_seq):
            remaining = 30.0 if limit is None else limit - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(
                    f"intent {intent_id} is still {intent.status.value}",
                    details={
                        "intent_id": intent_id,
                        "status": intent.status.value,
                        "seq": intent.seq,
                    },
                )
            window = max(0.0, min(remaining, 30.0))
            data = self._get(
                f"/v1/intents/{_q(intent_id)}",
                {"wait_seconds": window, "after_seq": intent.seq},
                timeout=window + 10.0,
            )
            intent = Intent.from_wire(data["intent"])
        return intent

    def verify_audit(self, intent_id: str | None = None) -> ChainReport:
        return ChainReport.model_validate(
            self._get("/v1/audit/verify", {"intent_id": intent_id})["report"]
        )


def _claim_json(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    out["intent"] = Intent.from_wire(data["intent"])
    return out


__all__ = ["HttpBackend"]
