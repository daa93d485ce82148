"""Fixtures: a fresh tether store per test, reached in-process and over HTTP, and graphs;
no network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tether
from tether import Client, Principal

from ...pg import fresh_schema
from ...server_harness import running_server
from ..offline import forbid_network

AGENT = "agent://test/refunds"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run offline: a connection or a name lookup beyond loopback fails the test."""
    forbid_network(monkeypatch)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tether.db'}"


@pytest.fixture(params=["local", "http"])
def client(request: pytest.FixtureRequest, db_url: str) -> Iterator[Client]:
    """A client on a fresh store: in-process, and over HTTP to a real server on loopback
    (as the graph's agent, with its own key). The adapter must behave the same both ways."""
    if request.param == "local":
        with tether.connect(db_url) as c:
            yield c
        return
    with tether.connect(db_url) as local, running_server(local.engine) as url:
        admin = local.engine.create_key(tether.KeyRole.ADMIN, subject="admin")
        with tether.connect(url, api_key=admin.secret) as c:
            yield c


@pytest.fixture(params=["local", "http", "postgres"])
def any_client(request: pytest.FixtureRequest, db_url: str) -> Iterator[Client]:
    """As ``client``, and in-process on PostgreSQL too."""
    if request.param == "postgres":
        with fresh_schema() as url, tether.connect(url) as c:
            yield c
        return
    if request.param == "local":
        with tether.connect(db_url) as c:
            yield c
        return
    with tether.connect(db_url) as local, running_server(local.engine) as url:
        admin = local.engine.create_key(tether.KeyRole.ADMIN, subject="admin")
        with tether.connect(url, api_key=admin.secret) as c:
            yield c


def person(client: Client, name: str = "alice") -> Client:
    """The client acting as a person (an approver)."""
    return client.as_actor(Principal.human(name))
