"""Shared dependencies of the routes: the engine, the change feed, the lease header."""

from __future__ import annotations

from fastapi import Header, Request
from fastapi.responses import Response
from pydantic import BaseModel

from ..engine import Engine
from .changes import ChangeFeed


async def engine(request: Request) -> Engine:
    e: Engine = request.app.state.engine
    return e


async def changes(request: Request) -> ChangeFeed:
    c: ChangeFeed = request.app.state.changes
    return c


async def lease_token(x_lease_token: str | None = Header(default=None)) -> str | None:
    """A worker's lease (header ``X-Lease-Token``): writes under a lost lease are refused."""
    return x_lease_token


class JSONModel(Response):
    """A pydantic model rendered by pydantic itself: the route's ``response_model`` still
    documents it, and FastAPI does not validate and re-encode it a second time."""

    media_type = "application/json"

    def __init__(self, model: BaseModel, status_code: int = 200) -> None:
        super().__init__(content=model.model_dump_json(), status_code=status_code)
