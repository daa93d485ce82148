"""What a node sees of tether while a graph runs as a tether intent.

:class:`tether_langgraph.DurableGraph` puts a :class:`RunBinding` into the run's config
(``configurable["tether"]``); LangGraph passes configurable values down to every node,
subgraph and tool, and ``langgraph.config.get_config()`` finds them. Outside such a run there
is no binding, and the helpers fall back to plain LangGraph behaviour.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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


def scoped_key(config: RunnableConfig, kind: str, key: str) -> str:
    """A key unique to the running task (node execution) and stable when it re-runs.

    LangGraph names each task ``node:task_id`` in ``checkpoint_ns`` (nested for subgraphs);
    the task id is derived from the checkpoint the task started from, so a node that re-runs
    on resume, or after a crash, gets the same key, and a later visit to the node another.
    """
    task = str(config.get("configurable", {}).get("checkpoint_ns", ""))
    return f"lg/{_layout.part(task)}/{kind}/{_layout.part(key)}"


def current_config() -> RunnableConfig:
    """The running node's config, or a clear error outside a graph."""
    try:
        return get_config()
    except RuntimeError as exc:
        raise RuntimeError(
            "tether_langgraph's wait and journal helpers run inside a LangGraph node"
        ) from exc
