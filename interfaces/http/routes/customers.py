from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import JSONResponse

from interfaces.http.pipeline import (
    ADMIN, EVERY_ROLE, TELLER, Call, authorized, bank_of, call, path_id, respond,
)
from interfaces.http.schemas import CustomerChangeIn, CustomerIn
from fastapi import Request

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.post("", status_code=201)
def register_customer(c: Call = Depends(call(TELLER, ADMIN))) -> JSONResponse:
    body = c.parse(CustomerIn)
    return respond(c.bank.register_customer(body.fields(), c.cause, c.claim), 201)


@router.patch("/{customer_id}", status_code=200)
def update_customer(customer_id: str, c: Call = Depends(call(TELLER, ADMIN, idempotent=False))) -> JSONResponse:
    body = c.parse(CustomerChangeIn)
    outcome = c.bank.update_customer(path_id(customer_id, "customer"), body.fields(), c.cause, c.claim)
    return respond(outcome, 200)


@router.get("/{customer_id}", dependencies=[Depends(authorized(*EVERY_ROLE))])
def get_customer(customer_id: str, request: Request) -> dict:
    return bank_of(request).get_customer(path_id(customer_id, "customer"))


@router.get("/{customer_id}/accounts", dependencies=[Depends(authorized(*EVERY_ROLE))])
def customer_accounts(customer_id: str, request: Request) -> dict:
    return {"accounts": bank_of(request).customer_accounts(path_id(customer_id, "customer"))}
