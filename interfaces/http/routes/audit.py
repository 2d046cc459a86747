"""The auditors' endpoints: the log, account histories, balances as booked, the hash
chain's verification and reconciliation of the views with the log."""

from __future__ import annotations

import csv
import io
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from application.audit.service import FEED_MAX_LIMIT, Audit
from application.bank import Bank
from application.errors import ServiceUnavailable
from domain.errors import ValidationFailed
from interfaces.http.pipeline import ADMIN, AUDITOR, Call, Query, path_id, reads, writes
from interfaces.http.schemas import VerifyIn

router = APIRouter(prefix="/v1/audit", tags=["audit"])

BALANCE_COLUMNS = ("account_id", "customer_id", "currency", "ledger_balance")


def audit_of(bank: Bank) -> Audit:
    if bank.audit is None:
        raise ServiceUnavailable("this store keeps no audit chain (memory://)")
    return bank.audit


@router.get("/events")
@reads(AUDITOR, ADMIN)
def events(bank: Bank, query: Query) -> dict[str, Any]:
    # An empty parameter (the contract's own template sends `type=`) means no filter.
    originator = query.text("originator_id") or None
    try:
        originator_id = UUID(originator) if originator else None
    except ValueError:
        raise ValidationFailed.at(("query", "originator_id"), "must be a UUID") from None
    return audit_of(bank).events(
        after=query.integer("after", 0, 0, 2**62) or 0,
        limit=query.integer("limit", 500, 1, FEED_MAX_LIMIT) or 500,
        originator_id=originator_id,
        type_name=query.text("type", 100) or None,
        min_position=query.min_position(),
    )


@router.get("/accounts/{account_id}/history")
@reads(AUDITOR, ADMIN)
def account_history(bank: Bank, account_id: str) -> dict[str, Any]:
    # Read from the log itself: always current, nothing to wait for.
    return audit_of(bank).account_history(path_id(account_id, "account"))


@router.get("/balances")
@reads(AUDITOR, ADMIN)
def balances(bank: Bank, query: Query) -> Any:
    as_of = query.timestamp("as_of")
    if as_of is None:
        raise ValidationFailed.at(("query", "as_of"), "as_of is required (an RFC 3339 timestamp)")
    form = query.text("format") or "json"
    if form not in ("json", "csv"):
        raise ValidationFailed.at(("query", "format"), "format must be json or csv")
    body = audit_of(bank).balances(as_of, query.min_position())
    if form == "json":
        return body
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(BALANCE_COLUMNS)
    for row in body["accounts"]:
        writer.writerow([row[column] for column in BALANCE_COLUMNS])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"X-As-Of": body["as_of"], "X-As-Of-Position": str(body["as_of_position"])},
    )


@router.post("/verify", status_code=200)
@writes(AUDITOR, ADMIN, idempotent=False)  # it writes nothing: no Idempotency-Key
def verify(c: Call) -> JSONResponse:
    body = c.parse(VerifyIn)
    expect = (body.expect_root.position, body.expect_root.root) if body.expect_root else None
    return JSONResponse(audit_of(c.bank).verify(expect).as_dict())


@router.get("/reconciliation")
@reads(AUDITOR, ADMIN)
def reconciliation(bank: Bank) -> dict[str, Any]:
    return reconciliation_body(audit_of(bank).reconcile())


def reconciliation_body(result: Any) -> dict[str, Any]:
    return {
        "ok": result.differences_total == 0,
        "checked_at_position": result.checked_at_position,
        "differences": [
            {"projection": d.projection, "key": d.key, "live": d.live, "replayed": d.replayed}
            for d in result.differences
        ],
        "differences_total": result.differences_total,
        "projections": [{"name": n, "position": p} for n, p in result.positions.items()],
        "rows_compared": result.rows_compared,
    }
