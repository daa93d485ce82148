"""LangGraph's checkpointer conformance suite against TetherSaver, every way it can store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from langgraph.checkpoint.conformance import checkpointer_test, validate
from tether import Client
from tether_langgraph import TetherSaver


def _validate(client: Client, **saver_options: object) -> dict[str, tuple[bool | None, list[str]]]:
    @checkpointer_test(name=f"tether-{uuid.uuid4().hex[:6]}")
    async def factory() -> AsyncIterator[TetherSaver]:
        # a fresh checkpoint store per capability suite, as the suite expects
        saver = TetherSaver(client, namespace=uuid.uuid4().hex, **saver_options)  # type: ignore[arg-type]
        yield saver
        saver.flush()

    report = asyncio.run(validate(factory))
    return {name: (r.passed, r.failures) for name, r in report.results.items()}


def test_the_saver_passes_the_conformance_suite(any_client: Client) -> None:
    results = _validate(any_client)
    base = ["put", "put_writes", "get_tuple", "list", "delete_thread"]
    for capability in [*base, "copy_thread", "prune", "delete_for_runs"]:
        passed, failures = results[capability]
        assert passed is True, (capability, failures)


def test_the_suite_passes_with_every_write_stored_at_once(client: Client) -> None:
    results = _validate(client, write_delay=0)
    assert all(passed is not False for passed, _ in results.values()), results
