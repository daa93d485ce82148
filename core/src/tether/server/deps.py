"""Shared dependencies of the routes: the engine, the change feed, the lease header."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ..engine import Engine
from ..store.bridge import run_bridged
from .changes import ChangeFeed

P = ParamSpec("P")
T = TypeVar("T")


async def engine(request: Request) -> Engine:
    return engine_of(request)


async def changes(request: Request) -> ChangeFeed:
    return feed_of(request)


def engine_of(request: Request) -> Engine:
    """The app's engine. A route that takes ``request: Request`` and calls this costs less
    than one that depends on :func:`engine`: FastAPI solves every dependency on every request
    (about 9 us each on a slow core), while it hands the request over as it is."""
    e: Engine = request.app.state.engine
    return e


def feed_of(request: Request) -> ChangeFeed:
    """The app's change feed (see :func:`engine_of`)."""
    c: ChangeFeed = request.app.state.changes
    return c


async def engine_call(
    where: Request | Engine, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Call the engine (of ``where``, a request or the engine) from an ``async`` route. On the
    embedded store it runs on the event loop itself
    (:func:`~tether.store.bridge.run_bridged`): a local read is cheaper than the hop to a
    worker thread and back, and a write's commit is awaited, not waited for in a thread. On a
    networked store it runs in the threadpool, since its round trips must not hold the loop."""
    e = where if isinstance(where, Engine) else engine_of(where)
    if e.store.embedded:
        return await run_bridged(fn, *args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


def on_engine(route: Callable[P, T]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Make a plain ``def`` route run as :func:`engine_call` runs the engine: on the event
    loop for the embedded store, in the threadpool otherwise (where FastAPI would run it).
    For routes of bounded work only (one intent, one page): a long scan would hold the loop.
    The route takes ``request: Request`` or ``e: EngineDep``; FastAPI reads its signature
    through the wrapper."""

    @functools.wraps(route)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        where = kwargs.get("e", kwargs.get("request"))
        if not isinstance(where, Request | Engine):
            raise TypeError(f"{route.__name__}: an on_engine route takes request or e")
        return await engine_call(where, route, *args, **kwargs)

    return run


Lease = Annotated[str | None, Header(alias="x-lease-token")]
"""A worker's lease (header ``X-Lease-Token``): writes under a lost lease are refused. A
header parameter of the route itself (declare it ``lease: Lease = None``), not a dependency:
FastAPI solves every dependency at a cost on every request."""


class JSONModel(Response):
    """A pydantic model rendered by pydantic itself: the route's ``response_model`` still
    documents it, and FastAPI does not validate and re-encode it a second time."""

    media_type = "application/json"

    def __init__(self, model: BaseModel, status_code: int = 200) -> None:
        super().__init__(content=model.model_dump_json(), status_code=status_code)
