"""A server told to stop (SIGTERM, as a deploy does) answers its long polls and ends its
streams at once, instead of holding them until the graceful period runs out."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from pathlib import Path

import httpx

from .conftest import start_server

AGENT = "agent://acme/refunds"


def test_sigterm_answers_long_polls_and_ends_streams(tmp_path: Path) -> None:
    server = start_server(f"sqlite:///{tmp_path / 's.db'}")
    try:
        made = httpx.post(
            f"{server.url}/v1/intents",
            json={
                "intent_type": "refund.request.v1",
                "to_agent": AGENT,
                "correlation_id": str(uuid.uuid4()),
            },
        )
        assert made.status_code == 200, made.text
        intent_id = made.json()["intent_id"]
        answers: dict[str, object] = {}

        def long_poll() -> None:
            r = httpx.get(f"{server.url}/v1/intents/{intent_id}",
                          params={"wait_seconds": 30}, timeout=60)  # fmt: skip
            answers["poll"] = (r.status_code, r.json()["intent"]["intent_id"], time.monotonic())

        def claim() -> None:
            r = httpx.post(f"{server.url}/v1/claims", timeout=60,
                           json={"agent": "agent://acme/idle", "wait_seconds": 30})  # fmt: skip
            answers["claim"] = (r.status_code, r.json()["claim"], time.monotonic())

        def stream() -> None:
            with httpx.stream("GET", f"{server.url}/v1/intents/{intent_id}/events/stream",
                              params={"wait_seconds": 30}, timeout=60) as r:  # fmt: skip
                text = "".join(r.iter_text())
            answers["stream"] = (r.status_code, text, time.monotonic())

        threads = [threading.Thread(target=f) for f in (long_poll, claim, stream)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # all three are parked on the server
        assert answers == {}
        stopped = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(20)
        assert server.process.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
        output = server.process.stdout.read() if server.process.stdout else ""
    finally:
        if server.process.poll() is None:
            server.process.kill()
    status, got, at = answers["poll"]  # type: ignore[misc]
    assert (status, got) == (200, intent_id) and at - stopped < 2.5
    status, claimed, at = answers["claim"]  # type: ignore[misc]
    assert (status, claimed) == (200, None) and at - stopped < 2.5
    status, text, at = answers["stream"]  # type: ignore[misc]
    assert status == 200 and "event: stream.timeout" in text and at - stopped < 2.5
    assert "Traceback" not in output and "Exception in ASGI application" not in output
