from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse

from interfaces.http.pipeline import ADMIN, AUDITOR, Call, authorized, bank_of, call, path_id, respond
from interfaces.http.schemas import NoBody

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get("", dependencies=[Depends(authorized(ADMIN, AUDITOR))])
def list_keys(request: Request) -> dict:
    return {"keys": bank_of(request).list_api_keys()}


@router.post("/{key_id}/revoke", status_code=200)
def revoke_key(key_id: str, c: Call = Depends(call(ADMIN))) -> JSONResponse:
    c.parse(NoBody)
    return respond(c.bank.revoke_api_key(path_id(key_id, "key"), c.cause, c.claim), 200)
