"""Shared fixtures: a fresh store per test, reached in-process and over HTTP; no network."""

from __future__ import annotations

import os

os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"  # before the SDK is imported

from collections.abc import Iterator
from pathlib import Path

import pytest
import tether
from tether import Client, FrozenClock, Principal

from ...server_harness import running_server
from ..offline import forbid_network
from ._app import ADDRESS, App, Effects, build


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run offline: a connection or a name lookup beyond loopback fails the test."""
    forbid_network(monkeypatch)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tether.db'}"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(params=["local", "http"])
def admin(request: pytest.FixtureRequest, db_url: str, clock: FrozenClock) -> Iterator[Client]:
    """An admin's client on a fresh store whose time moves only when the test says so:
    in-process on SQLite, and over HTTP to a real server on loopback."""
    if request.param == "local":
        with tether.connect(db_url, clock=clock) as c:
            yield c
        return
    with tether.connect(db_url, clock=clock) as local, running_server(local.engine) as url:
        key = local.engine.create_key(tether.KeyRole.ADMIN, subject="admin")
        with tether.connect(url, api_key=key.secret, clock=clock) as c:
            yield c


@pytest.fixture
def client(admin: Client) -> Iterator[Client]:
    """The agent's own client (over HTTP: an agent key, which can never answer its tasks)."""
    view = admin.as_actor(Principal.agent(ADDRESS))
    yield view
    view.close()  # its background threads stop before the store closes


@pytest.fixture
def alice(admin: Client) -> Iterator[Client]:
    """A person who answers the agent's approval requests."""
    view = admin.as_actor(Principal.human("alice@example.com", groups=["finance"]))
    yield view
    view.close()


@pytest.fixture
def app() -> App:
    return build(Effects())
