"""Shared fixtures: a fresh store per test, reached through the client users call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tether
from tether import Client, FrozenClock, HumanTask, Principal

from ..pg import fresh_schema
from ..server_harness import running_server

AGENT = "agent://test/refunds"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tether.db'}"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, db_url: str) -> Iterator[str]:
    """A fresh store of each dialect."""
    if request.param == "sqlite":
        yield db_url
        return
    with fresh_schema() as url:
        yield url


@pytest.fixture(params=["local", "http", "postgres"])
def client(request: pytest.FixtureRequest, db_url: str, clock: FrozenClock) -> Iterator[Client]:
    """A client on a fresh store whose time moves only when the test says so: in-process on
    SQLite, over HTTP to a real ``tether serve`` app on loopback, and in-process on
    PostgreSQL. The behaviour must be the same every way."""
    if request.param == "local":
        with tether.connect(db_url, clock=clock) as c:
            yield c
        return
    if request.param == "postgres":
        with fresh_schema() as url, tether.connect(url, clock=clock) as c:
            yield c
        return
    with tether.connect(db_url, clock=clock) as local, running_server(local.engine) as url:
        admin = local.engine.create_key(tether.KeyRole.ADMIN, subject="admin")
        with tether.connect(url, api_key=admin.secret, clock=clock) as c:
            _OPERATORS[id(c)] = local
            try:
                yield c
            finally:
                del _OPERATORS[id(c)]


_OPERATORS: dict[int, Client] = {}
"""An HTTP client's in-process client on its server's store: the operator, who makes keys of
any workspace (an admin key makes keys of its own workspace only)."""


def outsider(client: Client, workspace: str = "other") -> Client:
    """An admin of another workspace on the same store (a view of ``client`` in process; over
    HTTP, a client of its own, with a key the operator made). Close it after use."""
    actor = Principal.admin(workspace=workspace)
    operator = _OPERATORS.get(id(client))
    if operator is None:
        return client.as_actor(actor)
    made = operator.engine.create_key(tether.KeyRole.ADMIN, subject="admin", workspace=workspace)
    assert client.url is not None
    return tether.connect(client.url, api_key=made.secret, clock=client.clock)


@pytest.fixture
def agent(client: Client) -> Client:
    return client.as_actor(Principal.agent(AGENT))


def person(client: Client, name: str, *groups: str) -> Client:
    return client.as_actor(Principal.human(name, groups=list(groups)))


def new_intent(client: Client, **kw: object) -> tether.Intent:
    return client.create_intent("refund.request.v1", AGENT, {"amount": 120}, **kw)  # type: ignore[arg-type]


def waiting_for_human(client: Client, task: HumanTask | None = None, **kw: object) -> tether.Intent:
    """An intent that is IN_PROGRESS under a lease and then waits for a person."""
    intent = new_intent(client)
    lease = client.start(intent.intent_id)
    client.wait_for_human(intent.intent_id, task or HumanTask(title="Refund?"), lease=lease, **kw)  # type: ignore[arg-type]
    return client.get_intent(intent.intent_id)
