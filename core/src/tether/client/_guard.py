"""An agent's guard: its status and policy, kept current in this process by a watcher thread.

A kill, pause, resume or policy change bumps the agent's generation; the guard long-polls for
that (over HTTP, or on the store's change notification in-process) and so learns of it within
the propagation bound everywhere in a fleet, even in a process that is in the middle of a long
step. A boundary (the worker's and every adapter's) asks :meth:`AgentGuard.allows` first and
the store (``Client.check``, ``authorize_tool``) only when it says no; a worker stops claiming
while ``guard.stopped``; a long loop may check it between items.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..errors import AgentKilled, AgentPaused, TetherError
from ..model import Agent, AgentStatus, Principal

logger = logging.getLogger("tether.guard")


class _Watcher(Protocol):
    def register_agent(self, address: str, *, actor: Principal | None = None) -> Agent: ...

    def watch_agent(
        self,
        address: str,
        *,
        after_generation: int,
        timeout: float,
        actor: Principal | None = None,
    ) -> Agent: ...


class AgentGuard:
    """Example::

    guard = client.guard("agent://demo/refunds")
    for item in batch:
        guard.raise_if_stopped()   # AgentKilled / AgentPaused, from memory
        handle(item)
    """

    def __init__(
        self,
        backend: _Watcher,
        address: str,
        *,
        poll_seconds: float = 25.0,
        changes: Callable[[], int] | None = None,
    ) -> None:
        self.address = address
        self._backend = backend
        self._poll = poll_seconds
        self._changed = threading.Condition()
        self._callbacks: list[Callable[[Agent], None]] = []
        self._closed = threading.Event()
        self._changes = changes
        """In-process: the store's counter of agent changes, so a boundary right after a
        change committed in this process sees it (the watcher would a moment later)."""
        self._seen = changes() if changes is not None else 0
        self._agent = backend.register_agent(address)
        self._thread = threading.Thread(
            target=self._run, name=f"tether-guard:{address}", daemon=True
        )
        self._thread.start()

    @property
    def agent(self) -> Agent:
        """The agent as last seen (status, policy, generation)."""
        return self._agent

    @property
    def status(self) -> AgentStatus:
        return self._agent.status

    @property
    def stopped(self) -> bool:
        """True while the agent is killed or paused."""
        return self._agent.status is not AgentStatus.ACTIVE

    def raise_if_stopped(self) -> None:
        agent = self._agent
        details = {"agent": agent.address, "reason": agent.status_reason}
        if agent.status is AgentStatus.KILLED:
            raise AgentKilled(f"{agent.address} is killed", details=details)
        if agent.status is AgentStatus.PAUSED:
            raise AgentPaused(f"{agent.address} is paused", details=details)

    def allows(self, tool: str | None = None) -> bool:
        """Whether a boundary may go on without asking the store: the agent is active (and
        ``tool``, if given, in its scope) as last seen. When it says no, ask the store
        (``client.check`` / ``authorize_tool``), which decides and records the refusal.

        In-process it is current: an agent change committed in this process (the counter
        moved since the guard last looked) is read before it answers. Over HTTP a change made
        through the same client is current at once, and one made elsewhere arrives through
        the watcher's long poll."""
        if self._changes is not None and (now := self._changes()) != self._seen:
            agent = self._backend.watch_agent(
                self.address, after_generation=self._agent.generation, timeout=0
            )
            self._seen = now  # read before the agent: a later change moves it again
            self.adopt(agent)
        return not self.stopped and (tool is None or self.tool_allowed(tool))

    def adopt(self, agent: Agent) -> None:
        """Take ``agent`` as the current view if it is newer (what a change made through this
        process returned, or what the watcher read), and tell the callbacks."""
        with self._changed:
            if agent.address != self.address or agent.generation <= self._agent.generation:
                return
            self._agent = agent
            self._changed.notify_all()
        for callback in list(self._callbacks):
            try:
                callback(agent)
            except Exception:
                logger.exception("guard callback failed")

    def tool_allowed(self, tool: str) -> bool:
        """The agent's tool scope as last seen (the server's check is the authority)."""
        return self._agent.policy.tools.allows(tool)

    def on_change(self, callback: Callable[[Agent], None]) -> None:
        """Call ``callback(agent)`` from the watcher thread after every change."""
        self._callbacks.append(callback)

    def wait_for_change(self, generation: int, timeout: float) -> Agent:
        """Block until the agent's generation passes ``generation`` (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._agent.generation <= generation and not self._closed.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self._agent

    def wait_until_active(self, timeout: float) -> bool:
        """Block while the agent is killed or paused; True once it is active again."""
        deadline = time.monotonic() + timeout
        while self.stopped and not self._closed.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.wait_for_change(self._agent.generation, remaining)
        return not self.stopped

    def close(self, *, wait: float = 5.0) -> None:
        """Stop watching; wait (up to ``wait`` seconds) for the watcher thread to end, so the
        store or connection it uses can be closed after this returns."""
        self._closed.set()
        with self._changed:
            self._changed.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(wait)

    def _run(self) -> None:
        failures = 0
        while not self._closed.is_set():
            try:
                agent = self._backend.watch_agent(
                    self.address, after_generation=self._agent.generation, timeout=self._poll
                )
                failures = 0
            except (TetherError, OSError, RuntimeError) as exc:
                if self._closed.is_set():
                    return
                failures += 1
                logger.warning("watching %s failed (%s); retrying", self.address, exc)
                self._closed.wait(min(5.0, 0.2 * 2**failures))
                continue
            except Exception:  # httpx's errors after close, a closed store: stop quietly
                if self._closed.is_set():
                    return
                logger.exception("watching %s failed; retrying", self.address)
                self._closed.wait(1.0)
                continue
            self.adopt(agent)
