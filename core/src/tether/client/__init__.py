"""Clients: :class:`Client` and its async twin :class:`AsyncClient`, opened by :func:`connect`."""

from __future__ import annotations

import getpass

from ..clock import Clock
from ..engine import Engine
from ..model import Principal
from ..settings import Settings
from ..store import open_store
from ._async import AsyncClient
from ._sync import Client, default_owner


def connect(
    url: str | None = None,
    *,
    actor: Principal | None = None,
    clock: Clock | None = None,
    settings: Settings | None = None,
) -> Client:
    """Open a client.

    With no URL (and no ``TETHER_URL``) it opens the embedded store: ``TETHER_DB`` or
    ``./.tether/tether.db``. A ``sqlite:///`` URL names another store file. No server runs.

    Example::

        import tether

        client = tether.connect()                       # ./.tether/tether.db
        client = tether.connect("sqlite:///work.db")    # another file
    """
    settings = settings or Settings()
    target = url or settings.url or settings.db
    if target.startswith(("http://", "https://")):
        from ..errors import InvalidRequest

        raise InvalidRequest("HTTP clients need the tether server; open the store with sqlite:///")
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
    actor: Principal | None = None,
    clock: Clock | None = None,
    settings: Settings | None = None,
) -> AsyncClient:
    """The async twin of :func:`connect`: same arguments, every method awaitable."""
    return AsyncClient(connect(url, actor=actor, clock=clock, settings=settings))


def person_from_settings(settings: Settings) -> Principal:
    """The person using the CLI: ``TETHER_ACTOR`` (or the OS user) and ``TETHER_GROUPS``."""
    name = settings.actor or getpass.getuser()
    groups = [g.strip() for g in settings.groups.split(",") if g.strip()]
    return Principal.human(name, groups=groups, workspace=settings.workspace)


__all__ = [
    "AsyncClient",
    "Client",
    "connect",
    "connect_async",
    "default_owner",
    "person_from_settings",
]
