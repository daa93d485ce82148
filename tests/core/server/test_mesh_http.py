"""The mesh over the wire: AXP's ``/v1/mesh`` family driven by AXME's SDK and by plain HTTP,
against a real ``tether serve`` process."""

from __future__ import annotations

import uuid

import httpx
import pytest
from axme import AxmeClient, AxmeClientConfig
from axme_sdk.exceptions import AxmeHttpError

from .conftest import Server

AGENT = "agent://acme/refunds"
PATH = "acme/refunds"


def sdk(server: Server, key: str) -> AxmeClient:
    return AxmeClient(AxmeClientConfig(base_url=server.url, api_key=key, max_retries=0))


def http(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=30)


def create(client: AxmeClient) -> dict[str, object]:
    return client.create_intent(
        {"intent_type": "refund.request.v1", "to_agent": AGENT, "payload": {}},
        correlation_id=str(uuid.uuid4()),
    )


def test_the_axme_sdk_heartbeats_lists_kills_and_resumes(server: Server) -> None:
    agent = sdk(server, server.key("--role", "agent", "--agent", AGENT))
    admin = sdk(server, server.admin)  # type: ignore[attr-defined]
    beat = agent.mesh.heartbeat(metrics={"intents_total": 2, "cost_usd": 0.5})
    assert beat["ok"] is True and beat["health_status"] == "active"
    listed = admin.mesh.list_agents(health="active")["agents"]
    assert [(a["address"], a["spend"]["day"]["cost_usd"]) for a in listed] == [(AGENT, 0.5)]
    killed = admin.mesh.kill(PATH)
    assert killed["agent"]["status"] == "killed"
    assert agent.mesh.heartbeat()["health_status"] == "killed"
    with pytest.raises(AxmeHttpError) as refused:
        create(admin)
    assert refused.value.status_code == 403
    admin.mesh.resume(PATH)
    assert create(admin)["ok"] is True
    events = [e["event_type"] for e in admin.mesh.list_events(limit=10)["events"]]
    assert events == ["agent.health", "agent.killed", "intent.refused", "agent.resumed"]
    assert admin.mesh.get_agent(PATH)["agent"]["generation"] == 2


def test_roles_codes_and_headers_on_the_wire(server: Server) -> None:
    admin = http(server, server.admin)  # type: ignore[attr-defined]
    agent = http(server, server.key("--role", "agent", "--agent", AGENT))
    person = http(server, server.key("--role", "approver", "--subject", "alice"))
    # only an admin changes an agent; anyone in the workspace may look
    for who in (agent, person):
        denied = who.post(f"/v1/mesh/agents/{PATH}/kill")
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "wrong_role"
    assert person.get(f"/v1/mesh/agents/{PATH}").status_code == 404  # not used yet
    other = agent.post("/v1/mesh/heartbeat", json={"address": "agent://acme/other"})
    assert other.status_code == 403 and other.json()["error"]["code"] == "wrong_agent"
    bad = admin.post("/v1/mesh/agents/not an address!/pause")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_agent_address"
    # AXP's cost policy shape, with a compare-and-set generation
    axp = {"max_intents_per_hour": 1, "max_cost_per_day_usd": 5, "action_on_breach": "block"}
    put = admin.put(f"/v1/mesh/agents/{PATH}/policies/cost", json={**axp, "generation": 0})
    assert put.status_code == 200, put.text
    policy = put.json()["agent"]["policy"]
    assert policy["limits"]["max_intents_per_hour"] == 1
    assert policy["cost"]["max_cost_per_day_usd"] == 5
    stale = admin.put(f"/v1/mesh/agents/{PATH}/policies/cost", json={**axp, "generation": 0})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "stale_generation"
    body = {"intent_type": "refund.request.v1", "to_agent": AGENT, "payload": {},
            "correlation_id": str(uuid.uuid4())}  # fmt: skip
    assert admin.post("/v1/intents", json=body).status_code == 200
    limited = admin.post("/v1/intents", json={**body, "correlation_id": str(uuid.uuid4())})
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "intent_limit_exceeded"
    assert 0 < int(limited.headers["retry-after"]) <= 3600
    # a whole policy: tool scope, and a denial an agent's code can handle
    scope = {"tools": {"allow": ["search_*"]}, "limits": {}, "generation": 1}
    assert admin.put(f"/v1/mesh/agents/{PATH}/policy", json=scope).status_code == 200
    intent_id = admin.get("/v1/intents").json()["intents"][0]["intent_id"]
    started = agent.post(f"/v1/intents/{intent_id}/start", json={})
    lease = {"x-lease-token": started.json()["lease"]["token"]}
    ok = agent.post(f"/v1/intents/{intent_id}/check", json={"tool": "search_web"}, headers=lease)
    assert ok.status_code == 200
    no = agent.post(f"/v1/intents/{intent_id}/check", json={"tool": "wire_money"}, headers=lease)
    assert no.status_code == 403 and no.json()["error"]["code"] == "tool_not_allowed"
    spent = agent.post(f"/v1/intents/{intent_id}/usage", headers=lease,
                       json={"model": "m", "tokens_in": 3, "tokens_out": 4, "cost_usd": 0.01})  # fmt: skip
    assert spent.json()["usage"]["intent"] == {"cost_usd": 0.01, "tokens_in": 3,
                                               "tokens_out": 4, "turns": 1}  # fmt: skip
    negative = agent.post(f"/v1/intents/{intent_id}/usage", json={"cost_usd": -1})
    assert negative.status_code == 422
