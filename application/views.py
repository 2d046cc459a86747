"""Aggregates as the contract's JSON-ready shapes (money as strings, RFC 3339 times)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from domain.account import Account
from domain.api_key import ApiKey
from domain.customer import FIELDS, Customer
from domain.money import format_amount
from domain.transaction import Transaction


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


def account_view(account: Account, held: Decimal = Decimal(0)) -> dict[str, Any]:
    money = lambda amount: format_amount(amount, account.currency)  # noqa: E731
    return {
        "account_id": str(account.id),
        "customer_id": str(account.customer_id),
        "currency": account.currency,
        "product": account.product,
        "status": account.status,
        "ledger_balance": money(account.ledger_balance),
        "available_balance": money(account.available_balance - held),
        "held_amount": money(held),
        "overdraft_limit": money(account.overdraft_limit),
        "opened_at": timestamp(account.opened_on),
        "version": account.version,
    }


def transaction_view(txn: Transaction) -> dict[str, Any]:
    money = lambda amount: format_amount(amount, txn.currency)  # noqa: E731
    view: dict[str, Any] = {
        "transaction_id": str(txn.id),
        "kind": txn.kind,
        "status": txn.status,
        "amount": money(txn.amount),
        "currency": txn.currency,
        "channel": txn.channel,
        "reference": txn.reference,
        "conducted_by": str(txn.conducted_by) if txn.conducted_by else None,
        "counterparty": txn.counterparty,
        "entries": [
            {"account": e.account, "direction": e.direction, "amount": money(e.amount)}
            for e in txn.entries
        ],
        "booked_at": timestamp(txn.booked_at),
        "recorded_at": timestamp(txn.recorded_at),
    }
    if txn.reverses is not None:
        view["reverses"] = str(txn.reverses)
    if txn.reversed_by is not None:
        view["reversed_by"] = str(txn.reversed_by)
    return view


def api_key_view(key: ApiKey) -> dict[str, Any]:
    return {
        "key_id": str(key.id),
        "name": key.name,
        "role": key.role,
        "created_at": timestamp(key.created_on),
        "revoked_at": timestamp(key.revoked_at),
    }
