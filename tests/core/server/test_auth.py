"""Keys: hashed, with roles and workspaces; 401 without one, 403 beyond a role, 404 across
workspaces; no public bind without keys; and the server's key cache, which must never let a
revoked key through for long."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import tether
from tether.server import auth
from tether.server.auth import KeyCache

from ... import polling
from ...server_harness import running_server
from .conftest import Server, free_port, new_key, start_server, tether_cli

AGENT = "agent://acme/refunds"
PATIENCE = 5.0
"""How long a change made by another process may take to reach a running server (its key
cache trusts an answer for ``auth.KEY_CACHE_SECONDS``, 1 s); generous, for a loaded machine."""


def create(url: str, key: str, **extra: object) -> httpx.Response:
    body = {"intent_type": "refund.request.v1", "to_agent": AGENT, "correlation_id": str(uuid.uuid4()),
            "payload": {}, **extra}  # fmt: skip
    return httpx.post(f"{url}/v1/intents", json=body, headers={"x-api-key": key})


def eventually(check: Callable[[], bool], seconds: float = PATIENCE) -> bool:
    return polling.eventually(check, seconds, interval=0.05)


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
    # revoked by another process: the server's key cache lets it go within its time bound
    assert eventually(lambda: create(server.url, key).status_code == 401)


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
    elsewhere = server.key("--role", "agent", "--agent", "agent://acme/other")
    theirs = create(server.url, elsewhere, to_agent="agent://acme/other").json()["intent_id"]
    by_id = httpx.post(
        f"{server.url}/v1/intents/{theirs}/claim", json={}, headers={"x-api-key": agent}
    )
    assert by_id.status_code == 403 and by_id.json()["error"]["code"] == "wrong_agent"
    assert (
        httpx.get(f"{server.url}/v1/intents/{theirs}", headers={"x-api-key": agent}).json()[
            "intent"
        ]["lease"]
        is None
    )  # and nothing was claimed
    keys = httpx.post(f"{server.url}/v1/keys", json={"role": "admin"}, headers={"x-api-key": agent})
    assert keys.status_code == 403


def test_a_tool_waits_callback_token_is_shown_to_agents_never_to_approvers(
    server: Server,
) -> None:
    agent = {"x-api-key": server.key("--role", "agent", "--agent", AGENT)}
    alice = {"x-api-key": server.key("--role", "approver", "--subject", "alice")}
    intent_id = create(server.url, agent["x-api-key"]).json()["intent_id"]
    base = f"{server.url}/v1/intents/{intent_id}"
    lease = httpx.post(f"{base}/start", json={}, headers=agent).json()["lease"]["token"]
    opened = httpx.post(
        f"{base}/waits",
        json={"kind": "tool", "tool_name": "refund"},
        headers={**agent, "X-Lease-Token": lease},
    ).json()["wait"]
    token = opened["callback_token"]
    assert (
        token and httpx.get(base, headers=agent).json()["intent"]["wait"]["callback_token"] == token
    )
    seen = httpx.get(base, headers=alice).json()["intent"]["wait"]
    listed = httpx.get(f"{base}/waits", headers=alice).json()["waits"]
    assert seen["wait_id"] == opened["wait_id"] and seen["callback_token"] is None
    assert [w["callback_token"] for w in listed] == [None]
    assert token not in httpx.get(f"{base}/events", headers=alice).text


def test_an_admin_keeps_to_the_keys_and_the_audit_of_its_own_workspace(server: Server) -> None:
    ours = {"x-api-key": server.admin}  # type: ignore[attr-defined]
    other_admin = server.key("--role", "admin", "--workspace", "other")
    other_agent = server.key(
        "--role", "agent", "--agent", "agent://other/x", "--workspace", "other"
    )
    assert create(server.url, other_agent, to_agent="agent://other/x").status_code == 200
    # no key of another workspace is made...
    made = httpx.post(
        f"{server.url}/v1/keys", json={"role": "admin", "workspace": "other"}, headers=ours
    )
    assert made.status_code == 403 and made.json()["error"]["code"] == "other_workspace"
    own = httpx.post(
        f"{server.url}/v1/keys", json={"role": "admin", "workspace": "default"}, headers=ours
    )
    assert own.status_code == 200 and own.json()["api_key"]["workspace"] == "default"
    # ...or revoked (404, as another workspace's intents are), and it keeps working
    gone = httpx.delete(f"{server.url}/v1/keys/{other_agent.split('_')[1]}", headers=ours)
    assert gone.status_code == 404
    assert create(server.url, other_agent, to_agent="agent://other/x").status_code == 200
    # the audit of all intents counts the caller's workspace only
    assert create(server.url, server.key("--role", "agent", "--agent", AGENT)).status_code == 200
    mine = httpx.get(f"{server.url}/v1/audit/verify", headers=ours).json()["report"]
    theirs = httpx.get(f"{server.url}/v1/audit/verify", headers={"x-api-key": other_admin}).json()[
        "report"
    ]
    assert (mine["intents_checked"], theirs["intents_checked"]) == (1, 2)
    assert mine["ok"] and theirs["ok"]


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
        new_key(srv.db_url, "--role", "admin")  # another process: seen within the cache's bound
        assert eventually(lambda: httpx.post(f"{srv.url}/v1/intents", json=body).status_code == 401)
    finally:
        srv.process.terminate()
        srv.process.wait(10)


def test_a_key_revoked_by_another_process_stops_working_promptly(server: Server) -> None:
    key = server.key("--role", "agent", "--agent", AGENT)
    for _ in range(3):  # known to the server, and remembered by its key cache
        assert create(server.url, key).status_code == 200
    assert tether_cli("keys", "revoke", key.split("_")[1], "--db", server.db_url).returncode == 0
    started = time.monotonic()
    assert eventually(lambda: create(server.url, key).status_code == 401)
    assert time.monotonic() - started < PATIENCE
    assert [create(server.url, key).status_code for _ in range(3)] == [401] * 3  # and stays out


def test_a_key_revoked_through_the_server_stops_working_at_once(server: Server) -> None:
    key = server.key("--role", "agent", "--agent", AGENT)
    assert create(server.url, key).status_code == 200
    admin = {"x-api-key": server.admin}  # type: ignore[attr-defined]
    revoked = httpx.delete(f"{server.url}/v1/keys/{key.split('_')[1]}", headers=admin)
    assert revoked.status_code == 200
    assert create(server.url, key).status_code == 401  # the very next request


@pytest.fixture
def counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[tether.Client, dict[str, int]]:
    """An embedded client whose engine counts its key reads (the store reads the server's
    key cache exists to save)."""
    monkeypatch.setattr(auth, "KEY_CACHE_SECONDS", 60.0)  # only changes may end an answer here
    local = tether.connect(f"sqlite:///{tmp_path / 'keys.db'}")
    reads = {"authenticate": 0, "has_keys": 0}
    engine = local.engine
    real_authenticate, real_has_keys = engine.authenticate, engine.has_keys

    def authenticate(presented: str) -> tether.ApiKey | None:
        reads["authenticate"] += 1
        return real_authenticate(presented)

    def has_keys() -> bool:
        reads["has_keys"] += 1
        return real_has_keys()

    monkeypatch.setattr(engine, "authenticate", authenticate)
    monkeypatch.setattr(engine, "has_keys", has_keys)
    return local, reads


def test_keys_are_remembered_and_changes_in_process_apply_at_once(
    counted: tuple[tether.Client, dict[str, int]],
) -> None:
    local, reads = counted
    with local, running_server(local.engine) as url, httpx.Client(base_url=url) as http:
        # development mode: asking whether the store has keys is not a read per request
        assert [http.get("/v1/intents").status_code for _ in range(20)] == [200] * 20
        assert 1 <= reads["has_keys"] <= 3  # (an unrelated commit may end an answer early)
        key = local.engine.create_key(tether.KeyRole.AGENT, agent=AGENT).secret
        assert http.get("/v1/intents").status_code == 401  # the very next request
        mine = {"x-api-key": key}
        assert [http.get("/v1/intents", headers=mine).status_code for _ in range(20)] == [200] * 20
        assert 1 <= reads["authenticate"] <= 3
        # an unknown key is never remembered: each try is a read, and a 401
        bogus = {"x-api-key": f"tk_{'0' * 16}_{'x' * 43}"}
        before = reads["authenticate"]
        assert [http.get("/v1/intents", headers=bogus).status_code for _ in range(3)] == [401] * 3
        assert reads["authenticate"] == before + 3
        local.engine.revoke_key(key.split("_")[1])
        assert http.get("/v1/intents", headers=mine).status_code == 401  # the very next request
        assert http.get("/v1/intents").status_code == 200  # no live key left: development mode


def test_the_cache_trusts_an_answer_for_a_bounded_time_and_holds_no_secret(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'bound.db'}"
    with tether.connect(url) as here, tether.connect(url) as elsewhere:
        key = here.engine.create_key(tether.KeyRole.ADMIN).secret
        cache = KeyCache(here.engine, max_age=0.5)
        assert cache.load(key) is not None and cache.cached(key) is not None
        assert cache.load_has_keys() is True and cache.cached_has_keys() is True
        held = repr(cache._keys)
        assert key not in held and key.split("_")[2] not in held
        # revoked through another store on the same file (as another process would): nothing
        # moves this store's change counters, so only the time bound ends the answer
        elsewhere.engine.revoke_key(key.split("_")[1])
        assert eventually(lambda: cache.cached(key) is None, seconds=0.5 + PATIENCE)
        assert eventually(lambda: cache.cached_has_keys() is None, seconds=0.5 + PATIENCE)
        assert cache.load(key) is None and cache.load_has_keys() is False
