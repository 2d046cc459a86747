"""The compliance officers' endpoints: reports, AML alerts and risk views
(docs/reports.md). Every one accepts ``as_of_position`` and carries its digest."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from application.bank import Bank
from application.compliance.calendar import day_last_instant, day_start
from application.compliance.service import Compliance
from application.errors import ServiceUnavailable
from domain.errors import ValidationFailed
from interfaces.http.pipeline import ADMIN, AUDITOR, COMPLIANCE, Query, reads
from interfaces.report_formats import ctr_csv, ctr_xml, dmo_csv

reports = APIRouter(prefix="/v1/reports", tags=["compliance"])
alerts_router = APIRouter(prefix="/v1/alerts", tags=["compliance"])
risk = APIRouter(prefix="/v1/risk", tags=["compliance"])
routers = (reports, alerts_router, risk)

READERS = (COMPLIANCE, AUDITOR, ADMIN)


def compliance_of(bank: Bank) -> Compliance:
    if bank.compliance is None:
        raise ServiceUnavailable("this store keeps no compliance views (memory://)")
    return bank.compliance


def as_of(query: Query) -> int | None:
    return query.integer("as_of_position", None, 0, 2**63 - 1)


def required_date(query: Query, name: str) -> date:
    value = query.date(name)
    if value is None:
        raise ValidationFailed.at(("query", name), f"{name} is required (YYYY-MM-DD)")
    return value


def form(query: Query, allowed: tuple[str, ...]) -> str:
    value = query.text("format") or "json"
    if value not in allowed:
        raise ValidationFailed.at(("query", "format"), f"format must be one of {', '.join(allowed)}")
    return value


def document(body: str | bytes, media_type: str, report: dict[str, Any]) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={
            "X-Report-Digest": report["digest"],
            "X-As-Of-Position": str(report["as_of_position"]),
            "X-Rules-Version": report["rules_version"],
        },
    )


@reports.get("/trial-balance")
@reads(*READERS)
def trial_balance(bank: Bank, query: Query) -> dict[str, Any]:
    currency = query.text("currency", 3)
    if not currency:
        raise ValidationFailed.at(("query", "currency"), "currency is required")
    detail = query.text("detail") or None
    if detail not in (None, "accounts"):
        raise ValidationFailed.at(("query", "detail"), "detail may only be accounts")
    return compliance_of(bank).trial_balance(
        required_date(query, "date"), currency, detail=detail == "accounts",
        as_of_position=as_of(query),
    )


@reports.get("/ctr")
@reads(*READERS)
def ctr(bank: Bank, query: Query) -> Any:
    day = required_date(query, "date")
    kind = form(query, ("json", "csv", "xml"))
    filing_date = query.date("filing_date") or day + timedelta(days=1)
    report = compliance_of(bank).ctr(day, as_of_position=as_of(query))
    if kind == "csv":
        return document(ctr_csv(report), "text/csv; charset=utf-8", report)
    if kind == "xml":
        xml = ctr_xml(report, bank.rules.institution, filing_date, ("query", "format"))
        return document(xml, "application/xml", report)
    return report


@reports.get("/dmo")
@reads(*READERS)
def dmo(bank: Bank, query: Query) -> Any:
    text = query.text("month", 7)
    try:
        if text is None or len(text) != 7:
            raise ValueError(text)
        month = date.fromisoformat(text + "-01")
    except ValueError:
        raise ValidationFailed.at(("query", "month"), "month is required (YYYY-MM)") from None
    kind = form(query, ("json", "csv"))
    report = compliance_of(bank).dmo(month, as_of_position=as_of(query))
    if kind == "csv":
        return document(dmo_csv(report), "text/csv; charset=utf-8", report)
    return report


def moment(bank: Bank, query: Query, name: str, *, end: bool) -> datetime | None:
    """An RFC 3339 timestamp, or a bare date: the start of that business day (for
    ``to``, the last instant of that day, so the day is included)."""
    text = query.text(name, 64)
    if text and len(text) == 10:
        day = query.date(name)
        assert day is not None
        return (day_last_instant if end else day_start)(day, bank.business_tz)
    return query.timestamp(name)


@alerts_router.get("")
@reads(*READERS)
def alerts(bank: Bank, query: Query) -> dict[str, Any]:
    return compliance_of(bank).alerts(
        moment(bank, query, "from", end=False),
        moment(bank, query, "to", end=True),
        query.text("rule", 64) or None,
        query.text("customer_id", 64) or None,
        as_of_position=as_of(query),
    )


def today(bank: Bank) -> date:
    return bank.clock().astimezone(bank.business_tz).date()


@risk.get("/exposures")
@reads(*READERS)
def exposures(bank: Bank, query: Query) -> dict[str, Any]:
    return compliance_of(bank).exposures(
        query.date("date") or today(bank),
        query.integer("top", 20, 0, 10_000) or 0,
        as_of_position=as_of(query),
    )


@risk.get("/overdrafts")
@reads(*READERS)
def overdrafts(bank: Bank, query: Query) -> dict[str, Any]:
    return compliance_of(bank).overdrafts(
        query.date("date") or today(bank), as_of_position=as_of(query)
    )


@risk.get("/liquidity")
@reads(*READERS)
def liquidity(bank: Bank, query: Query) -> dict[str, Any]:
    return compliance_of(bank).liquidity(
        required_date(query, "from"), required_date(query, "to"), as_of_position=as_of(query)
    )
