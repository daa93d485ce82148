"""A crewai ``FlowPersistence`` kept in tether: a flow's state and its pause live on the
flow's intent, so any process on any machine can resume it, and none needs a file under HOME.

One record per flow run, the intent's state ``crewai.flow`` (written with compare-and-set)::

    {"schema": 1, "state": {...}, "method": "review", "pauses": 2,
     "pending": {"ordinal": 2, "context": {...}, "state": {...}} | null,
     "resuming": {...} | null}

``pending`` is the pause crewai saved (``save_pending_feedback``); ``Flow.from_pending`` reads
it and ``resume`` clears it, so each pause is resumed once. Clearing keeps a copy in
``resuming`` until the flow pauses again or ends: if the process dies in between, the next
worker resumes that same pause with the same decision, from the state it had when it paused.

The flow run's id is its intent id (:class:`tether_crewai.DurableFlow` kicks flows off with
``inputs={"id": intent_id}``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tether
from crewai.flow.persistence.base import FlowPersistence
from pydantic import BaseModel, ConfigDict, Field

from ._binding import current
from ._values import to_json
from .errors import AdapterError, StoredStateError

if TYPE_CHECKING:
    from crewai.flow.async_feedback.types import PendingFeedbackContext

STATE_KEY = "crewai.flow"
RECORD_SCHEMA = 1

Record = dict[str, Any]


def _empty() -> Record:
    return {
        "schema": RECORD_SCHEMA,
        "state": None,
        "method": None,
        "pauses": 0,
        "pending": None,
        "resuming": None,
    }


class FlowRecords:
    """Reads and updates (compare-and-set, retried on a concurrent write) one flow's record."""

    def __init__(
        self, client: tether.Client, intent_id: str, lease: tether.Lease | None = None
    ) -> None:
        self.client = client
        self.intent_id = intent_id
        self.lease = lease

    def read(self) -> tuple[Record, int]:
        stored = self.client.get_state(self.intent_id, STATE_KEY)
        if stored is None:
            return _empty(), 0
        record = stored.data
        if not isinstance(record, dict) or not isinstance(record.get("schema"), int):
            raise StoredStateError(f"intent {self.intent_id} holds no crewai flow record")
        if record["schema"] > RECORD_SCHEMA:
            raise StoredStateError(
                f"the flow record of intent {self.intent_id} has schema {record['schema']}, "
                f"newer than this release of tether-crewai reads ({RECORD_SCHEMA})"
            )
        return {**_empty(), **record}, stored.version

    def update(self, change: Callable[[Record], None]) -> Record:
        for _ in range(20):
            record, version = self.read()
            change(record)
            try:
                self.client.put_state(
                    self.intent_id, record, expected_version=version, key=STATE_KEY,
                    lease=self.lease,
                )  # fmt: skip
            except tether.VersionConflict:
                continue
            return record
        raise tether.VersionConflict(f"the flow record of {self.intent_id} keeps changing")


def _dump_state(state_data: dict[str, Any] | BaseModel) -> Any:
    return to_json(state_data)


class TetherFlowPersistence(FlowPersistence):
    """Flow state and pauses in tether. Use it with crewai's ``@persist``::

        @persist(TetherFlowPersistence())
        class ContentFlow(Flow[ContentState]):
            ...

    Without a ``client`` it uses the client of the durable run it is called from (a
    :class:`tether_crewai.DurableFlow` segment); pass one to read a flow outside a run, e.g.
    ``ContentFlow.from_pending(intent_id, TetherFlowPersistence(client))``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    persistence_type: str = Field(default="TetherFlowPersistence")
    client: Any = Field(default=None, exclude=True)

    def _records(self, flow_uuid: str) -> FlowRecords:
        binding = current()
        if binding is not None and binding.intent_id == flow_uuid:
            return FlowRecords(binding.client, flow_uuid, binding.lease)
        client = self.client or (binding.client if binding is not None else None)
        if client is None:
            raise AdapterError(
                "TetherFlowPersistence has no tether client: run the flow through "
                "tether_crewai.DurableFlow, or pass TetherFlowPersistence(client)"
            )
        return FlowRecords(client, flow_uuid)

    def _write(self, flow_uuid: str, change: Callable[[Record], None]) -> None:
        records = self._records(flow_uuid)
        binding = current()
        if binding is not None and binding.intent_id == flow_uuid:
            binding.call(records.update, change)  # crewai would turn a tether error into
        else:  # a RuntimeError; inside a run it ends the run as itself
            records.update(change)

    def init_db(self) -> None:
        """Nothing to set up: the store is tether's."""

    def save_state(
        self, flow_uuid: str, method_name: str, state_data: dict[str, Any] | BaseModel
    ) -> None:
        state = _dump_state(state_data)

        def change(record: Record) -> None:
            record["state"] = state
            record["method"] = method_name

        self._write(flow_uuid, change)

    def load_state(self, flow_uuid: str) -> dict[str, Any] | None:
        try:
            record, _ = self._records(flow_uuid).read()
        except tether.NotFound:
            return None
        state = record.get("state")
        return state if isinstance(state, dict) else None

    def save_pending_feedback(
        self,
        flow_uuid: str,
        context: PendingFeedbackContext,
        state_data: dict[str, Any] | BaseModel,
    ) -> None:
        state = _dump_state(state_data)
        pause = to_json(context.to_dict())

        def change(record: Record) -> None:
            record["pauses"] = int(record.get("pauses") or 0) + 1
            record["state"] = state
            record["method"] = context.method_name
            record["pending"] = {"ordinal": record["pauses"], "context": pause, "state": state}
            record["resuming"] = None

        self._write(flow_uuid, change)

    def load_pending_feedback(
        self, flow_uuid: str
    ) -> tuple[dict[str, Any], PendingFeedbackContext] | None:
        from crewai.flow.async_feedback.types import PendingFeedbackContext

        try:
            record, _ = self._records(flow_uuid).read()
        except tether.NotFound:
            return None
        pending = record.get("pending")
        if not isinstance(pending, dict):
            return None
        return dict(pending["state"]), PendingFeedbackContext.from_dict(pending["context"])

    def clear_pending_feedback(self, flow_uuid: str) -> None:
        def change(record: Record) -> None:
            if record.get("pending") is not None:
                record["resuming"] = record["pending"]
            record["pending"] = None

        self._write(flow_uuid, change)
