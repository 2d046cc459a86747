from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from application.bank import Bank
from application.batches import MAX_ITEMS
from domain.errors import ValidationFailed
from interfaces.http.pipeline import (
    ADMIN,
    AUDITOR,
    TELLER,
    Call,
    path_id,
    reads,
    respond,
    writes,
)
from interfaces.http.schemas import BatchIn, NoBody

router = APIRouter(prefix="/v1", tags=["batches"])


@router.post("/batches", status_code=201)
@writes(TELLER, ADMIN, admin_only_fields=("items[].booked_at",), max_items=MAX_ITEMS)
def post_batch(c: Call) -> Response:
    b = c.parse(BatchIn)
    return respond(c.bank.post_batch(b.atomic, b.item_dicts(), c.cause, c.claim), 201)


@router.get("/batches/{batch_id}")
@reads(TELLER, AUDITOR, ADMIN)
def get_batch(bank: Bank, batch_id: str) -> dict[str, Any]:
    return bank.get_batch(path_id(batch_id, "batch"))


@router.post("/business-days/{day}/close", status_code=200)
@writes(ADMIN)
def close_business_day(c: Call, day: str) -> Response:
    c.parse(NoBody)
    try:
        if len(day) != 10:
            raise ValueError(day)
        closed = date.fromisoformat(day)
    except ValueError:
        raise ValidationFailed.at(("path", "date"), "must be a date (YYYY-MM-DD)") from None
    return respond(c.bank.close_business_day(closed, c.cause, c.claim), 200)

