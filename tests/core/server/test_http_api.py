"""The HTTP API's edges: bad input, limits, tracing, the SSE stream, long-poll, metrics."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tether
from tether.settings import Settings

from ...server_harness import running_server

AGENT = "agent://acme/refunds"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, tether.Client]]:
    with tether.connect(f"sqlite:///{tmp_path / 'api.db'}") as local:
        settings = Settings(max_body_bytes=4096)
        with running_server(local.engine, settings) as url:
            yield url, local


def body(**extra: object) -> dict[str, object]:
    return {"intent_type": "refund.request.v1", "to_agent": AGENT, "correlation_id": str(uuid.uuid4()),
            "payload": {"n": 1}, **extra}  # fmt: skip


def test_bad_input_gets_one_error_shape(api: tuple[str, tether.Client]) -> None:
    url, local = api
    cases = [
        (b"{not json", 400, "malformed_json"),
        (b'{"intent_type": 5}', 422, "invalid_request"),
        (httpx.Request("POST", "/", json={**body(), "surprise": 1}).content, 422, "invalid_request"),
        (httpx.Request("POST", "/", json={**body(), "correlation_id": "nope"}).content, 422, "invalid_request"),
        (httpx.Request("POST", "/", json={k: v for k, v in body().items() if k != "correlation_id"}).content,
         422, "invalid_request"),
    ]  # fmt: skip
    for raw, status, code in cases:
        response = httpx.post(
            f"{url}/v1/intents", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == status, raw
        error = response.json()["error"]
        assert error["code"] == code and error["message"] and isinstance(error["details"], dict)
    assert local.list_intents().items == []  # nothing was stored


def test_timestamps_and_stream_positions_out_of_range_are_422_not_500(
    api: tuple[str, tether.Client],
) -> None:
    url, local = api
    edge = ["9999-12-31T23:59:59-23:00", "0001-01-01T00:00:00+14:00"]  # beyond UTC's range
    for at in edge:
        made = httpx.post(f"{url}/v1/intents", json=body(deadline_at=at))
        assert made.status_code == 422, (at, made.text)
    intent_id = httpx.post(f"{url}/v1/intents", json=body()).json()["intent_id"]
    lease = local.start(intent_id)
    base = f"{url}/v1/intents/{intent_id}"
    token = {"X-Lease-Token": lease.token}
    child = {"intent_type": "refund.request.v1", "to_agent": AGENT, "payload": {}}
    refused = [
        httpx.post(f"{base}/waits", json={"kind": "time", "fire_at": edge[1]}, headers=token),
        httpx.post(f"{base}/waits", json={"kind": "tool", "tool_name": "t", "deadline_at": edge[0]},
                   headers=token),
        httpx.post(f"{base}/children", json={"child": child, "deadline_at": "garbage"}, headers=token),
        httpx.post(f"{base}/children", json={"child": child, "deadline_at": {}}, headers=token),
        httpx.post(f"{base}/children", json={"child": child, "deadline_at": edge[0]}, headers=token),
    ]  # fmt: skip
    for response in refused:
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_request"
    for last in ["\u00b2".encode("latin-1"), b"99999999999999999999", b"-1", b"1e3"]:
        streamed = httpx.get(
            f"{base}/events/stream", params={"wait_seconds": 1}, headers={"Last-Event-ID": last}
        )
        assert streamed.status_code == 422, (last, streamed.text)
    assert [w.kind.value for w in local.list_waits(intent_id)] == []  # nothing was opened
    assert len(local.list_intents().items) == 1


def test_body_over_the_limit_is_413(api: tuple[str, tether.Client]) -> None:
    url, local = api
    big = body(payload={"blob": "x" * 5000})
    response = httpx.post(f"{url}/v1/intents", json=big)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        data = httpx.Request("POST", "/", json=big).content
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    streamed = httpx.post(
        f"{url}/v1/intents", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert local.list_intents().items == []


def test_state_keys_and_deletes_on_the_wire(api: tuple[str, tether.Client]) -> None:
    url, local = api
    intent = local.create_intent("refund.request.v1", AGENT)
    for key in ("a/1", "a/2", "b"):
        local.put_state(intent.intent_id, {"big": "x" * 100}, expected_version=0, key=key)
    state = f"{url}/v1/intents/{intent.intent_id}/state"
    listed = httpx.get(f"{state}/keys", params={"prefix": "a/", "limit": 1}).json()
    assert listed["ok"] is True and [k["key"] for k in listed["keys"]] == ["a/1"]
    assert set(listed["keys"][0]) == {"key", "version", "updated_at"}  # no data
    refused = [{}, {"key": "b", "prefix": "a/"}, {"prefix": "a/", "expected_version": 1},
               {"prefix": ""}, {"key": ""}]  # fmt: skip
    for params in refused:
        response = httpx.delete(state, params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["code"] == "invalid_request"
    stale = httpx.delete(state, params={"key": "b", "expected_version": 2})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "version_conflict"
    assert httpx.delete(state, params={"prefix": "a/"}).json() == {"ok": True, "deleted": 2}
    assert httpx.delete(state, params={"key": "b"}).json() == {"ok": True, "deleted": 1}
    assert httpx.delete(state, params={"key": "b"}).json() == {"ok": True, "deleted": 0}
    unknown = f"{url}/v1/intents/01a21a65-0000-7000-8000-000000000000/state"
    assert httpx.delete(unknown, params={"key": "b"}).status_code == 404
    assert httpx.get(f"{unknown}/keys").status_code == 404


def test_rate_limit_gives_429_with_retry_after(tmp_path: Path) -> None:
    with tether.connect(f"sqlite:///{tmp_path / 'r.db'}") as local:
        agent = local.engine.create_key(tether.KeyRole.AGENT, agent=AGENT).secret
        admin = local.engine.create_key(tether.KeyRole.ADMIN).secret
        with (
            running_server(local.engine, Settings(rate_limit=2, rate_burst=5)) as url,
            httpx.Client() as http,
        ):
            responses = [
                http.get(f"{url}/v1/intents", headers={"x-api-key": agent}) for _ in range(10)
            ]
            statuses = [r.status_code for r in responses]
            assert statuses[:5] == [200] * 5 and 429 in statuses[5:]
            limited = next(r for r in responses if r.status_code == 429)
            assert int(limited.headers["retry-after"]) >= 1
            assert limited.json()["error"]["code"] == "rate_limited"
            # the limit is per key: another key is not affected
            assert http.get(f"{url}/v1/intents", headers={"x-api-key": admin}).status_code == 200


def test_trace_id_is_echoed(api: tuple[str, tether.Client]) -> None:
    url, _ = api
    assert (
        httpx.get(f"{url}/health", headers={"X-Trace-Id": "trace-123"}).headers["x-trace-id"]
        == "trace-123"
    )
    assert httpx.get(f"{url}/health").headers["x-trace-id"]


def test_openapi_and_metrics(api: tuple[str, tether.Client]) -> None:
    url, _ = api
    spec = httpx.get(f"{url}/openapi.json").json()
    for path in ("/v1/intents", "/v1/intents/{intent_id}/resume", "/v1/intents/{intent_id}/events/stream",
                 "/v1/me/tasks", "/v1/callbacks/{token}"):  # fmt: skip
        assert path in spec["paths"], path
    created = httpx.post(f"{url}/v1/intents", json=body(human_task={"title": "ok?"})).json()
    assert created["status"] == "WAITING"
    text = httpx.get(f"{url}/metrics").text
    assert 'tether_open_waits{kind="human"} 1.0' in text
    assert "tether_transitions_total" in text and "tether_lease_backlog" in text
    assert 'tether_http_requests_total{method="POST",route="/v1/intents",status="200"}' in text


def read_sse(response: httpx.Response) -> list[dict[str, str]]:
    frames, current = [], {}
    for line in response.iter_lines():
        if line == "":
            if current:
                frames.append(current)
            current = {}
            continue
        key, _, value = line.partition(":")
        current[key] = value.strip()
    return frames


def test_sse_stream_frames_timeout_and_resume(api: tuple[str, tether.Client]) -> None:
    url, local = api
    intent_id = httpx.post(f"{url}/v1/intents", json=body()).json()["intent_id"]
    with httpx.stream("GET", f"{url}/v1/intents/{intent_id}/events/stream",
                      params={"since": 0, "wait_seconds": 1}) as response:  # fmt: skip
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = read_sse(response)
    assert [f["event"] for f in frames] == ["intent.created", "intent.submitted", "stream.timeout"]
    assert [f.get("id") for f in frames[:2]] == ["1", "2"]
    assert '"next_seq": 2' in frames[-1]["data"]

    def later() -> None:
        time.sleep(0.3)
        lease = local.start(intent_id)
        local.complete(intent_id, {"ok": True}, lease=lease)

    threading.Thread(target=later).start()
    with httpx.stream("GET", f"{url}/v1/intents/{intent_id}/events/stream",
                      params={"wait_seconds": 30}, headers={"Last-Event-ID": "2"}) as response:  # fmt: skip
        frames = read_sse(response)
    assert [int(f["id"]) for f in frames] == [3, 4]  # no gap, no repeat, ends at the end
    assert frames[-1]["event"] == "intent.completed"


def test_long_poll_returns_when_the_intent_changes(api: tuple[str, tether.Client]) -> None:
    url, local = api
    intent_id = httpx.post(f"{url}/v1/intents", json=body()).json()["intent_id"]
    threading.Timer(0.3, lambda: local.start(intent_id)).start()
    started = time.monotonic()
    got = httpx.get(f"{url}/v1/intents/{intent_id}", params={"wait_seconds": 30}, timeout=60).json()
    assert got["intent"]["status"] == "IN_PROGRESS"
    assert time.monotonic() - started < 20  # it did not sit out the window
    quiet = httpx.get(f"{url}/v1/intents/{intent_id}", params={"wait_seconds": 0.3}).json()
    assert quiet["intent"]["seq"] == got["intent"]["seq"]


def test_opentelemetry_spans_when_an_exporter_is_configured(tmp_path: Path) -> None:
    from .conftest import start_server

    srv = start_server(f"sqlite:///{tmp_path / 'otel.db'}", env={"OTEL_TRACES_EXPORTER": "console"})
    try:
        assert httpx.get(f"{srv.url}/health", headers={"X-Trace-Id": "t-1"}).status_code == 200
    finally:
        srv.process.terminate()
        out, _ = srv.process.communicate(timeout=20)
    assert '"name": "GET /health"' in out
    assert '"service.name": "tether"' in out


def test_axp_reminder_fields_apply_to_the_human_task(api: tuple[str, tether.Client]) -> None:
    url, local = api
    made = httpx.post(f"{url}/v1/intents", json=body(human_task={"title": "ok?"}, remind_after_seconds=30,
                                                     max_reminders=2, escalate_to="boss@acme.test"))  # fmt: skip
    assert made.status_code == 200, made.text
    task = local.get_intent(made.json()["intent_id"]).human_task
    assert task is not None and (task.remind_after_seconds, task.max_reminders, task.escalate_to) == (
        30, 2, "boss@acme.test",
    )  # fmt: skip
    orphan = httpx.post(f"{url}/v1/intents", json=body(remind_after_seconds=30))
    assert orphan.status_code == 422


def test_an_agents_inbox_lists_its_latest_threads_and_filters_before_the_limit(
    api: tuple[str, tether.Client],
) -> None:
    url, local = api
    owner = "agent://acme/front"
    made = [
        local.create_intent("refund.request.v1", AGENT, {"n": n}, reply_to=owner).intent_id
        for n in range(5)
    ]
    lease = local.start(made[0])
    local.complete(made[0], {"ok": True}, lease=lease)  # the oldest, changed last: done
    lease = local.start(made[1])
    local.wait_for_human(made[1], tether.HumanTask(title="ok?"), lease=lease)  # pending

    def threads(**params: object) -> list[tuple[str, str]]:
        got = httpx.get(f"{url}/v1/inbox", params={"owner_agent": owner, **params})
        assert got.status_code == 200, got.text
        return [(t["intent_id"], t["status"]) for t in got.json()["threads"]]

    assert threads(limit=3) == [(made[1], "pending"), (made[0], "done"), (made[4], "active")]
    assert threads(limit=1, status="done") == [(made[0], "done")]
    assert threads(limit=1, status="pending") == [(made[1], "pending")]
    assert threads(limit=2, status="active") == [(made[4], "active"), (made[3], "active")]
    assert len(threads()) == 5
