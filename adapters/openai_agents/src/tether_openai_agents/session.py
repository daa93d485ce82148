"""Conversation memory kept in tether, with the intent it belongs to.

:class:`TetherSession` implements the SDK's ``Session`` protocol on an intent's versioned state
(compare-and-set writes), so any process on any machine that can reach the store sees the same
conversation, and it goes wherever the intent goes (backups, replicas, the audit trail's intent).

Example::

    session = TetherSession(client, intent_id)
    result = await Runner.run(agent, "What did I ask last time?", session=session)

    runner = DurableRunner(agent, address="agent://demo/support",
                           session=TetherSession.for_intent)   # one conversation per intent

Writes from a durable run are made under the run's lease. When a crashed run is resumed from
its last stored state, :class:`tether_openai_agents.DurableRunner` first puts the conversation
back to its length at that state, so replayed turns are not remembered twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

import tether
from agents.items import TResponseInputItem
from agents.memory import SessionSettings

from ._binding import current
from ._codec import json_default

T = TypeVar("T")
SESSION_FORMAT = 1
_RETRIES = 50


class TetherSession:
    """A ``Session`` whose items live in the state of a tether intent.

    ``session_id`` names the conversation within the intent (one intent may hold several).
    """

    def __init__(
        self,
        client: tether.Client,
        intent_id: str,
        *,
        session_id: str = "conversation",
        session_settings: SessionSettings | None = None,
    ) -> None:
        self.client = client
        self.intent_id = intent_id
        self.session_id = session_id
        self.session_settings = session_settings

    @classmethod
    def for_intent(cls, client: tether.Client, intent: tether.Intent) -> TetherSession:
        """The intent's own conversation: pass as ``DurableRunner(..., session=...)``."""
        return cls(client, intent.intent_id)

    @property
    def key(self) -> str:
        return f"openai-agents/session/{self.session_id}"

    def _lease(self) -> tether.Lease | None:
        binding = current()
        return (
            binding.lease if binding is not None and binding.intent_id == self.intent_id else None
        )

    def _read(self) -> tuple[int, list[Any]]:
        record = self.client.get_state(self.intent_id, self.key)
        if record is None:
            return 0, []
        return record.version, list(record.data.get("items", []))

    def _update(
        self,
        change: Callable[[list[Any]], tuple[list[Any], T]],
        lease: tether.Lease | None,
    ) -> T:
        """Read, change, write back with compare-and-set; again if another writer came first."""
        for _ in range(_RETRIES):
            version, items = self._read()
            new_items, result = change(items)
            if new_items is items:
                return result
            try:
                self.client.put_state(
                    self.intent_id,
                    {"format": SESSION_FORMAT, "items": new_items},
                    expected_version=version,
                    key=self.key,
                    lease=lease,
                )
            except tether.VersionConflict:
                continue
            return result
        raise tether.VersionConflict(f"session {self.session_id} kept changing; gave up")

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        _, items = await asyncio.to_thread(self._read)
        if limit is None:
            return items
        return items[-limit:] if limit > 0 else []

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        if not items:
            return
        plain = json.loads(json.dumps(items, default=json_default))
        await asyncio.to_thread(self._update, lambda old: ([*old, *plain], None), self._lease())

    async def pop_item(self) -> TResponseInputItem | None:
        def pop(old: list[Any]) -> tuple[list[Any], Any]:
            return (old[:-1], old[-1]) if old else (old, None)

        popped: TResponseInputItem | None = await asyncio.to_thread(
            self._update, pop, self._lease()
        )
        return popped

    async def clear_session(self) -> None:
        await asyncio.to_thread(self._update, lambda old: ([] if old else old, None), self._lease())

    def length(self) -> int:
        """How many items the conversation holds (blocking; for the runner's checkpoints)."""
        return len(self._read()[1])

    def truncate(self, length: int, lease: tether.Lease | None) -> None:
        """Forget the items after the first ``length`` (blocking; a resumed run's rollback)."""
        self._update(lambda old: (old[:length] if len(old) > length else old, None), lease)
