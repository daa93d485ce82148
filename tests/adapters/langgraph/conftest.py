"""Fixtures: a fresh tether store per test, reached in-process and over HTTP, and graphs;
no network."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tether
from tether import Client, Principal

from ...pg import fresh_schema
from ...server_harness import running_server

AGENT = "agent://test/refunds"


def _loopback(host: Any) -> bool:
    if host in ("localhost", None, ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run offline: a connection or a name lookup beyond loopback fails the test."""
    real_connect, real_lookup = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            raise AssertionError(f"network use in a test: connect to {address}")
        return real_connect(self, address)

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _loopback(host):
            raise AssertionError(f"network use in a test: lookup of {host}")
        return real_lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", lookup)


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
