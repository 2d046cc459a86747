"""Domain services that move money: every check first, then the balanced record.

Each returns the new :class:`Transaction`; the accounts passed in are changed in
place, so the caller saves accounts and transaction together in one ``save()``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.account import Account
from domain.cause import Cause
from domain.errors import ValidationFailed
from domain.hold import Hold
from domain.ledger import CHANNELS, CLEARING, CREDIT, Entry, internal_account_for
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
    now: datetime | None = None,
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
    now: datetime | None = None,
    **details: Any,
) -> Transaction:
    """Debit the customer; credit the vault (cash) or clearing (other channels)."""
    _check_movement(amount, channel)
    account.check_currency(amount.currency)
    account.check_can_debit(amount.amount, now)
    txn = _post_against_bank("withdrawal", account, amount, channel, cause, details)
    account.debit(txn.id, amount.amount, cause, now=now)
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
    now: datetime | None = None,
    **details: Any,
) -> Transaction:
    """Checks in the contract's order: currency, closed, frozen, funds."""
    amount.check_positive()
    check_transfer_accounts(source.id, destination.id)
    source.check_currency(amount.currency)
    destination.check_currency(amount.currency)
    source.check_not_closed()
    destination.check_can_credit()
    source.check_can_debit(amount.amount, now)
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
    source.debit(txn.id, amount.amount, cause, now=now)
    destination.credit(txn.id, amount.amount, cause)
    return txn


def place_hold(
    account: Account,
    amount: Money,
    now: datetime,
    cause: Cause,
    reference: str | None = None,
    expires_at: datetime | None = None,
) -> Hold:
    """Checks in the contract's order: currency, closed, frozen, funds."""
    amount.check_positive()
    Hold.check_expiry(expires_at, now)
    account.check_currency(amount.currency)
    account.check_can_hold(amount.amount, now)
    hold = Hold.place(account.id, amount.amount, amount.currency, cause, reference, expires_at)
    account.hold(hold.id, amount.amount, expires_at, now, cause, placed_at=hold.created_on)
    return hold


def capture(
    hold: Hold,
    account: Account,
    destination: Account | None,
    amount: Decimal | None,
    now: datetime,
    cause: Cause,
) -> Transaction:
    """Debit the held money from the hold's account; credit ``destination`` or
    ``clearing``. ``amount`` None captures all that remains."""
    if destination is not None:
        if destination.id == account.id:
            raise ValidationFailed.at(
                ("to_account_id",), "a capture goes to another account than the hold's"
            )
        destination.check_currency(hold.currency)
        destination.check_can_credit()
    account.check_not_closed()
    account.check_not_frozen()
    # A capture moves held money, so it leaves the available balance as it was; but
    # every debit except a reversal must leave it >= 0, and a reversal or a limit cut
    # can have taken it below.
    account.check_funds(Decimal(0), now)
    hold.check_active(now)
    taken = hold.remaining if amount is None else amount
    hold.check_capture(taken)
    credited: UUID | str = destination.id if destination is not None else CLEARING
    txn = Transaction.post(
        kind="capture",
        amount=taken,
        currency=hold.currency,
        channel="internal",
        entries=[Entry.debit(account.id, taken), Entry.credit(credited, taken)],
        cause=cause,
        reference=hold.reference,
    )
    hold.capture(txn.id, taken, now, cause)
    account.capture_held(hold.id, txn.id, taken, cause, booked_at=txn.booked_at)
    if destination is not None:
        destination.credit(txn.id, taken, cause)
    return txn


def release(hold: Hold, account: Account, reason: str | None, now: datetime, cause: Cause) -> None:
    hold.release(reason, now, cause)
    account.release_held(hold.id, "released", cause)


def expire(hold: Hold, account: Account, now: datetime, cause: Cause) -> None:
    hold.expire(now, cause)
    account.release_held(hold.id, "expired", cause)


def reverse(
    original: Transaction,
    accounts: dict[UUID, Account],
    reason: str,
    cause: Cause,
) -> Transaction:
    """A new transaction mirroring the original's entries, never an edit.

    Posted even where it takes an account below its limit or a frozen account's
    balance down, but never on a closed account.
    """
    # The contract's order: a form refusal (422), then closed accounts, then the 409s.
    original.check_not_a_reversal()
    for account in accounts.values():
        account.check_not_closed()
    original.check_reversible()
    mirrored = [e.mirrored() for e in original.entries]
    txn = Transaction.post(
        kind="reversal",
        amount=original.amount,
        currency=original.currency,
        channel=original.channel,
        entries=mirrored,
        cause=cause,
        reference=original.reference,
        conducted_by=original.conducted_by,
        counterparty=original.counterparty,
        reverses=original.id,
    )
    original.mark_reversed(txn.id, reason, cause)
    for entry in mirrored:
        if entry.is_internal:
            continue
        account = accounts[UUID(entry.account)]
        if entry.direction == CREDIT:
            account.credit(txn.id, entry.amount, cause)
        else:
            account.debit(txn.id, entry.amount, cause, enforce_limit=False)
    return txn


def net_of(entries: list[Entry], account: str) -> Decimal:
    return sum((e.signed_amount for e in entries if e.account == account), Decimal(0))
