from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse

from interfaces.http.pipeline import (
    ADMIN, EVERY_ROLE, TELLER, Call, authorized, bank_of, call, path_id, respond,
)
from interfaces.http.schemas import CashMovementIn, TransferIn

router = APIRouter(prefix="/v1", tags=["money movements"])


def _details(body: CashMovementIn) -> dict:
    return {
        "reference": body.reference,
        "conducted_by": body.conducted_by,
        "counterparty": body.counterparty.model_dump() if body.counterparty else None,
    }


@router.post("/deposits", status_code=201)
def deposit(c: Call = Depends(call(TELLER, ADMIN))) -> JSONResponse:
    b = c.parse(CashMovementIn)
    outcome = c.bank.deposit(
        b.account_id, b.amount, b.currency, b.channel, c.cause, claim=c.claim, **_details(b)
    )
    return respond(outcome, 201)


@router.post("/withdrawals", status_code=201)
def withdraw(c: Call = Depends(call(TELLER, ADMIN))) -> JSONResponse:
    b = c.parse(CashMovementIn)
    outcome = c.bank.withdraw(
        b.account_id, b.amount, b.currency, b.channel, c.cause, claim=c.claim, **_details(b)
    )
    return respond(outcome, 201)


@router.post("/transfers", status_code=201)
def transfer(c: Call = Depends(call(TELLER, ADMIN))) -> JSONResponse:
    b = c.parse(TransferIn)
    outcome = c.bank.transfer(
        b.from_account_id, b.to_account_id, b.amount, b.currency, c.cause,
        reference=b.reference, claim=c.claim,
    )
    return respond(outcome, 201)


@router.get("/transactions/{transaction_id}", dependencies=[Depends(authorized(*EVERY_ROLE))])
def get_transaction(transaction_id: str, request: Request) -> dict:
    return bank_of(request).get_transaction(path_id(transaction_id, "transaction"))
