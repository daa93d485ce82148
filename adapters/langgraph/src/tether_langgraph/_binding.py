"""What a node sees of tether while a graph runs as a tether intent.

:class:`tether_langgraph.DurableGraph` puts a :class:`RunBinding` into the run's config
(``configurable["tether"]``); LangGraph passes configurable values down to every node,
subgraph and tool, and ``langgraph.config.get_config()`` finds them. Outside such a run there
is no binding, and the helpers fall back to plain LangGraph behaviour.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from tether import AgentGuard, Client, Lease, Wait

from . import _layout

CONFIG_KEY = "tether"
"""The ``configurable`` key that holds the run's binding."""

RUN_METADATA_KEY = "tether_intent_id"
"""The checkpoint metadata key that names the intent whose run wrote the checkpoint."""


@dataclass
class RunBinding:
    """The run's intent and how to act on it: the client, and the current lease."""

    client: Client
    intent_id: str
    agent: str
    lease: Callable[[], Lease | None]
    """The lease as it is now (heartbeats renew it while the graph runs)."""
    starters: dict[str, Callable[[str], None]] = field(default_factory=dict)
    """Tool waits' start functions, by wait key, registered by the node that waits: the
    runner opens the wait after the graph stops, then starts the tool with its token."""
    price: Callable[[str, int, int], float] | None = None
    """A model turn's cost in USD from the model's name and its tokens in and out."""
    guard: AgentGuard | None = None
    """The agent's live view in this process: a boundary asks the store only when it says
    the agent is stopped or the tool out of scope (the store then decides and records it)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def find_wait(self, key: str) -> Wait | None:
        """The run's wait under ``key``, if it was ever opened."""
        for wait in self.client.list_waits(self.intent_id):
            if wait.key == key:
                return wait
        return None

    def register_starter(self, key: str, start: Callable[[str], None]) -> None:
        with self._lock:
            self.starters[key] = start


def binding_of(config: RunnableConfig | None = None) -> RunBinding | None:
    """The binding of the run ``config`` belongs to (default: the current node's config)."""
    conf = (config if config is not None else get_config()).get("configurable", {})
    found = conf.get(CONFIG_KEY)
    return found if isinstance(found, RunBinding) else None


_TOOL_CALL: ContextVar[str | None] = ContextVar("tether_langgraph_tool_call", default=None)
"""The id of the tool call whose body is running (set by the journaled ``ToolNode``)."""

CALL_SEGMENT = "/call/"
"""What a key scoped to a tool call holds after its task: ``lg/<task>/call/<id>/...``."""


@contextmanager
def in_tool_call(call_id: str | None) -> Iterator[None]:
    """Scope the waits and steps a tool's body opens to its call: the calls of one
    ``ToolNode`` step share their task, and each must have waits and steps of its own."""
    token = _TOOL_CALL.set(call_id or None)
    try:
        yield
    finally:
        _TOOL_CALL.reset(token)


def scoped_key(config: RunnableConfig, kind: str, key: str) -> str:
    """A key unique to the running task (node execution), and within a tool call of a
    ``ToolNode`` to that call, and stable when it re-runs.

    LangGraph names each task ``node:task_id`` in ``checkpoint_ns`` (nested for subgraphs);
    the task id is derived from the checkpoint the task started from, so a node that re-runs
    on resume, or after a crash, gets the same key, and a later visit to the node another.
    The calls of one ``ToolNode`` step share their task: a wait or step in a tool's body is
    scoped to its call's id too, or two calls of a tool would share one person's answer.
    """
    task = str(config.get("configurable", {}).get("checkpoint_ns", ""))
    call = _TOOL_CALL.get()
    inner = f"{CALL_SEGMENT}{_layout.part(call)}" if call else ""
    return f"lg/{_layout.part(task)}{inner}/{kind}/{_layout.part(key)}"


def unscoped_from_call(key: str) -> str | None:
    """The key a release before call scoping gave the same wait (its call segment taken
    out), or None for a key that names no call."""
    head, sep, rest = key.partition(CALL_SEGMENT)
    if not sep or "/" not in rest:
        return None
    return f"{head}/{rest.split('/', 1)[1]}"


def current_config() -> RunnableConfig:
    """The running node's config, or a clear error outside a graph."""
    try:
        return get_config()
    except RuntimeError as exc:
        raise RuntimeError(
            "tether_langgraph's wait and journal helpers run inside a LangGraph node"
        ) from exc
