"""Clients: :class:`Client` and its async twin :class:`AsyncClient`, opened by :func:`connect`."""

from __future__ import annotations

import getpass

from ..clock import Clock
from ..engine import Engine
from ..model import Principal
from ..settings import Settings
from ..store import open_store
from ._async import AsyncClient
from ._guard import AgentGuard
from ._http import HttpBackend
from ._sync import Client, default_owner


def connect(
    url: str | None = None,
    *,
    api_key: str | None = None,
    actor: Principal | None = None,
    clock: Clock | None = None,
    settings: Settings | None = None,
) -> Client:
    """Open a client.

    With no URL (and no ``TETHER_URL``) it opens the embedded store: ``TETHER_DB`` or
    ``./.tether/tether.db``. A ``sqlite:///`` URL names another store file; no server runs.
    An ``http://`` or ``https://`` URL talks to ``tether serve`` with ``api_key`` (or
    ``TETHER_API_KEY``), with the same methods.

    Example::

        import tether

        client = tether.connect()                       # ./.tether/tether.db
        client = tether.connect("sqlite:///work.db")    # another file
        client = tether.connect("http://127.0.0.1:8700", api_key="tk_...")
    """
    settings = settings or Settings()
    target = url or settings.url or settings.db
    if target.startswith(("http://", "https://")):
        return Client(HttpBackend(target, api_key=api_key or settings.api_key, clock=clock))
    store = open_store(target)
    try:
        engine = Engine(
            store, clock=clock, actor=actor or Principal.admin(workspace=settings.workspace)
        )
    except BaseException:
        store.close()
        raise
    return Client(engine)


def connect_async(
    url: str | None = None,
    *,
    api_key: str | None = None,
    actor: Principal | None = None,
    clock: Clock | None = None,
    settings: Settings | None = None,
) -> AsyncClient:
    """The async twin of :func:`connect`: same arguments, every method awaitable."""
    return AsyncClient(connect(url, api_key=api_key, actor=actor, clock=clock, settings=settings))


def person_from_settings(settings: Settings) -> Principal:
    """The person using the CLI: ``TETHER_ACTOR`` (or the OS user) and ``TETHER_GROUPS``."""
    name = settings.actor or getpass.getuser()
    groups = [g.strip() for g in settings.groups.split(",") if g.strip()]
    return Principal.human(name, groups=groups, workspace=settings.workspace)


__all__ = [
    "AgentGuard",
    "AsyncClient",
    "Client",
    "connect",
    "connect_async",
    "default_owner",
    "person_from_settings",
]
