"""The adapter's tests: crewai kept offline and away from the real HOME, a socket guard that
fails any test that reached the network, and a tether client in-process and over HTTP.

crewai reads its switches and paths from the environment, so they are set here, before any
test module imports it: telemetry, tracing and the version check off (the variables crewai
1.15 reads), and HOME and XDG_DATA_HOME (where crewai's storage goes; CREWAI_STORAGE_DIR
only names the folder inside it) in a temporary directory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="tether-crewai-home-")
os.environ.update(
    HOME=_HOME,
    XDG_DATA_HOME=str(Path(_HOME) / "data"),
    CREWAI_STORAGE_DIR="tether-crewai-tests",
    CREWAI_DISABLE_TELEMETRY="true",
    OTEL_SDK_DISABLED="true",
    CREWAI_DISABLE_TRACKING="true",
    CREWAI_TRACING_ENABLED="false",
    CREWAI_DISABLE_VERSION_CHECK="true",
    CREWAI_TESTING="true",
)

from ._netguard import NetGuard  # noqa: E402

GUARD = NetGuard().install()

import pytest  # noqa: E402
import tether  # noqa: E402
from crewai.hooks import clear_all_global_hooks  # noqa: E402
from tether import Client, FrozenClock, Principal  # noqa: E402

from ...server_harness import running_server  # noqa: E402
from ._apps import AGENT  # noqa: E402


@pytest.fixture(autouse=True)
def _offline() -> Iterator[None]:
    """Every test: no network, and no crewai hook left behind."""
    before = len(GUARD.attempts)
    yield
    clear_all_global_hooks()
    assert GUARD.attempts[before:] == [], "the test reached the network"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tether.db'}"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(params=["local", "http"])
def client(request: pytest.FixtureRequest, db_url: str, clock: FrozenClock) -> Iterator[Client]:
    """A tether client on a fresh store: in-process, and over HTTP to a real server on
    loopback (sharing the test's clock)."""
    with tether.connect(db_url, clock=clock) as local:
        if request.param == "local":
            yield local
            return
        with running_server(local.engine) as url:
            admin = local.engine.create_key(tether.KeyRole.ADMIN, subject="admin")
            with tether.connect(url, api_key=admin.secret, clock=clock) as remote:
                yield remote


@pytest.fixture
def editor(client: Client) -> Client:
    """The person who answers the runs' questions."""
    return client.as_actor(Principal.human("editor@example.com", groups=["editors"]))


@pytest.fixture
def effects(tmp_path: Path) -> Path:
    path = tmp_path / "effects.log"
    path.touch()
    return path


def agent_events(client: Client, intent_id: str) -> list[str]:
    return [e.event_type for e in client.list_events(intent_id)]


__all__ = ["AGENT", "agent_events"]
