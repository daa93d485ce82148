"""Shared dependencies of the routes: the engine, the change feed, the lease header."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ..engine import Engine
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


async def engine_read(request: Request, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """An engine read from an ``async`` route or dependency: inline on the embedded store (a
    local read is cheaper than the hop to a worker thread and back), on the threadpool for a
    networked one, whose round trip must not hold the event loop (``app.state.inline_reads``)."""
    if request.app.state.inline_reads:
        return fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


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
