"""Domain services that move money: every check first, then the balanced record.

Each returns the new :class:`Transaction`; the accounts passed in are changed in
place, so the caller saves accounts and transaction together in one ``save()``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.account import Account
from domain.cause import Cause
from domain.errors import ValidationFailed
from domain.ledger import CHANNELS, Entry, internal_account_for
from domain.money import Money
from domain.transaction import Transaction


def _check_movement(amount: Money, channel: str) -> None:
    amount.check_positive()
    if channel not in CHANNELS:
        raise ValidationFailed.at(("channel",), f"channel must be one of {CHANNELS}")


def deposit(
    account: Account,
    amount: Money,
    channel: str,
    cause: Cause,
    **details: Any,
) -> Transaction:
    """Credit the customer; debit the vault (cash) or clearing (other channels)."""
    _check_movement(amount, channel)
    account.check_currency(amount.currency)
    account.check_can_credit()
    txn = _post_against_bank("deposit", account, amount, channel, cause, details)
    account.credit(txn.id, amount.amount, cause)
    return txn


def withdraw(
    account: Account,
    amount: Money,
    channel: str,
    cause: Cause,
    **details: Any,
) -> Transaction:
    """Debit the customer; credit the vault (cash) or clearing (other channels)."""
    _check_movement(amount, channel)
    account.check_currency(amount.currency)
    account.check_can_debit(amount.amount)
    txn = _post_against_bank("withdrawal", account, amount, channel, cause, details)
    account.debit(txn.id, amount.amount, cause)
    return txn


def _post_against_bank(
    kind: str,
    account: Account,
    amount: Money,
    channel: str,
    cause: Cause,
    details: dict[str, Any],
) -> Transaction:
    """A movement between a customer account and the bank's own ledger account."""
    customer = Entry.credit if kind == "deposit" else Entry.debit
    bank = Entry.debit if kind == "deposit" else Entry.credit
    return Transaction.post(
        kind=kind,
        amount=amount.amount,
        currency=amount.currency,
        channel=channel,
        entries=[
            customer(account.id, amount.amount),
            bank(internal_account_for(channel), amount.amount),
        ],
        cause=cause,
        **details,
    )


def check_transfer_accounts(from_account_id: UUID, to_account_id: UUID) -> None:
    if from_account_id == to_account_id:
        raise ValidationFailed.at(
            ("to_account_id",), "a transfer needs two different accounts"
        )


def transfer(
    source: Account,
    destination: Account,
    amount: Money,
    cause: Cause,
    **details: Any,
) -> Transaction:
    """Checks in the contract's order: currency, closed, frozen, funds."""
    amount.check_positive()
    check_transfer_accounts(source.id, destination.id)
    source.check_currency(amount.currency)
    destination.check_currency(amount.currency)
    source.check_not_closed()
    destination.check_can_credit()
    source.check_can_debit(amount.amount)
    txn = Transaction.post(
        kind="transfer",
        amount=amount.amount,
        currency=amount.currency,
        channel="internal",
        entries=[
            Entry.debit(source.id, amount.amount),
            Entry.credit(destination.id, amount.amount),
        ],
        cause=cause,
        **details,
    )
    source.debit(txn.id, amount.amount, cause)
    destination.credit(txn.id, amount.amount, cause)
    return txn


def net_of(entries: list[Entry], account: str) -> Decimal:
    return sum((e.signed_amount for e in entries if e.account == account), Decimal(0))
