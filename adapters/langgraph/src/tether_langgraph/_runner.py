"""Graph runs as tether intents: submitted, run until they end or wait, resumed by a worker.

One run is one intent, addressed to the graph's agent. Running it (:meth:`DurableGraph.run`,
or a :class:`tether.Worker` from :meth:`DurableGraph.worker`) claims it with a lease and
invokes the graph with ``durability="sync"``. When the graph stops on an interrupt, the
runner opens the tether wait that the node described (or a generic human task for an
interrupt of other code) and suspends; the process may exit. When the wait is answered, the
intent comes back to the agent's worker, which resumes the graph with
``Command(resume={interrupt_id: answer})`` from the checkpoint, in whatever process claims it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.types import Command, Durability, GraphOutput, Interrupt, Send, StateSnapshot
from tether import (
    AgentStopped,
    AsyncClient,
    Claim,
    Client,
    ErrorInfo,
    HumanTask,
    Intent,
    IntentTerminal,
    LeaseHeartbeat,
    LeaseLost,
    Status,
    Suspended,
    TaskType,
    TetherError,
    Wait,
    WaitKind,
    WorkContext,
    Worker,
)

from ._binding import CONFIG_KEY, RUN_METADATA_KEY, RunBinding
from ._boundaries import BoundaryCallbacks
from ._values import pack_input, to_json, unpack_input
from ._waits import RECHECK, Decision, WaitRequest, wait_of

logger = logging.getLogger("tether_langgraph")

RUN_INTENT_TYPE = "langgraph.run.v1"
_NOT_STARTED = (Status.SUBMITTED, Status.DELIVERED, Status.ACKNOWLEDGED)
_MAX_RECHECKS = 3
_INTERRUPT_WRITES = "__interrupt__"
"""The channel of a task's interrupts in a checkpoint's pending writes (as stored)."""
_BRANCH_TO = "branch:to:"
"""The channel that triggers a node (``branch:to:<node>``), set until the node has run."""
_SENDS = "__pregel_tasks"
"""The channel of ``Send`` packets not yet run (each names its node)."""
_UNFINISHED = (_INTERRUPT_WRITES, "__resume__", "__error__", "__error_source_node__")
"""The writes of a task that has not finished (any other write says it has)."""
_NOT_A_FAILURE = (LeaseLost, AgentStopped, IntentTerminal)
"""Errors that end an attempt without failing the run: another worker has it, its agent is
killed or paused (or it waits for a spend approval), or it was canceled meanwhile."""


@dataclass(frozen=True)
class RunResult:
    """Where a run stands after this process ran it: ``completed`` with its ``output``, or
    ``waiting`` on ``wait`` (the process may exit; a worker resumes it)."""

    intent_id: str
    thread_id: str
    status: Literal["completed", "waiting"]
    output: Any = None
    wait: Wait | None = None


class GraphChanged(IntentTerminal):
    """The run waits in (or, its process having ended between nodes, was about to run) a
    node that the graph no longer has: a release renamed or removed it (or changed what leads
    to it) after the run stopped there, so the run cannot go on there. The run's intent has
    been failed with the error code ``graph_changed`` (its details name the ``nodes`` and
    ``waits``) rather than ended without the node."""

    code = "graph_changed"


@dataclass(frozen=True)
class _Finished:
    output: Any


def default_interrupt_task(item: Interrupt) -> HumanTask:
    """The human task for an ``interrupt()`` made by other code than tether's helpers: the
    interrupt's value is the question; the answer resumes it as a decision dict
    (``{"outcome", "comment", "data", "decided_by"}``)."""
    value = item.value
    title = value if isinstance(value, str) and value.strip() else "A graph run asks for input"
    return HumanTask(
        title=title[:255],
        description=None if isinstance(value, str) else repr(value)[:2000],
        task_type=TaskType.CLARIFICATION,
        allowed_outcomes=["answered", "rejected"],
    )


class _Attempt:
    """One claim of a run: decides what to feed the graph, and what to do when it stops."""

    def __init__(self, durable: DurableGraph, ctx: WorkContext) -> None:
        self.durable = durable
        self.ctx = ctx
        self.intent: Intent = ctx.intent
        self.thread_id = str(self.intent.payload.get("thread_id") or self.intent.intent_id)
        self.binding = RunBinding(
            client=durable.client,
            intent_id=self.intent.intent_id,
            agent=durable.agent,
            lease=lambda: ctx.lease,
            price=durable.price,
            guard=durable.client.guard(durable.agent),
        )
        self.config: RunnableConfig = {
            "configurable": {"thread_id": self.thread_id, CONFIG_KEY: self.binding},
            "metadata": {RUN_METADATA_KEY: self.intent.intent_id},
            "callbacks": [BoundaryCallbacks(self.binding)],
        }
        self.rechecks = 0

    def first_input(self, snapshot: StateSnapshot) -> Any:
        """The input of this attempt: the run's input if the thread has nothing of this
        run yet; otherwise resume where the last attempt stopped."""
        metadata = snapshot.metadata or {}
        if metadata.get(RUN_METADATA_KEY) != self.intent.intent_id:
            return unpack_input(self.intent.payload)
        self._check_graph(snapshot)
        if snapshot.interrupts:
            return self._answer(snapshot.interrupts)
        if snapshot.next:
            return None  # the last attempt died mid-run: continue from the last checkpoint
        return _Finished(self.durable.output(snapshot.values))

    def _check_graph(self, snapshot: StateSnapshot) -> None:
        """Fail the run (:class:`GraphChanged`) if it stopped on an interrupt of a task that
        this graph does not have, or between nodes before one this graph does not have:
        LangGraph would drop the interrupt (or the node's trigger) and, with no task left,
        end the run as if the node had run.

        An interrupt is lost when its task has not finished (it wrote nothing but its
        interrupt, resume values or errors), is not a task of this graph, and the interrupt
        is not seen through another task either (a ``@task`` of the functional API
        interrupts through its entrypoint's task)."""
        saved = self.durable.saver.get_tuple(snapshot.config)
        writes = (saved.pending_writes if saved else None) or []
        finished = {task_id for task_id, channel, _ in writes if channel not in _UNFINISHED}
        known = {task.id for task in snapshot.tasks} | finished
        shown = {item.id for item in snapshot.interrupts}
        lost: dict[str, tuple[str, Interrupt]] = {}
        for task_id, channel, value in writes:
            if channel == _INTERRUPT_WRITES and task_id not in known:
                for item in value:
                    if isinstance(item, Interrupt) and item.id not in shown:
                        lost.setdefault(item.id, (task_id, item))
        if lost:
            nodes = sorted({n for t, item in lost.values() if (n := _node_of(t, item))})
            waits = [self._request(item).key for _, item in lost.values()]
            where = f"in node {', '.join(map(repr, nodes))}" if nodes else "in a node"
            self._fail_changed(GraphChanged(
                f"the run waits {where} (wait {', '.join(waits)}), which this graph does not "
                "have: renamed or removed since the run stopped there, so its answer cannot "
                f"be given to it. The graph's nodes: {', '.join(_nodes(self.durable.graph))}.",
                details={"nodes": nodes, "waits": waits},
            ))  # fmt: skip
        stranded = _stranded(saved.checkpoint["channel_values"] if saved else {},
                             self.durable.graph)  # fmt: skip
        if stranded:
            names = ", ".join(map(repr, stranded))
            self._fail_changed(GraphChanged(
                f"the run stopped before node {names}, which this graph does not have: "
                "renamed or removed since the run stopped (its process ended between nodes), "
                "so it cannot go on there. The graph's nodes: "
                f"{', '.join(_nodes(self.durable.graph))}.",
                details={"nodes": stranded, "waits": []},
            ))  # fmt: skip

    def _fail_changed(self, error: GraphChanged) -> None:
        self.durable.client.fail(
            self.intent.intent_id,
            ErrorInfo(code=error.code, message=error.message[:2000], details=error.details),
            lease=self.ctx.lease,
        )
        raise error

    def next_input(self, out: GraphOutput[Any]) -> Any:
        if not out.interrupts:
            return _Finished(self.durable.output(out.value))
        return self._answer(out.interrupts)

    def _request(self, item: Interrupt) -> WaitRequest:
        found = WaitRequest.of(item)
        if found is not None:
            return found
        return WaitRequest(
            "human", f"lg/interrupt/{item.id}", task=self.durable.interrupt_task(item)
        )

    def _answer(self, interrupts: tuple[Interrupt, ...]) -> Any:
        """Resume every interrupt whose wait has been answered; if none has, open the wait
        of the first and suspend."""
        answers: dict[str, Any] = {}
        requests = [self._request(item) for item in interrupts]
        for item, request in zip(interrupts, requests, strict=True):
            wait = wait_of(self.binding, request)
            if wait is not None and not wait.is_open:
                answers[item.id] = request.answer(wait)
        if answers:
            return Command(resume=answers)
        item, request = interrupts[0], requests[0]
        if request.kind == "tool" and request.key not in self.binding.starters:
            # The node that knows how to start the tool ran in a process that is gone: run
            # it again so that it says so, then open the wait.
            self.rechecks += 1
            if self.rechecks > _MAX_RECHECKS:
                raise RuntimeError(f"the node waiting on {request.key} does not resume")
            return Command(resume={item.id: RECHECK})
        raise Suspended(self._open(request))

    def _open(self, request: WaitRequest) -> Wait:
        client = self.durable.client
        existing = wait_of(self.binding, request)
        if existing is not None:
            return existing
        try:
            wait = request.open(client, self.intent.intent_id, self.ctx.lease)
        except TetherError:
            current = client.get_intent(self.intent.intent_id)
            if current.status is Status.WAITING and current.wait is not None:
                return current.wait  # already waiting on something else (a policy, say)
            raise
        if wait.kind is WaitKind.TOOL and wait.callback_token is not None:
            self.binding.starters[request.key](wait.callback_token)
        return wait


class DurableGraph:
    """A compiled graph whose runs are tether intents that survive their process.

    Example::

        durable = DurableGraph(graph, tether.connect(), agent="agent://shop/refunds")
        run = durable.start({"order": 42, "amount": 500})
        run.status                  # "waiting": a person was asked; this process may exit

        # any process, any time later:
        durable.worker().run()      # resumes runs whose wait was answered, to the end

    Args:
        graph: the compiled graph; it needs a checkpointer every worker reaches (use
            :class:`tether_langgraph.TetherSaver`).
        client: a tether client (in-process or HTTP).
        agent: the agent address runs are sent to, and workers claim for.
        intent_type: the intent type of runs.
        durability: LangGraph's durability mode; ``"sync"`` so that no finished step is lost.
        output: turns the final state into the intent's JSON result (default: a plain JSON
            rendering of the state).
        interrupt_task: the human task for an ``interrupt()`` of other code than tether's
            helpers (default: :func:`default_interrupt_task`).
        lease_seconds: the lease on a running run, renewed by heartbeats while it runs.
        run_async: invoke the graph with ``ainvoke`` (for graphs with async nodes).
    """

    def __init__(
        self,
        graph: Pregel[Any, Any, Any, Any],
        client: Client | AsyncClient,
        *,
        agent: str,
        intent_type: str = RUN_INTENT_TYPE,
        durability: Durability = "sync",
        output: Callable[[Any], Any] = to_json,
        interrupt_task: Callable[[Interrupt], HumanTask] = default_interrupt_task,
        lease_seconds: float = 30.0,
        run_async: bool = False,
        price: Callable[[str, int, int], float] | None = None,
    ) -> None:
        if not isinstance(graph.checkpointer, BaseCheckpointSaver):
            raise ValueError(
                "a durable graph needs a checkpointer: compile it with "
                "checkpointer=TetherSaver(client)"
            )
        self.graph = graph
        self.saver: BaseCheckpointSaver[Any] = graph.checkpointer
        self.client = client.sync if isinstance(client, AsyncClient) else client
        self.agent = agent
        self.intent_type = intent_type
        self.durability: Durability = durability
        self.output = output
        self.interrupt_task = interrupt_task
        self.lease_seconds = lease_seconds
        self.run_async = run_async
        self.price = price

    # -- submitting and running here ---------------------------------------------------------

    def submit(
        self,
        input: Any,
        *,
        thread_id: str | None = None,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
    ) -> Intent:
        """Submit a run as an intent for a worker (or :meth:`run`) to run. Its thread is
        ``thread_id`` (reuse one to continue a conversation), by default the intent's id."""
        payload = pack_input(input)
        if thread_id is not None:
            payload["thread_id"] = thread_id
        return self.client.create_intent(
            self.intent_type, self.agent, payload,
            correlation_id=correlation_id, idempotency_key=idempotency_key,
        )  # fmt: skip

    def start(
        self,
        input: Any,
        *,
        thread_id: str | None = None,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
    ) -> RunResult:
        """Submit a run and run it in this process until it ends or waits."""
        intent = self.submit(
            input, thread_id=thread_id, idempotency_key=idempotency_key,
            correlation_id=correlation_id,
        )  # fmt: skip
        return self.run(intent.intent_id)

    def run(self, intent_id: str) -> RunResult:
        """Claim a submitted or resumed run and run it here until it ends or waits.

        A run that ended already is reported as it ended; a failing run fails its intent and
        the error is raised."""
        intent = self.client.get_intent(intent_id)
        if intent.status is Status.COMPLETED:
            return self._result(intent, "completed")
        if intent.status is Status.WAITING:
            return self._result(intent, "waiting")
        claim = self.client.claim_intent(intent_id, lease_seconds=self.lease_seconds)
        return self._execute(claim)

    async def astart(self, input: Any, **kwargs: Any) -> RunResult:
        """:meth:`start` from async code (the graph runs in a worker thread)."""
        return await asyncio.to_thread(lambda: self.start(input, **kwargs))

    async def arun(self, intent_id: str) -> RunResult:
        """:meth:`run` from async code (the graph runs in a worker thread)."""
        return await asyncio.to_thread(self.run, intent_id)

    def _result(self, intent: Intent, status: Literal["completed", "waiting"]) -> RunResult:
        return RunResult(intent.intent_id, self._thread(intent), status, intent.result, intent.wait)

    def _execute(self, claim: Claim) -> RunResult:
        client = self.client
        intent_id = claim.intent.intent_id
        ctx = WorkContext(client=client, claim=claim, lease=claim.lease)
        with self._kept_alive(ctx):
            if claim.intent.status in _NOT_STARTED:
                ctx.lease = client.start(intent_id, lease=claim.lease)
            try:
                output = self.handle(ctx)
            except Suspended as suspended:
                thread_id = self._thread(claim.intent)
                return RunResult(intent_id, thread_id, "waiting", None, suspended.wait)
            except BaseException as exc:
                if isinstance(exc, Exception) and not isinstance(exc, _NOT_A_FAILURE):
                    client.fail(intent_id, _error(exc), lease=ctx.lease)
                raise
            client.complete(intent_id, output, lease=ctx.lease)
        return RunResult(intent_id, self._thread(claim.intent), "completed", output)

    @staticmethod
    def _thread(intent: Intent) -> str:
        return str(intent.payload.get("thread_id") or intent.intent_id)

    def _kept_alive(self, ctx: WorkContext) -> LeaseHeartbeat:
        """Renew the lease while the graph runs (as :class:`tether.Worker` does)."""
        return LeaseHeartbeat(self.client, ctx.lease, self.lease_seconds,
                              on_renew=lambda lease: setattr(ctx, "lease", lease))  # fmt: skip

    # -- the handler, for a worker -----------------------------------------------------------

    def worker(self, **kwargs: Any) -> Worker:
        """A :class:`tether.Worker` for the graph's agent that runs and resumes its runs.

        ``kwargs`` go to ``Worker`` (``poll_seconds``, ``owner``, ...). Example::

            durable.worker(poll_seconds=0.5).run()      # until stopped
        """
        kwargs.setdefault("lease_seconds", self.lease_seconds)
        worker = Worker(self.client, agent=self.agent, **kwargs)
        worker.handler(self.intent_type)(self.handle)
        return worker

    def handle(self, ctx: WorkContext) -> Any:
        """Run or resume the claimed run of ``ctx`` until the graph ends (its output is
        returned) or waits (:class:`tether.Suspended` is raised)."""
        if self.run_async:
            return asyncio.run(self.ahandle(ctx))
        attempt = _Attempt(self, ctx)
        step = attempt.first_input(self.graph.get_state(attempt.config))
        while not isinstance(step, _Finished):
            out = self.graph.invoke(step, attempt.config, durability=self.durability, version="v2")
            step = attempt.next_input(out)
        return step.output

    async def ahandle(self, ctx: WorkContext) -> Any:
        """:meth:`handle` with ``ainvoke``, for graphs with async nodes."""
        attempt = _Attempt(self, ctx)
        snapshot = await self.graph.aget_state(attempt.config)
        step = await asyncio.to_thread(attempt.first_input, snapshot)
        while not isinstance(step, _Finished):
            out = await self.graph.ainvoke(
                step, attempt.config, durability=self.durability, version="v2"
            )
            step = await asyncio.to_thread(attempt.next_input, out)
        return step.output

    # -- answering ---------------------------------------------------------------------------

    def decision(self, intent_id: str) -> Decision | None:
        """The answer of the run's last closed human wait, if any (for reporting)."""
        closed = [
            w for w in self.client.list_waits(intent_id)
            if w.kind is WaitKind.HUMAN and not w.is_open
        ]  # fmt: skip
        return Decision.from_wait(closed[-1]) if closed else None


def _node_of(task_id: str, item: Interrupt) -> str | None:
    """The node of a task from the key of its wait: ``lg/=<node>:<task id>/...`` (see
    :func:`tether_langgraph._binding.scoped_key`), when the key shows it."""
    request = WaitRequest.of(item)
    segment = request.key.split("/")[1] if request and request.key.count("/") > 1 else ""
    suffix = f":{task_id}"
    if segment.startswith("=") and segment.endswith(suffix):
        return segment[1 : -len(suffix)]
    return None


def _stranded(values: dict[str, Any], graph: Pregel[Any, Any, Any, Any]) -> list[str]:
    """Nodes a checkpoint was about to run that ``graph`` does not have: LangGraph would
    ignore their triggers and, with nothing left to run, end the run as if they had run."""
    wanted = {key[len(_BRANCH_TO) :] for key in values if key.startswith(_BRANCH_TO)}
    sends = values.get(_SENDS)
    wanted |= {p.node for p in sends if isinstance(p, Send)} if isinstance(sends, list) else set()
    return sorted(wanted - set(graph.nodes))


def _nodes(graph: Pregel[Any, Any, Any, Any]) -> list[str]:
    return sorted(name for name in graph.nodes if not name.startswith("__"))


def _error(exc: BaseException) -> ErrorInfo:
    return ErrorInfo(code="graph_error", message=f"{type(exc).__name__}: {exc}"[:2000])
