"""Waiting inside a node: for a person (:func:`wait_for_human`) or a long tool call
(:func:`wait_for_tool`), through LangGraph's ``interrupt()``.

A node only *describes* its wait: the description travels in the interrupt's value, and the
runner (:class:`tether_langgraph.DurableGraph`) opens the tether wait once the graph has
stopped, keyed by the task and the wait's name. A node re-runs from its start on resume;
here it finds its wait already answered and returns the answer without interrupting again,
so however often it re-runs there is one intent (the run) and one wait.

Outside a tether run the same call is a plain ``interrupt()``: resume it with
``Command(resume=...)`` carrying an outcome (``"approved"``, or a dict like
``{"outcome": "rejected", "comment": "..."}``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.types import Interrupt, interrupt
from tether import TIMEOUT, Client, HumanTask, Lease, OnTimeout, Wait, WaitKind

from ._binding import RunBinding, binding_of, current_config, scoped_key, unscoped_from_call

ENVELOPE = "tether"
"""The key of an interrupt value that carries a tether wait request."""

RECHECK = {"tether": "recheck"}
"""The resume value the runner sends to make a waiting node run again and look."""


@dataclass(frozen=True)
class Decision:
    """How a person answered (or did not): branch on :attr:`approved`, :attr:`rejected`
    and :attr:`timed_out`, which are never true together."""

    outcome: str
    comment: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    decided_by: str | None = None
    automatic: bool = False
    """True when no person was asked (the ``when`` condition of the decorator was false)."""

    @property
    def approved(self) -> bool:
        return self.outcome == "approved"

    @property
    def rejected(self) -> bool:
        return self.outcome == "rejected"

    @property
    def timed_out(self) -> bool:
        """The wait's deadline passed before anyone answered (never a rejection)."""
        return self.outcome == TIMEOUT

    @classmethod
    def from_wait(cls, wait: Wait) -> Decision:
        data = wait.result if isinstance(wait.result, dict) else {}
        return cls(wait.outcome or TIMEOUT, wait.comment, dict(data), wait.resolved_by)

    @classmethod
    def from_value(cls, value: Any) -> Decision:
        """A resume value given by hand: an outcome, or a dict with one."""
        if isinstance(value, Decision):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, dict) and isinstance(value.get("outcome"), str):
            return cls(
                value["outcome"],
                value.get("comment"),
                dict(value.get("data") or {}),
                value.get("decided_by"),
            )
        raise ValueError(f"cannot read a decision from the resume value {value!r}")

    def to_value(self) -> dict[str, Any]:
        """The decision as a resume value (what :meth:`from_value` reads)."""
        return {
            "outcome": self.outcome,
            "comment": self.comment,
            "data": self.data,
            "decided_by": self.decided_by,
        }


@dataclass(frozen=True)
class ToolResult:
    """How a long tool call ended: :attr:`ok` with its :attr:`result`, :attr:`failed` with
    its :attr:`error`, or :attr:`timed_out`."""

    outcome: str
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "completed"

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    @property
    def timed_out(self) -> bool:
        return self.outcome == TIMEOUT

    @classmethod
    def from_wait(cls, wait: Wait) -> ToolResult:
        outcome = wait.outcome or TIMEOUT
        if outcome == "failed" and isinstance(wait.result, dict):
            return cls(outcome, None, str(wait.result.get("error")))
        return cls(outcome, wait.result)

    @classmethod
    def from_value(cls, value: Any) -> ToolResult:
        if isinstance(value, ToolResult):
            return value
        if isinstance(value, dict) and isinstance(value.get("outcome"), str):
            return cls(value["outcome"], value.get("result"), value.get("error"))
        return cls("completed", value)

    def to_value(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "result": self.result, "error": self.error}


@dataclass(frozen=True)
class WaitRequest:
    """A wait as a node asks for it; carried in the interrupt value until the runner opens
    it. ``key`` is unique to the node's task (see :func:`scoped_key`)."""

    kind: Literal["human", "tool"]
    key: str
    task: HumanTask | None = None
    tool_name: str | None = None
    timeout: float | None = None
    heartbeat_timeout: float | None = None
    on_timeout: OnTimeout | None = None

    def to_value(self) -> dict[str, Any]:
        body: dict[str, Any] = {"v": 1, "kind": self.kind, "key": self.key}
        if self.task is not None:
            body["task"] = self.task.model_dump(mode="json", exclude_defaults=True)
        for name in ("tool_name", "timeout", "heartbeat_timeout"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        if self.on_timeout is not None:
            body["on_timeout"] = self.on_timeout.model_dump(mode="json")
        return {ENVELOPE: body}

    @classmethod
    def of(cls, item: Interrupt) -> WaitRequest | None:
        """The request an interrupt carries, or None for an interrupt of other code."""
        value = item.value
        body = value.get(ENVELOPE) if isinstance(value, dict) else None
        if not isinstance(body, dict) or body.get("kind") not in ("human", "tool"):
            return None
        return cls(
            kind=body["kind"],
            key=body["key"],
            task=HumanTask.model_validate(body["task"]) if "task" in body else None,
            tool_name=body.get("tool_name"),
            timeout=body.get("timeout"),
            heartbeat_timeout=body.get("heartbeat_timeout"),
            on_timeout=OnTimeout.model_validate(body["on_timeout"])
            if "on_timeout" in body
            else None,
        )

    def open(self, client: Client, intent_id: str, lease: Lease | None) -> Wait:
        """Open the wait on the run's intent (idempotent by key)."""
        if self.kind == "human":
            assert self.task is not None
            return client.wait_for_human(
                intent_id, self.task, key=self.key, timeout=self.timeout,
                on_timeout=self.on_timeout, lease=lease,
            )  # fmt: skip
        assert self.tool_name is not None
        return client.wait_for_tool(
            intent_id, self.tool_name, key=self.key, timeout=self.timeout,
            heartbeat_timeout=self.heartbeat_timeout, on_timeout=self.on_timeout, lease=lease,
        )  # fmt: skip

    def answer(self, wait: Wait) -> dict[str, Any]:
        """The resume value for a closed wait of this request."""
        if wait.kind is WaitKind.TOOL:
            return ToolResult.from_wait(wait).to_value()
        return Decision.from_wait(wait).to_value()


def _human_task(task: HumanTask | str) -> HumanTask:
    return task if isinstance(task, HumanTask) else HumanTask(title=task[:255])


def human_request(
    config: RunnableConfig,
    task: HumanTask | str,
    key: str,
    timeout: float | None,
    on_timeout: OnTimeout | None,
) -> WaitRequest:
    return WaitRequest(
        "human", scoped_key(config, "wait", key), task=_human_task(task), timeout=timeout,
        on_timeout=on_timeout,
    )  # fmt: skip


def tool_request(
    config: RunnableConfig,
    tool_name: str,
    key: str | None,
    timeout: float | None,
    heartbeat_timeout: float | None,
    on_timeout: OnTimeout | None,
) -> WaitRequest:
    return WaitRequest(
        "tool", scoped_key(config, "wait", key or tool_name), tool_name=tool_name,
        timeout=timeout, heartbeat_timeout=heartbeat_timeout, on_timeout=on_timeout,
    )  # fmt: skip


def wait_of(binding: RunBinding, request: WaitRequest) -> Wait | None:
    """The run's wait for ``request``: under its key, or, for a wait in a tool call, under the
    key a release before call scoping gave it (a run it parked is answered there), if that
    wait asked the same (the same task, or the same tool): two calls of one step that asked
    different things never share an answer."""
    legacy = unscoped_from_call(request.key)
    if legacy is None:
        return binding.find_wait(request.key)
    waits = {w.key: w for w in binding.client.list_waits(binding.intent_id)}  # (one read)
    old = waits.get(legacy) if request.key not in waits else None
    if old is None:
        return waits.get(request.key)
    if old.kind.value != request.kind:
        return None
    if request.kind == "human":
        asked = old.human_task
        same = asked is not None and request.task is not None and asked.title == request.task.title
    else:
        same = old.tool_name == request.tool_name
    return old if same else None


def await_request(request: WaitRequest, binding: RunBinding | None) -> Wait | Any:
    """The closed wait for ``request`` (in a run), or the resume value (outside one).

    Interrupts the graph while there is no answer yet: the first time, and again if resumed
    before the wait closed (a resume value alone never answers a wait of a run).
    """
    if binding is None:
        return interrupt(request.to_value())
    while True:
        wait = wait_of(binding, request)
        if wait is not None and not wait.is_open:
            return wait
        interrupt(request.to_value())


async def aawait_request(request: WaitRequest, binding: RunBinding | None) -> Wait | Any:
    """:func:`await_request` for async nodes: tether is read in a worker thread."""
    if binding is None:
        return interrupt(request.to_value())
    while True:
        wait = await asyncio.to_thread(wait_of, binding, request)
        if wait is not None and not wait.is_open:
            return wait
        interrupt(request.to_value())


def decision_of(found: Wait | Any) -> Decision:
    return Decision.from_wait(found) if isinstance(found, Wait) else Decision.from_value(found)


def tool_result_of(found: Wait | Any) -> ToolResult:
    return ToolResult.from_wait(found) if isinstance(found, Wait) else ToolResult.from_value(found)


def wait_for_human(
    task: HumanTask | str,
    *,
    key: str = "human",
    timeout: float | None = None,
    on_timeout: OnTimeout | None = None,
) -> Decision:
    """Ask a person and suspend the graph until they answer; returns their :class:`Decision`.

    Call it inside a node. ``key`` names the wait within the node: pass a different one for
    each wait when a node waits more than once. ``timeout`` (seconds) ends the wait with
    :attr:`Decision.timed_out` unless ``on_timeout`` says otherwise.

    Example::

        def refund(state: State) -> dict:
            decision = wait_for_human(HumanTask(title=f"Refund {state['amount']} EUR?"))
            if not decision.approved:
                return {"status": decision.outcome}
            return {"status": "refunded", "receipt": psp.refund(state["amount"])}
    """
    config = current_config()
    request = human_request(config, task, key, timeout, on_timeout)
    return decision_of(await_request(request, binding_of(config)))


async def await_human(
    task: HumanTask | str,
    *,
    key: str = "human",
    timeout: float | None = None,
    on_timeout: OnTimeout | None = None,
) -> Decision:
    """:func:`wait_for_human` for async nodes."""
    config = current_config()
    request = human_request(config, task, key, timeout, on_timeout)
    return decision_of(await aawait_request(request, binding_of(config)))


def wait_for_tool(
    tool_name: str,
    start: Callable[[str], None],
    *,
    key: str | None = None,
    timeout: float | None = None,
    heartbeat_timeout: float | None = None,
    on_timeout: OnTimeout | None = None,
) -> ToolResult:
    """Start a long external call and suspend the graph until it posts its result.

    ``start(token)`` is called once, after tether opened the wait: hand the token to the
    tool, which posts its result with ``client.complete_tool(token, result)`` (or over
    HTTP) and may send heartbeats (``heartbeat_timeout``). Outside a tether run nothing opens
    the wait, so ``start`` is not called: resume with ``Command(resume=...)``.

    Example::

        def read_invoice(state: State) -> dict:
            ocr = wait_for_tool("ocr", lambda token: ocr_service.submit(state["pdf"], token))
            return {"text": ocr.result} if ocr.ok else {"error": ocr.error or ocr.outcome}
    """
    config = current_config()
    binding = binding_of(config)
    request = tool_request(config, tool_name, key, timeout, heartbeat_timeout, on_timeout)
    if binding is not None:
        binding.register_starter(request.key, start)
    return tool_result_of(await_request(request, binding))


async def await_tool(
    tool_name: str,
    start: Callable[[str], None],
    *,
    key: str | None = None,
    timeout: float | None = None,
    heartbeat_timeout: float | None = None,
    on_timeout: OnTimeout | None = None,
) -> ToolResult:
    """:func:`wait_for_tool` for async nodes."""
    config = current_config()
    binding = binding_of(config)
    request = tool_request(config, tool_name, key, timeout, heartbeat_timeout, on_timeout)
    if binding is not None:
        binding.register_starter(request.key, start)
    return tool_result_of(await aawait_request(request, binding))
