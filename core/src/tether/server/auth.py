"""Who is calling: ``x-api-key`` or ``Authorization: Bearer``, checked against hashed keys.

A store with no live key is in development mode: requests act as the local admin, and
``tether serve`` refuses to bind beyond loopback in that mode. Once any key exists, every
request but ``/health`` needs a valid one (401 otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from ..engine import Engine
from ..errors import Forbidden, Unauthorized
from ..model import Principal, PrincipalKind

T = TypeVar("T")


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return None


async def _call(request: Request, fn: Callable[[], T]) -> T:
    """An engine read: inline on the embedded store (a local read is cheaper than a thread
    hop), on the threadpool for a networked one."""
    if request.app.state.inline_reads:
        return fn()
    return await run_in_threadpool(fn)


async def principal(request: Request) -> Principal:
    engine: Engine = request.app.state.engine
    key = presented_key(request)
    if key is None:
        if await _call(request, engine.has_keys):
            raise Unauthorized("an API key is required (x-api-key or Authorization: Bearer)",
                               code="missing_api_key")  # fmt: skip
        who = Principal.admin("local")
        request.app.state.limiter.check("anonymous")
        return who
    found = await _call(request, lambda: engine.authenticate(key))
    if found is None:
        raise Unauthorized("the API key is not valid (unknown or revoked)", code="invalid_api_key")
    request.app.state.limiter.check(found.key_id)
    request.state.key = found
    return found.principal


def require(*kinds: PrincipalKind) -> Callable[..., object]:
    """A dependency: the caller, if its kind is one of ``kinds``; 403 otherwise."""

    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.kind not in kinds:
            raise Forbidden(
                f"a {who.kind.value} key cannot do this",
                code="wrong_role",
                details={"allowed": [k.value for k in kinds]},
            )
        return who

    return check


ANYONE = (PrincipalKind.ADMIN, PrincipalKind.AGENT, PrincipalKind.HUMAN)
AGENTS = (PrincipalKind.ADMIN, PrincipalKind.AGENT)
ADMINS = (PrincipalKind.ADMIN,)
