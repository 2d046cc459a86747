from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from application.bank import Bank
from interfaces.http.pipeline import (
    ADMIN,
    AUDITOR,
    Call,
    path_id,
    reads,
    respond,
    writes,
)
from interfaces.http.schemas import NoBody

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get("")
@reads(ADMIN, AUDITOR)
def list_keys(bank: Bank) -> dict[str, Any]:
    return {"keys": bank.list_api_keys()}


@router.post("/{key_id}/revoke", status_code=200)
@writes(ADMIN)
def revoke_key(c: Call, key_id: str) -> Response:
    c.parse(NoBody)
    return respond(c.bank.revoke_api_key(path_id(key_id, "key"), c.cause, c.claim), 200)
