"""Answers from the projections: accounts as stored in their view, and statements (a
date range in the business time zone, balances over the whole range, pages of entries)."""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from application.ports import StatementPage
from application.projections import AccountRow, HoldRow
from application.projections.statements import EntryKey
from application.views import hold_body, timestamp
from domain.errors import ValidationFailed
from domain.money import format_amount


def day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def range_bounds(
    start: date | None, end: date | None, zone: ZoneInfo
) -> tuple[datetime | None, datetime | None]:
    """Inclusive dates as [start of the first day, start of the day after the last)."""
    if start is not None and end is not None and start > end:
        raise ValidationFailed.at(("query", "from"), "from must not be after to")
    return (
        day_start(start, zone) if start is not None else None,
        day_start(end + timedelta(days=1), zone) if end is not None else None,
    )


def encode_cursor(key: EntryKey) -> str:
    text = f"{key[0].isoformat()}|{key[1]}|{key[2]}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> EntryKey:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        booked, position, seq = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
        moment = datetime.fromisoformat(booked)
        if moment.tzinfo is None:
            raise ValueError("naive time")
        return (moment, int(position), int(seq))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValidationFailed.at(("query", "cursor"), "not a cursor this API returned") from None


def statement_view(
    account: AccountRow,
    page: StatementPage,
    start: date | None,
    end: date | None,
    today: date,
    zone: ZoneInfo,
) -> dict[str, Any]:
    money = lambda amount: format_amount(amount, account.currency)
    last = page.entries[-1] if page.entries else None
    return {
        "account_id": str(account.account_id),
        "currency": account.currency,
        "from": (start or account.opened_at.astimezone(zone).date()).isoformat(),
        "to": (end or today).isoformat(),
        "opening_balance": money(page.opening_balance),
        "closing_balance": money(page.closing_balance),
        "entries": [
            {
                "position": e.position,
                "transaction_id": str(e.transaction_id),
                "booked_at": timestamp(e.booked_at),
                "kind": e.kind,
                "direction": e.direction,
                "amount": money(e.amount),
                "balance_after": money(e.balance_after),
                "reference": e.reference,
            }
            for e in page.entries
        ],
        "next_cursor": encode_cursor(last.key) if page.has_more and last else None,
    }


def account_row_view(row: AccountRow) -> dict[str, Any]:
    money = lambda amount: format_amount(amount, row.currency)
    return {
        "account_id": str(row.account_id),
        "customer_id": str(row.customer_id),
        "currency": row.currency,
        "product": row.product,
        "status": row.status,
        "ledger_balance": money(row.ledger_balance),
        "available_balance": money(row.available_balance),
        "held_amount": money(row.held_amount),
        "overdraft_limit": money(row.overdraft_limit),
        "opened_at": timestamp(row.opened_at),
        "version": row.version,
        "position": row.position,
    }


def hold_row_view(row: HoldRow, now: datetime) -> dict[str, Any]:
    body = hold_body(
        row.hold_id, row.account_id, row.amount, row.captured_amount, row.currency,
        row.status_at(now), row.expires_at, row.reference, row.placed_at,
    )
    return {**body, "position": row.position}
