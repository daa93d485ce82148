"""API keys, stored hashed: ``tk_<key id>_<secret>``, the secret shown once at creation."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from typing import Any

from ..clock import from_text
from ..errors import InvalidRequest, NotFound
from ..model import ApiKey, KeyRole, NewKey
from ..model.base import agent_address
from ..store import KEY_CHANGES, Tx
from .context import Ctx
from .records import dumps, ts

_KEY = re.compile(r"^tk_([0-9a-f]{16})_([A-Za-z0-9_-]{20,})$")
_COLUMNS = "key_id, role, agent, subject, groups, workspace, created_at, revoked_at"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _model(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(
        key_id=row[0],
        role=row[1],
        agent=row[2],
        subject=row[3],
        groups=json.loads(row[4]),
        workspace=row[5],
        created_at=from_text(row[6]),
        revoked_at=ts(row[7]),
    )


def create(
    tx: Tx,
    ctx: Ctx,
    role: KeyRole,
    *,
    agent: str | None,
    subject: str | None,
    groups: list[str],
    workspace: str,
) -> NewKey:
    if role is KeyRole.AGENT:
        if agent is None:
            raise InvalidRequest("an agent key is bound to an agent: pass --agent agent://ws/name")
        try:
            agent_address(agent)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
    elif agent is not None:
        raise InvalidRequest("only an agent key is bound to an agent address")
    if role is KeyRole.APPROVER and not subject:
        raise InvalidRequest("an approver key is bound to a person: pass --subject NAME")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    tx.execute(
        "INSERT INTO api_keys (key_id, key_hash, role, agent, subject, groups, workspace, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key_id,
            _digest(secret),
            role.value,
            agent,
            subject,
            dumps(groups),
            workspace,
            ctx.now_text,
        ),
    )
    tx.touch(KEY_CHANGES)  # a server's key cache re-reads (see tether.server.auth.KeyCache)
    key = ApiKey(key_id=key_id, role=role, agent=agent, subject=subject, groups=groups,
                 workspace=workspace, created_at=ctx.now)  # fmt: skip
    return NewKey(key=key, secret=f"tk_{key_id}_{secret}")


def authenticate(tx: Tx, presented: str) -> ApiKey | None:
    """The live key a presented secret belongs to, or None."""
    match = _KEY.match(presented.strip())
    if match is None:
        return None
    row = tx.one(f"SELECT {_COLUMNS}, key_hash FROM api_keys WHERE key_id = ?", (match[1],))
    if row is None or row[7] is not None:
        return None
    if not hmac.compare_digest(row[8], _digest(match[2])):
        return None
    return _model(row[:8])


def list_keys(tx: Tx, workspace: str | None) -> list[ApiKey]:
    if workspace is None:
        rows = tx.all(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_id")
    else:
        rows = tx.all(
            f"SELECT {_COLUMNS} FROM api_keys WHERE workspace = ? ORDER BY created_at, key_id",
            (workspace,),
        )
    return [_model(r) for r in rows]


def revoke(tx: Tx, ctx: Ctx, key_id: str, workspace: str | None = None) -> None:
    """Revoke a live key (with ``workspace``: only one of that workspace's)."""
    sql = "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL"
    params: tuple[str, ...] = (ctx.now_text, key_id)
    if workspace is not None:
        sql, params = f"{sql} AND workspace = ?", (*params, workspace)
    if tx.execute(sql, params) != 1:
        raise NotFound(f"no live key {key_id}", details={"key_id": key_id})
    tx.touch(KEY_CHANGES)


def any_live(tx: Tx) -> bool:
    return tx.one("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1") is not None
