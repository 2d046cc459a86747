from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from application.bank import Bank
from interfaces.http.pipeline import (
    ADMIN,
    EVERY_ROLE,
    TELLER,
    Call,
    Query,
    path_id,
    reads,
    respond,
    writes,
)
from interfaces.http.schemas import AccountIn, FreezeIn, LimitIn, NoBody

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])


@router.post("", status_code=201)
@writes(TELLER, ADMIN, admin_only_fields=("opened_at",))  # opened_at makes it an import
def open_account(c: Call) -> Response:
    body = c.parse(AccountIn)
    outcome = c.bank.open_account(
        body.customer_id, body.currency, c.cause, body.product, body.overdraft_limit,
        body.opened_at, c.claim,
    )
    return respond(outcome, 201)


@router.get("/{account_id}")
@reads(*EVERY_ROLE)
def get_account(bank: Bank, account_id: str, query: Query) -> dict[str, Any]:
    return bank.get_account(path_id(account_id, "account"), query.min_position())


@router.get("/{account_id}/balance")
@reads(*EVERY_ROLE)
def balance(bank: Bank, account_id: str, query: Query) -> dict[str, Any]:
    return bank.balance(
        path_id(account_id, "account"),
        as_of=query.timestamp("as_of"),
        min_position=query.min_position(),
    )


@router.get("/{account_id}/statement")
@reads(*EVERY_ROLE)
def statement(bank: Bank, account_id: str, query: Query) -> dict[str, Any]:
    return bank.statement(
        path_id(account_id, "account"),
        start=query.date("from"),
        end=query.date("to"),
        cursor=query.text("cursor"),
        limit=query.integer("limit", 100, 1, 1000) or 100,
        min_position=query.min_position(),
    )


@router.post("/{account_id}/freeze", status_code=200)
@writes(ADMIN)
def freeze(c: Call, account_id: str) -> Response:
    body = c.parse(FreezeIn)
    outcome = c.bank.freeze_account(path_id(account_id, "account"), body.reason, c.cause, c.claim)
    return respond(outcome, 200)


@router.post("/{account_id}/unfreeze", status_code=200)
@writes(ADMIN)
def unfreeze(c: Call, account_id: str) -> Response:
    c.parse(NoBody)
    return respond(c.bank.unfreeze_account(path_id(account_id, "account"), c.cause, c.claim), 200)


@router.post("/{account_id}/close", status_code=200)
@writes(ADMIN)
def close(c: Call, account_id: str) -> Response:
    c.parse(NoBody)
    return respond(c.bank.close_account(path_id(account_id, "account"), c.cause, c.claim), 200)


@router.post("/{account_id}/limits", status_code=200)
@writes(ADMIN)
def set_limit(c: Call, account_id: str) -> Response:
    body = c.parse(LimitIn)
    outcome = c.bank.set_overdraft_limit(
        path_id(account_id, "account"), body.overdraft_limit, c.cause, c.claim
    )
    return respond(outcome, 200)
