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
from interfaces.http.schemas import CaptureIn, HoldIn, ReleaseIn

router = APIRouter(prefix="/v1", tags=["holds"])


@router.post("/holds", status_code=201)
@writes(TELLER, ADMIN)
def place(c: Call) -> Response:
    b = c.parse(HoldIn)
    outcome = c.bank.place_hold(
        b.account_id, b.amount, b.currency, c.cause, b.reference, b.expires_at, c.claim
    )
    return respond(outcome, 201)


@router.get("/holds/{hold_id}")
@reads(*EVERY_ROLE)
def get_hold(bank: Bank, hold_id: str, query: Query) -> dict[str, Any]:
    return bank.get_hold(path_id(hold_id, "hold"), query.min_position())


@router.post("/holds/{hold_id}/capture", status_code=201)
@writes(TELLER, ADMIN)
def capture(c: Call, hold_id: str) -> Response:
    b = c.parse(CaptureIn)
    outcome = c.bank.capture_hold(
        path_id(hold_id, "hold"), c.cause, b.amount, b.to_account_id, c.claim
    )
    return respond(outcome, 201)


@router.post("/holds/{hold_id}/release", status_code=200)
@writes(TELLER, ADMIN)
def release(c: Call, hold_id: str) -> Response:
    b = c.parse(ReleaseIn)
    return respond(c.bank.release_hold(path_id(hold_id, "hold"), c.cause, b.reason, c.claim), 200)


@router.get("/accounts/{account_id}/holds")
@reads(*EVERY_ROLE)
def account_holds(bank: Bank, account_id: str, query: Query) -> dict[str, Any]:
    holds = bank.account_holds(
        path_id(account_id, "account"), query.text("status", 20), query.min_position()
    )
    return {"holds": holds}
