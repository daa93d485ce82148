"""The ``tether`` command, run as a real process on a store file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import tether
from tether import HumanTask

from .conftest import new_intent


def tether_cmd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=60,
    )


@pytest.fixture
def waiting(db_url: str) -> str:
    with tether.connect(db_url) as client:
        intent = new_intent(client)
        lease = client.start(intent.intent_id)
        client.wait_for_human(
            intent.intent_id,
            HumanTask(
                title="Refund 120?",
                assignees=["alice"],
                form_schema={
                    "type": "object",
                    "properties": {"ticket": {"type": "string", "pattern": "^SUP-"}},
                },
            ),
            lease=lease,
        )
        return intent.intent_id


def test_intents_list_show_events(db_url: str, waiting: str) -> None:
    listed = tether_cmd("intents", "list", "--db", db_url, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [i["intent_id"] for i in json.loads(listed.stdout)["items"]] == [waiting]
    shown = tether_cmd("intents", "show", waiting, "--db", db_url)
    assert "WAITING_FOR_HUMAN" in shown.stdout and "Refund 120?" in shown.stdout
    events = json.loads(tether_cmd("intents", "events", waiting, "--db", db_url, "--json").stdout)
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    table = tether_cmd("intents", "events", waiting, "--db", db_url)
    assert "intent.human_task_assigned" in table.stdout


def test_env_var_selects_the_store(db_url: str, waiting: str) -> None:
    listed = tether_cmd("inbox", "list", "--json", env={"TETHER_DB": db_url})
    assert [i["intent_id"] for i in json.loads(listed.stdout)] == [waiting]


def test_inbox_approve_as_assignee_with_form(db_url: str, waiting: str) -> None:
    mine = tether_cmd("inbox", "list", "--mine", "--as", "bob", "--db", db_url, "--json")
    assert json.loads(mine.stdout) == []
    bad = tether_cmd(
        "inbox", "approve", waiting, "--as", "alice", "--data", "ticket=42", "--db", db_url
    )
    assert bad.returncode == 1 and "form_invalid" in bad.stderr and "ticket" in bad.stderr
    wrong = tether_cmd("inbox", "approve", waiting, "--as", "bob", "--db", db_url)
    assert wrong.returncode == 1 and "not assigned" in wrong.stderr
    ok = tether_cmd("inbox", "approve", waiting, "--as", "alice", "-m", "fine",
                    "--data", "ticket=SUP-1", "--db", db_url, "--json")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "IN_PROGRESS"
    with tether.connect(db_url) as client:
        wait = client.list_waits(waiting)[0]
        assert (wait.outcome, wait.comment, wait.result, wait.resolved_by) == (
            "approved", "fine", {"ticket": "SUP-1"}, "human:alice",
        )  # fmt: skip


def test_inbox_reject_and_respond(db_url: str) -> None:
    with tether.connect(db_url) as client:
        a = new_intent(client, human_task=HumanTask(title="A?")).intent_id
        b = new_intent(
            client, human_task=HumanTask(title="B?", allowed_outcomes=["ship", "hold"])
        ).intent_id
    assert tether_cmd("inbox", "reject", a, "--db", db_url).returncode == 0
    bad = tether_cmd("inbox", "respond", b, "--outcome", "approved", "--db", db_url)
    assert bad.returncode == 1 and "outcome_not_allowed" in bad.stderr
    ok = tether_cmd(
        "inbox", "respond", b, "-o", "hold", "--data-json", '{"why": "stock"}', "--db", db_url
    )
    assert ok.returncode == 0, ok.stderr
    with tether.connect(db_url) as client:
        assert client.list_waits(a)[0].outcome == "rejected"
        assert client.list_waits(b)[0].result == {"why": "stock"}


def test_audit_verify_exit_codes(db_url: str, waiting: str, tmp_path: object) -> None:
    ok = tether_cmd("audit", "verify", "--db", db_url)
    assert ok.returncode == 0 and "intact" in ok.stdout
    import sqlite3

    conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    conn.execute("UPDATE events SET actor = 'human:mallory' WHERE seq = 2")
    conn.commit()
    conn.close()
    broken = tether_cmd("audit", "verify", "--db", db_url, "--json")
    assert broken.returncode == 1 and json.loads(broken.stdout)["ok"] is False


def test_unknown_intent_is_a_clear_error(db_url: str) -> None:
    out = tether_cmd("intents", "show", "nope", "--db", db_url)
    assert out.returncode == 1 and "not_found" in out.stderr and "Traceback" not in out.stderr


def test_webhooks_commands(db_url: str) -> None:
    added = tether_cmd(
        "webhooks",
        "add",
        "http://127.0.0.1:9/hook",
        "-e",
        "intent.created",
        "--db",
        db_url,
        "--json",
    )
    assert added.returncode == 0, added.stderr
    sub = json.loads(added.stdout)
    assert sub["secret"].startswith("whsec_") and sub["event_types"] == ["intent.created"]
    with tether.connect(db_url) as client:
        new_intent(client)
    log = json.loads(
        tether_cmd(
            "webhooks", "deliveries", sub["subscription_id"], "--db", db_url, "--json"
        ).stdout
    )
    assert [(d["event_type"], d["status"]) for d in log] == [("intent.created", "pending")]
    replayed = tether_cmd("webhooks", "replay", log[0]["delivery_id"], "--db", db_url)
    assert replayed.returncode == 0 and "1 delivery queued again" in replayed.stdout
    listed = json.loads(tether_cmd("webhooks", "list", "--db", db_url, "--json").stdout)
    assert [s["subscription_id"] for s in listed] == [sub["subscription_id"]]
    assert tether_cmd("webhooks", "remove", sub["subscription_id"], "--db", db_url).returncode == 0
    assert json.loads(tether_cmd("webhooks", "list", "--db", db_url, "--json").stdout) == []
    refused = tether_cmd("webhooks", "add", "http://10.0.0.7/hook", "--db", db_url)
    assert refused.returncode == 1 and "private_target" in refused.stderr


def test_inbox_show(db_url: str, waiting: str) -> None:
    shown = tether_cmd("inbox", "show", waiting, "--db", db_url)
    assert (
        shown.returncode == 0
        and "Refund 120?" in shown.stdout
        and "intent.human_task_assigned" in shown.stdout
    )
    data = json.loads(tether_cmd("inbox", "show", waiting, "--db", db_url, "--json").stdout)
    assert data["intent"]["human_task"]["title"] == "Refund 120?" and len(data["events"]) == 4


def test_agents_commands(db_url: str) -> None:
    with tether.connect(db_url) as client:
        new_intent(client)
    ops = {"TETHER_ACTOR": "ops-oncall"}
    policy = tether_cmd("agents", "policy", "test/refunds", "--allow-tool", "search_*",
                        "--max-cost-day", "20", "--on-breach", "require_approval",
                        "--db", db_url, "--json", env=ops)  # fmt: skip
    assert policy.returncode == 0, policy.stderr
    agent = json.loads(policy.stdout)
    assert agent["generation"] == 1 and agent["policy"]["tools"]["allow"] == ["search_*"]
    assert agent["policy"]["cost"]["action_on_breach"] == "require_approval"
    stale = tether_cmd(
        "agents", "kill", "agent://test/refunds", "--generation", "0", "--db", db_url
    )
    assert stale.returncode == 1 and "stale_generation" in stale.stderr
    killed = tether_cmd(
        "agents", "kill", "test/refunds", "--reason", "loop", "--db", db_url, env=ops
    )
    assert killed.returncode == 0 and "killed (generation 2)" in killed.stdout
    listed = tether_cmd("agents", "list", "--status", "killed", "--db", db_url, "--json")
    assert [a["address"] for a in json.loads(listed.stdout)] == ["agent://test/refunds"]
    shown = tether_cmd("agents", "show", "test/refunds", "--db", db_url)
    assert "killed (loop)" in shown.stdout and "agent.killed" in shown.stdout
    assert tether_cmd("agents", "resume", "test/refunds", "--db", db_url, env=ops).returncode == 0
    log = json.loads(tether_cmd("agents", "events", "--db", db_url, "--json").stdout)
    assert [(e["event_type"], e["actor"]) for e in log] == [
        ("agent.policy_updated", "admin:ops-oncall"),
        ("agent.killed", "admin:ops-oncall"),
        ("agent.resumed", "admin:ops-oncall"),
    ]
    bad = tether_cmd("agents", "policy", "test/refunds", "--max-cost-day", "-5", "--db", db_url)
    assert bad.returncode == 1 and "invalid_policy" in bad.stderr


def test_worker_and_serve_refuse_what_they_cannot_do_with_one_clear_line(db_url: str) -> None:
    from .server.conftest import start_server

    server = start_server(db_url)  # (keys exist once one is made below)
    try:
        with tether.connect(db_url) as client:
            key = client.engine.create_key(tether.KeyRole.AGENT, agent="agent://test/other")
        # another agent's key: refused by the server, reported in one line, exit 1
        ran = tether_cmd("worker", "tests.core._worker_app:worker", "--url", server.url,
                         "--api-key", key.secret)  # fmt: skip
        assert ran.returncode == 1 and "Traceback" not in ran.stderr + ran.stdout
        assert "error (wrong_agent)" in ran.stderr
    finally:
        server.process.kill()
    bad_port = tether_cmd("serve", "--db", db_url, "--port", "70000")
    assert bad_port.returncode == 2 and "--port" in bad_port.stderr


def test_a_worker_with_no_handlers_claims_nothing(db_url: str) -> None:
    with tether.connect(db_url) as client:
        intent = new_intent(client)
        idle = tether.Worker(client, agent="agent://test/refunds")
        with pytest.raises(tether.TetherError, match="no handlers"):
            idle.run_once()
        assert client.get_intent(intent.intent_id).status is tether.Status.SUBMITTED
