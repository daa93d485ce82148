"""Signed webhooks: an outbox in the change's transaction, retries, dead letters, replay, and
deliveries that survive the server being killed."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
import tether
from standardwebhooks.webhooks import Webhook
from tether.settings import Settings

from ...server_harness import running_server
from .conftest import new_key, start_server
from .receiver import Receiver

AGENT = "agent://acme/refunds"


def _until(predicate: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def _lifecycle(client: tether.Client) -> str:
    intent = client.create_intent("refund.request.v1", AGENT, {"amount": 5})
    lease = client.start(intent.intent_id)
    client.complete(intent.intent_id, {"ok": True}, lease=lease)
    return intent.intent_id


def test_events_are_signed_retried_and_delivered_in_order(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    url = receiver.start()
    with tether.connect(f"sqlite:///{tmp_path / 'w.db'}") as local:
        settings = Settings(webhook_backoff_seconds=0.05)
        with running_server(local.engine, settings) as server:
            made = httpx.post(
                f"{server}/v1/webhooks/subscriptions",
                json={"callback_url": url, "event_types": ["*"]},
            )
            assert made.status_code == 200, made.text
            secret = made.json()["secret"]
            sub_id = made.json()["subscription"]["subscription_id"]
            first, second = _lifecycle(local), _lifecycle(local)
            _until(lambda: len(receiver.received) == 8)
            log = httpx.get(f"{server}/v1/webhooks/subscriptions/{sub_id}/deliveries").json()[
                "deliveries"
            ]
    assert receiver.attempts >= 10  # two failures were retried
    for got in receiver.received:
        Webhook(secret).verify(got.body, got.headers)  # Standard Webhooks signature
        expected = hmac.new(secret.encode(), got.body.encode(), hashlib.sha256).hexdigest()
        assert got.headers["x-axme-signature"] == f"sha256={expected}"
    for intent_id in (first, second):
        seqs = [g.event["seq"] for g in receiver.received if g.event["intent_id"] == intent_id]
        assert seqs == [1, 2, 3, 4]  # every event, in order per intent
    kinds = [g.event["event_type"] for g in receiver.received if g.event["intent_id"] == first]
    assert kinds == ["intent.created", "intent.submitted", "intent.in_progress", "intent.completed"]
    assert {d["status"] for d in log} == {"delivered"} and max(d["attempts"] for d in log) >= 2
    assert len({g.headers["webhook-id"] for g in receiver.received}) == 8


def test_the_dispatcher_looks_for_deliveries_only_while_a_subscription_is_live(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = receiver.start()
    db_url = f"sqlite:///{tmp_path / 'w.db'}"
    with tether.connect(db_url) as local, tether.connect(db_url) as elsewhere:
        looks: list[float] = []
        take = local.engine.take_due_deliveries

        def counted(**kwargs: int) -> object:
            looks.append(time.monotonic())
            return take(**kwargs)

        monkeypatch.setattr(local.engine, "take_due_deliveries", counted)
        with running_server(local.engine) as server:
            for _ in range(10):  # 30 commits, which used to wake a look each
                _lifecycle(local)
            time.sleep(0.6)  # past an idle look, which finds no subscription either
            assert looks == []
            # created through this server: its commit wakes the dispatcher
            made = httpx.post(f"{server}/v1/webhooks/subscriptions",
                              json={"callback_url": url, "event_types": ["intent.completed"]})  # fmt: skip
            assert made.status_code == 200, made.text
            first = _lifecycle(local)
            _until(lambda: len(receiver.received) == 1)
            assert looks != []
            sub_id = made.json()["subscription"]["subscription_id"]
            assert httpx.delete(f"{server}/v1/webhooks/subscriptions/{sub_id}").status_code == 200
            # created by another process on the same file: found by the next idle look
            elsewhere.engine.subscribe(url, ["intent.completed"])
            second = _lifecycle(local)
            _until(lambda: len(receiver.received) == 2)
    assert [r.event["intent_id"] for r in receiver.received] == [first, second]


def test_dead_letter_then_replay(tmp_path: Path, receiver: Receiver) -> None:
    receiver.always_fail = True
    url = receiver.start()
    with tether.connect(f"sqlite:///{tmp_path / 'w.db'}") as local:
        settings = Settings(webhook_backoff_seconds=0.02, webhook_max_attempts=3)
        with running_server(local.engine, settings) as server:
            made = httpx.post(f"{server}/v1/webhooks/subscriptions",
                              json={"callback_url": url, "event_types": ["intent.completed"]}).json()  # fmt: skip
            sub_id = made["subscription"]["subscription_id"]
            _lifecycle(local)

            def log() -> list[dict[str, object]]:
                return list(
                    httpx.get(f"{server}/v1/webhooks/subscriptions/{sub_id}/deliveries").json()[
                        "deliveries"
                    ]
                )

            _until(lambda: [d["status"] for d in log()] == ["dead"])
            assert log()[0]["attempts"] == 3 and receiver.received == []
            receiver.always_fail = False
            delivery_id = log()[0]["delivery_id"]
            replayed = httpx.post(f"{server}/v1/webhooks/deliveries/{delivery_id}/replay").json()
            assert replayed["queued"] == 1
            _until(lambda: [d["status"] for d in log()] == ["delivered"])
            assert receiver.received[0].headers["webhook-id"] == delivery_id  # same id on replay
            queued = httpx.post(
                f"{server}/v1/webhooks/subscriptions/{sub_id}/replay", json={}
            ).json()["queued"]
            assert queued == 1
            _until(lambda: len(receiver.received) == 2)
            assert {r.headers["webhook-id"] for r in receiver.received} == {delivery_id}


def test_the_outbox_is_written_with_the_change(store_url: str) -> None:
    with tether.connect(store_url) as local:
        sub = local.engine.subscribe("http://127.0.0.1:9/hook", ["intent.created"])
        every = local.engine.subscribe("http://127.0.0.1:9/all", ["*"])
        gone = local.engine.subscribe("http://127.0.0.1:9/gone", ["*"])
        local.engine.revoke_subscription(gone.subscription_id)
        other = tether.Principal.admin("other", workspace="elsewhere")
        theirs = local.engine.subscribe("http://127.0.0.1:9/theirs", ["*"], actor=other)
        intent = local.create_intent("refund.request.v1", AGENT)
        deliveries = local.engine.list_deliveries(sub.subscription_id)
        assert [(d.intent_id, d.event_type, d.status.value) for d in deliveries] == [
            (intent.intent_id, "intent.created", "pending")
        ]
        local.cancel(intent.intent_id, "x")
        with pytest.raises(tether.Conflict):  # a refused change queues nothing
            local.cancel(intent.intent_id, "again")
        assert len(local.engine.list_deliveries(sub.subscription_id)) == 1
        queued = local.engine.list_deliveries(every.subscription_id)  # newest first
        assert [(d.seq, d.event_type) for d in queued] == [
            (3, "intent.canceled"), (2, "intent.submitted"), (1, "intent.created")
        ]  # fmt: skip
        assert [d.seq for d in local.engine.list_deliveries(every.subscription_id, limit=2)] == [
            3,
            2,
        ]  # a page of the log holds its newest
        assert [d.payload["data"]["seq"] for d in queued] == [3, 2, 1]
        assert len({d.delivery_id for d in queued}) == 3
        assert local.engine.list_deliveries(gone.subscription_id) == []  # revoked
        assert local.engine.list_deliveries(theirs.subscription_id, actor=other) == []


@pytest.mark.parametrize(
    "target", ["http://10.1.2.3/hook", "http://169.254.169.254/latest", "http://192.168.1.5/x"]
)
def test_private_targets_are_refused(tmp_path: Path, target: str) -> None:
    with (
        tether.connect(f"sqlite:///{tmp_path / 'w.db'}") as local,
        running_server(local.engine) as server,
    ):
        refused = httpx.post(
            f"{server}/v1/webhooks/subscriptions",
            json={"callback_url": target, "event_types": ["*"]},
        )
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "private_target"
        allowed = local.engine.subscribe(target, ["*"], allow_private=True)  # when configured
        assert allowed.callback_url == target


@pytest.mark.parametrize(
    "body",
    [
        {"callback_url": "http://[::1"},
        {"callback_url": "http://127.0.0.1:99999/hook"},
        {"callback_url": "http://127.0.0.1:abc/hook"},
        {"callback_url": "http://127.0.0.1/\u0000"},
        {"callback_url": "ftp://127.0.0.1/hook"},
        {"callback_url": "http://127.0.0.1/hook", "secret": "whsec_" + "A" * 21},  # not base64
    ],
)
def test_a_target_or_secret_deliveries_could_not_use_is_refused(
    tmp_path: Path, body: dict[str, str]
) -> None:
    with (
        tether.connect(f"sqlite:///{tmp_path / 'w.db'}") as local,
        running_server(local.engine) as server,
    ):
        refused = httpx.post(
            f"{server}/v1/webhooks/subscriptions", json={"event_types": ["*"], **body}
        )
        assert refused.status_code == 422, refused.text
        assert local.engine.list_subscriptions() == []


def test_a_subscription_that_cannot_be_sent_fails_alone(tmp_path: Path, receiver: Receiver) -> None:
    """A subscription stored before its target and secret were checked as now (by an older
    version) fails its own deliveries; the dispatcher goes on sending everyone else's."""
    url = receiver.start()
    with tether.connect(f"sqlite:///{tmp_path / 'w.db'}") as local:
        settings = Settings(webhook_backoff_seconds=0.02, webhook_max_attempts=2)
        bad_url = local.engine.subscribe("http://127.0.0.1:9/a", ["intent.completed"])
        bad_secret = local.engine.subscribe("http://127.0.0.1:9/b", ["intent.completed"])
        good = local.engine.subscribe(url, ["intent.completed"])
        with closing(sqlite3.connect(tmp_path / "w.db")) as conn, conn:  # as an older
            conn.execute(  # version let them in
                "UPDATE webhook_subscriptions SET callback_url = ? WHERE subscription_id = ?",
                ("http://127.0.0.1/\u0000", bad_url.subscription_id),
            )
            conn.execute(
                "UPDATE webhook_subscriptions SET secret = ? WHERE subscription_id = ?",
                ("whsec_" + "A" * 21, bad_secret.subscription_id),
            )
        with running_server(local.engine, settings):
            for _ in range(3):
                _lifecycle(local)
            _until(lambda: len(receiver.received) == 3)
            for bad in (bad_url, bad_secret):
                _until(
                    lambda b=bad: (
                        {d.status.value for d in local.engine.list_deliveries(b.subscription_id)}
                        == {"dead"}
                    )
                )
                errors = {d.last_error for d in local.engine.list_deliveries(bad.subscription_id)}
                assert all(errors), errors
        delivered = local.engine.list_deliveries(good.subscription_id)
        assert {d.status.value for d in delivered} == {"delivered"}


@pytest.mark.slow
def test_deliveries_survive_the_server_being_killed(tmp_path: Path, receiver: Receiver) -> None:
    receiver.fail_first = 1
    url = receiver.start()
    db_url = f"sqlite:///{tmp_path / 'k.db'}"
    admin = new_key(db_url, "--role", "admin")
    env = {"TETHER_WEBHOOK_BACKOFF_SECONDS": "2"}
    server = start_server(db_url, env=env)
    try:
        headers = {"x-api-key": admin}
        httpx.post(f"{server.url}/v1/webhooks/subscriptions", json={"callback_url": url, "event_types": ["*"]},
                   headers=headers).raise_for_status()  # fmt: skip
        with tether.connect(db_url) as local:
            intent_id = _lifecycle(local)
            sub_id = local.engine.list_subscriptions()[0].subscription_id

            def failed_once() -> (
                bool
            ):  # the first attempt failed and was recorded: between attempts
                return any(d.attempts == 1 and d.status.value == "pending"
                           for d in local.engine.list_deliveries(sub_id))  # fmt: skip

            _until(failed_once)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        server = start_server(db_url, env=env)
        _until(lambda: len(receiver.received) == 4)
    finally:
        server.process.kill()
        server.process.wait(10)
    assert [r.event["seq"] for r in receiver.received] == [1, 2, 3, 4]
    assert {r.event["intent_id"] for r in receiver.received} == {intent_id}


def test_axp_inbox_event_types(store_url: str) -> None:
    with tether.connect(store_url) as local:
        sub = local.engine.subscribe("http://127.0.0.1:9/hook", ["inbox.thread_created", "inbox.reply_received",
                                                                 "inbox.thread_updated"])  # fmt: skip
        intent = local.create_intent(
            "refund.request.v1", AGENT, human_task=tether.HumanTask(title="ok?")
        )
        alice = local.as_actor(tether.Principal.human("alice"))
        alice.reply(intent.intent_id, "looking")
        alice.approve(intent.intent_id)
        lease = local.start(intent.intent_id)
        local.wait_for_time(intent.intent_id, seconds=60, lease=lease)  # not a thread change
        queued = [
            (d.event_type, d.payload["data"]["event_type"])
            for d in reversed(local.engine.list_deliveries(sub.subscription_id))
        ]
    assert queued == [
        ("inbox.thread_created", "intent.human_task_assigned"),
        ("inbox.reply_received", "intent.reply"),
        ("inbox.thread_updated", "intent.resumed"),
    ]
