"""Aggregates as the contract's JSON-ready shapes (money as strings, RFC 3339 times)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.account import Account
from domain.api_key import ApiKey
from domain.customer import FIELDS, Customer
from domain.hold import Hold
from domain.money import format_amount
from domain.transaction import POSTED, Transaction


def timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def customer_view(customer: Customer) -> dict[str, Any]:
    return {
        "customer_id": str(customer.id),
        **{name: _plain(customer.details.get(name)) for name in FIELDS},
        "created_at": timestamp(customer.created_on),
        "version": customer.version,
    }


def account_view(account: Account, now: datetime) -> dict[str, Any]:
    money = lambda amount: format_amount(amount, account.currency)
    held = account.held_amount(now)
    return {
        "account_id": str(account.id),
        "customer_id": str(account.customer_id),
        "currency": account.currency,
        "product": account.product,
        "status": account.status,
        "ledger_balance": money(account.ledger_balance),
        "available_balance": money(account.available_at(now)),
        "held_amount": money(held),
        "overdraft_limit": money(account.overdraft_limit),
        "opened_at": timestamp(account.opened_on),
        "version": account.version,
    }


def transaction_view(txn: Transaction) -> dict[str, Any]:
    return _transaction_body(
        txn.id, txn.kind, txn.status, txn.amount, txn.currency, txn.channel, txn.reference,
        txn.conducted_by, txn.counterparty, txn.entry_rows, txn.booked_at, txn.recorded_at,
        txn.reverses, txn.reversed_by,
    )


def posted_transaction_view(posted: Transaction.Posted) -> dict[str, Any]:
    """The same shape, straight from the event that records a transaction."""
    return _transaction_body(
        posted.originator_id, posted.kind, POSTED, posted.amount, posted.currency,
        posted.channel, posted.reference, posted.conducted_by, posted.counterparty,
        posted.entries, posted.booked_at or posted.timestamp, posted.timestamp,
        posted.reverses, None,
    )


def _transaction_body(
    transaction_id: UUID,
    kind: str,
    status: str,
    amount: Decimal,
    currency: str,
    channel: str,
    reference: str | None,
    conducted_by: UUID | None,
    counterparty: dict[str, Any] | None,
    entries: list[dict[str, Any]],
    booked_at: datetime,
    recorded_at: datetime,
    reverses: UUID | None,
    reversed_by: UUID | None,
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "transaction_id": str(transaction_id),
        "kind": kind,
        "status": status,
        "amount": format_amount(amount, currency),
        "currency": currency,
        "channel": channel,
        "reference": reference,
        "conducted_by": str(conducted_by) if conducted_by else None,
        "counterparty": counterparty,
        "entries": [
            {
                "account": row["account"],
                "direction": row["direction"],
                "amount": format_amount(Decimal(row["amount"]), currency),
            }
            for row in entries
        ],
        "booked_at": timestamp(booked_at),
        "recorded_at": timestamp(recorded_at),
    }
    if reverses is not None:
        view["reverses"] = str(reverses)
    if reversed_by is not None:
        view["reversed_by"] = str(reversed_by)
    return view


def hold_view(hold: Hold, now: datetime) -> dict[str, Any]:
    return hold_body(
        hold.id, hold.account_id, hold.amount, hold.captured_amount, hold.currency,
        hold.status_at(now), hold.expires_at, hold.reference, hold.created_on,
    )


def hold_body(
    hold_id: UUID,
    account_id: UUID,
    amount: Decimal,
    captured: Decimal,
    currency: str,
    status: str,
    expires_at: datetime | None,
    reference: str | None,
    placed_at: datetime,
) -> dict[str, Any]:
    return {
        "hold_id": str(hold_id),
        "account_id": str(account_id),
        "amount": format_amount(amount, currency),
        "captured_amount": format_amount(captured, currency),
        "currency": currency,
        "status": status,
        "expires_at": timestamp(expires_at),
        "reference": reference,
        "placed_at": timestamp(placed_at),
    }


def api_key_view(key: ApiKey) -> dict[str, Any]:
    return {
        "key_id": str(key.id),
        "name": key.name,
        "role": key.role,
        "created_at": timestamp(key.created_on),
        "revoked_at": timestamp(key.revoked_at),
    }
