"""Keys, audit, health, capabilities and metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import __version__
from ..engine import Engine
from ..errors import Forbidden
from ..model import Principal
from . import bodies as b
from .auth import ADMINS, ANYONE, require
from .deps import JSONModel, engine

router = APIRouter(tags=["admin"])

Anyone = Annotated[Principal, Depends(require(*ANYONE))]
Admin = Annotated[Principal, Depends(require(*ADMINS))]
EngineDep = Annotated[Engine, Depends(engine)]


@router.get("/health", response_model=b.Health, summary="Liveness (no key needed)")
def health(e: EngineDep) -> JSONModel:
    return JSONModel(b.Health(version=__version__, schema_version=e.store.schema_version))


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request, who: Anyone) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/capabilities", response_model=b.Capabilities)
def capabilities(who: Anyone) -> JSONModel:
    return JSONModel(b.Capabilities(
        capabilities=[
            "intents", "events.stream", "human_tasks", "tool_waits", "child_intents", "timers",
            "steps_journal", "state", "leases", "audit.chain",
        ],
        supported_intent_types=["intent.any.v1"],
    ))  # fmt: skip


@router.post("/v1/keys", response_model=b.KeyCreated, summary="Create an API key (admin)")
def create_key(body: b.CreateKey, who: Admin, e: EngineDep) -> JSONModel:
    """The key is in this response only; tether stores a hash of it. An admin key makes
    keys of its own workspace (an operator makes another workspace's with `tether keys
    create --workspace`)."""
    if body.workspace is not None and body.workspace != who.workspace:
        raise Forbidden(
            f"an admin key of workspace {who.workspace!r} makes keys of that workspace only",
            code="other_workspace",
            details={"workspace": body.workspace},
        )
    made = e.create_key(
        body.role, agent=body.agent, subject=body.subject, groups=body.groups,
        workspace=who.workspace,
    )  # fmt: skip
    return JSONModel(b.KeyCreated(key=made.secret, key_id=made.key.key_id, api_key=made.key))


@router.get("/v1/keys", response_model=b.KeyList, summary="List API keys (admin)")
def list_keys(who: Admin, e: EngineDep) -> JSONModel:
    return JSONModel(b.KeyList(keys=e.list_keys(workspace=who.workspace)))


@router.delete("/v1/keys/{key_id}", response_model=b.Ok, summary="Revoke an API key (admin)")
def revoke_key(key_id: str, who: Admin, e: EngineDep) -> JSONModel:
    e.revoke_key(key_id, workspace=who.workspace)  # (another workspace's: 404)
    return JSONModel(b.Ok())


@router.get("/v1/audit/verify", response_model=b.Report, summary="Verify audit chains")
def verify(who: Admin, e: EngineDep, intent_id: Annotated[str | None, Query()] = None) -> JSONModel:
    if intent_id is not None:
        e.get_intent(intent_id, actor=who)  # visibility
    return JSONModel(b.Report(report=e.verify_audit(intent_id, workspace=who.workspace)))
