"""Keys: hashed, with roles and workspaces; 401 without one, 403 beyond a role, 404 across
workspaces; and no public bind without keys."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import httpx

from .conftest import Server, free_port, new_key, start_server, tether_cli

AGENT = "agent://acme/refunds"


def create(url: str, key: str, **extra: object) -> httpx.Response:
    body = {"intent_type": "refund.request.v1", "to_agent": AGENT, "correlation_id": str(uuid.uuid4()),
            "payload": {}, **extra}  # fmt: skip
    return httpx.post(f"{url}/v1/intents", json=body, headers={"x-api-key": key})


def test_a_key_is_required_once_keys_exist(server: Server) -> None:
    assert httpx.get(f"{server.url}/health").status_code == 200
    for path in ("/v1/intents", "/metrics", "/v1/me/tasks"):
        response = httpx.get(f"{server.url}{path}")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "missing_api_key"
    bad = httpx.get(
        f"{server.url}/v1/intents", headers={"x-api-key": "tk_0123456789abcdef_nope-nope-nope-nope"}
    )
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"
    ok = httpx.get(f"{server.url}/v1/intents", headers={"Authorization": f"Bearer {server.admin}"})  # type: ignore[attr-defined]
    assert ok.status_code == 200


def test_keys_are_stored_hashed_and_can_be_revoked(server: Server) -> None:
    key = server.key("--role", "agent", "--agent", AGENT)
    assert create(server.url, key).status_code == 200
    stored = (
        sqlite3.connect(server.db_url.removeprefix("sqlite:///"))
        .execute("SELECT key_hash FROM api_keys")
        .fetchall()
    )
    assert all(key.split("_", 2)[2] not in row[0] and key not in row[0] for row in stored)
    listed = json.loads(tether_cli("keys", "list", "--db", server.db_url, "--json").stdout)
    key_id = key.split("_")[1]
    assert {k["key_id"] for k in listed} >= {key_id} and "secret" not in json.dumps(listed)
    assert tether_cli("keys", "revoke", key_id, "--db", server.db_url).returncode == 0
    assert create(server.url, key).status_code == 401


def test_roles(server: Server) -> None:
    agent = server.key("--role", "agent", "--agent", AGENT)
    alice = server.key("--role", "approver", "--subject", "alice", "--group", "finance")
    bob = server.key("--role", "approver", "--subject", "bob")
    task = {"title": "Refund?", "groups": ["finance"]}
    intent_id = create(server.url, agent, human_task=task).json()["intent_id"]
    # an approver cannot create work, an agent cannot answer a person's task
    assert create(server.url, alice).status_code == 403
    answer = {"task_result": {"outcome": "approved"}}
    agent_try = httpx.post(
        f"{server.url}/v1/intents/{intent_id}/resume", json=answer, headers={"x-api-key": agent}
    )
    assert (
        agent_try.status_code == 403 and agent_try.json()["error"]["code"] == "agent_cannot_approve"
    )
    bob_try = httpx.post(
        f"{server.url}/v1/intents/{intent_id}/resume", json=answer, headers={"x-api-key": bob}
    )
    assert bob_try.status_code == 403
    mine = httpx.get(f"{server.url}/v1/me/tasks", headers={"x-api-key": alice}).json()["tasks"]
    assert [t["intent_id"] for t in mine] == [intent_id]
    assert httpx.get(f"{server.url}/v1/me/tasks", headers={"x-api-key": bob}).json()["tasks"] == []
    ok = httpx.post(
        f"{server.url}/v1/intents/{intent_id}/resume", json=answer, headers={"x-api-key": alice}
    )
    assert ok.status_code == 200 and ok.json()["intent"]["status"] == "IN_PROGRESS"
    # an agent claims only its own work; only an admin manages keys
    other = httpx.post(
        f"{server.url}/v1/claims",
        json={"agent": "agent://acme/other"},
        headers={"x-api-key": agent},
    )
    assert other.status_code == 403
    keys = httpx.post(f"{server.url}/v1/keys", json={"role": "admin"}, headers={"x-api-key": agent})
    assert keys.status_code == 403


def test_another_workspace_sees_nothing(server: Server) -> None:
    mine = server.key("--role", "agent", "--agent", AGENT)
    theirs = server.key("--role", "admin", "--workspace", "other")
    intent_id = create(server.url, mine).json()["intent_id"]
    assert (
        httpx.get(f"{server.url}/v1/intents/{intent_id}", headers={"x-api-key": theirs}).status_code
        == 404
    )
    listed = httpx.get(f"{server.url}/v1/intents", headers={"x-api-key": theirs}).json()["intents"]
    assert listed == []
    cancel = {"status": "CANCELED", "reason": "x"}
    resp = httpx.post(
        f"{server.url}/v1/intents/{intent_id}/resolve", json=cancel, headers={"x-api-key": theirs}
    )
    assert resp.status_code == 404


def test_public_bind_without_keys_is_refused(tmp_path: Path) -> None:
    out = tether_cli("serve", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--host", "0.0.0.0",
                     "--port", str(free_port()))  # fmt: skip
    assert out.returncode == 2 and "refusing to bind" in out.stderr


def test_development_mode_without_keys_on_loopback(tmp_path: Path) -> None:
    srv = start_server(f"sqlite:///{tmp_path / 'dev.db'}")
    try:
        assert create(srv.url, "tk_bogus").status_code == 401  # a presented key must be valid
        body = {"intent_type": "a.b.v1", "to_agent": AGENT, "correlation_id": str(uuid.uuid4())}
        assert httpx.post(f"{srv.url}/v1/intents", json=body).status_code == 200
        new_key(srv.db_url, "--role", "admin")
        assert httpx.post(f"{srv.url}/v1/intents", json=body).status_code == 401
    finally:
        srv.process.terminate()
        srv.process.wait(10)
