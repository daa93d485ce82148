"""Shared dependencies of the routes: the engine, the change feed, the lease header."""

from __future__ import annotations

from fastapi import Header, Request

from ..engine import Engine
from .changes import ChangeFeed


def engine(request: Request) -> Engine:
    e: Engine = request.app.state.engine
    return e


def changes(request: Request) -> ChangeFeed:
    c: ChangeFeed = request.app.state.changes
    return c


def lease_token(x_lease_token: str | None = Header(default=None)) -> str | None:
    """A worker's lease (header ``X-Lease-Token``): writes under a lost lease are refused."""
    return x_lease_token
