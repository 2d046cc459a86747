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
from interfaces.http.schemas import CashMovementIn, ReverseIn, TransferIn

router = APIRouter(prefix="/v1", tags=["money movements"])


def _details(body: CashMovementIn) -> dict[str, Any]:
    return {
        "reference": body.reference,
        "conducted_by": body.conducted_by,
        "counterparty": body.counterparty.model_dump() if body.counterparty else None,
    }


@router.post("/deposits", status_code=201)
@writes(TELLER, ADMIN)
def deposit(c: Call) -> Response:
    b = c.parse(CashMovementIn)
    outcome = c.bank.deposit(
        b.account_id, b.amount, b.currency, b.channel, c.cause, claim=c.claim, **_details(b)
    )
    return respond(outcome, 201)


@router.post("/withdrawals", status_code=201)
@writes(TELLER, ADMIN)
def withdraw(c: Call) -> Response:
    b = c.parse(CashMovementIn)
    outcome = c.bank.withdraw(
        b.account_id, b.amount, b.currency, b.channel, c.cause, claim=c.claim, **_details(b)
    )
    return respond(outcome, 201)


@router.post("/transfers", status_code=201)
@writes(TELLER, ADMIN)
def transfer(c: Call) -> Response:
    b = c.parse(TransferIn)
    outcome = c.bank.transfer(
        b.from_account_id, b.to_account_id, b.amount, b.currency, c.cause,
        reference=b.reference, claim=c.claim,
    )
    return respond(outcome, 201)


@router.post("/transactions/{transaction_id}/reverse", status_code=201)
@writes(ADMIN)
def reverse(c: Call, transaction_id: str) -> Response:
    b = c.parse(ReverseIn)
    outcome = c.bank.reverse_transaction(
        path_id(transaction_id, "transaction"), b.reason, c.cause, c.claim
    )
    return respond(outcome, 201)


@router.get("/transactions/{transaction_id}")
@reads(*EVERY_ROLE)
def get_transaction(bank: Bank, transaction_id: str, query: Query) -> dict[str, Any]:
    return bank.get_transaction(path_id(transaction_id, "transaction"), query.min_position())
