from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse

from interfaces.http.pipeline import (
    ADMIN, EVERY_ROLE, TELLER, Call, authorized, bank_of, call, path_id, respond,
)
from interfaces.http.schemas import AccountIn, FreezeIn, LimitIn, NoBody

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])


@router.post("", status_code=201)
def open_account(
    c: Call = Depends(call(TELLER, ADMIN, admin_only_fields=("opened_at",))),  # an import
) -> JSONResponse:
    body = c.parse(AccountIn)
    outcome = c.bank.open_account(
        body.customer_id, body.currency, c.cause, body.product, body.overdraft_limit,
        body.opened_at, c.claim,
    )
    return respond(outcome, 201)


@router.get("/{account_id}", dependencies=[Depends(authorized(*EVERY_ROLE))])
def get_account(account_id: str, request: Request) -> dict:
    return bank_of(request).get_account(path_id(account_id, "account"))


@router.post("/{account_id}/freeze", status_code=200)
def freeze(account_id: str, c: Call = Depends(call(ADMIN))) -> JSONResponse:
    body = c.parse(FreezeIn)
    outcome = c.bank.freeze_account(path_id(account_id, "account"), body.reason, c.cause, c.claim)
    return respond(outcome, 200)


@router.post("/{account_id}/unfreeze", status_code=200)
def unfreeze(account_id: str, c: Call = Depends(call(ADMIN))) -> JSONResponse:
    c.parse(NoBody)
    return respond(c.bank.unfreeze_account(path_id(account_id, "account"), c.cause, c.claim), 200)


@router.post("/{account_id}/close", status_code=200)
def close(account_id: str, c: Call = Depends(call(ADMIN))) -> JSONResponse:
    c.parse(NoBody)
    return respond(c.bank.close_account(path_id(account_id, "account"), c.cause, c.claim), 200)


@router.post("/{account_id}/limits", status_code=200)
def set_limit(account_id: str, c: Call = Depends(call(ADMIN))) -> JSONResponse:
    body = c.parse(LimitIn)
    outcome = c.bank.set_overdraft_limit(
        path_id(account_id, "account"), body.overdraft_limit, c.cause, c.claim
    )
    return respond(outcome, 200)
