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
from interfaces.http.schemas import CustomerChangeIn, CustomerIn

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.post("", status_code=201)
@writes(TELLER, ADMIN)
def register_customer(c: Call) -> Response:
    body = c.parse(CustomerIn)
    return respond(c.bank.register_customer(body.fields(), c.cause, c.claim), 201)


@router.patch("/{customer_id}", status_code=200)
@writes(TELLER, ADMIN, idempotent=False)
def update_customer(c: Call, customer_id: str) -> Response:
    body = c.parse(CustomerChangeIn)
    outcome = c.bank.update_customer(
        path_id(customer_id, "customer"), body.fields(), c.cause, c.claim
    )
    return respond(outcome, 200)


@router.get("/{customer_id}")
@reads(*EVERY_ROLE)
def get_customer(bank: Bank, customer_id: str) -> dict[str, Any]:
    return bank.get_customer(path_id(customer_id, "customer"))


@router.get("/{customer_id}/accounts")
@reads(*EVERY_ROLE)
def customer_accounts(bank: Bank, customer_id: str, query: Query) -> dict[str, Any]:
    accounts = bank.customer_accounts(path_id(customer_id, "customer"), query.min_position())
    return {"accounts": accounts}
