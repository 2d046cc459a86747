"""The bank's own ledger accounts and the entries of a transaction.

The internal accounts ``cash`` and ``clearing`` exist once per currency. They are not
aggregates: nothing limits them, so their balance is derived from the entries of the
transactions that name them, and no posting ever has to write to (and so serialise on)
a shared internal account.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

CASH = "cash"
CLEARING = "clearing"
INTERNAL_ACCOUNTS = (CASH, CLEARING)

DEBIT = "debit"
CREDIT = "credit"

CHANNELS = ("cash", "cheque", "wire", "internal")


def internal_account_for(channel: str) -> str:
    """Cash moves through the vault; every other channel through clearing."""
    return CASH if channel == "cash" else CLEARING


@dataclass(frozen=True)
class Entry:
    account: str  # a customer account id, or an internal account code
    direction: str
    amount: Decimal

    def __post_init__(self) -> None:
        if self.direction not in (DEBIT, CREDIT):
            raise ValueError(f"direction must be debit or credit, not {self.direction!r}")
        if self.amount <= 0:
            raise ValueError("an entry moves a positive amount")

    @classmethod
    def debit(cls, account: UUID | str, amount: Decimal) -> Entry:
        return cls(str(account), DEBIT, amount)

    @classmethod
    def credit(cls, account: UUID | str, amount: Decimal) -> Entry:
        return cls(str(account), CREDIT, amount)

    @property
    def is_internal(self) -> bool:
        return self.account in INTERNAL_ACCOUNTS

    @property
    def signed_amount(self) -> Decimal:
        """Credit-positive, as balances are shown from the customer's side."""
        return self.amount if self.direction == CREDIT else -self.amount

    def mirrored(self) -> Entry:
        return Entry(self.account, CREDIT if self.direction == DEBIT else DEBIT, self.amount)

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.account, "direction": self.direction, "amount": self.amount}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        return cls(data["account"], data["direction"], Decimal(data["amount"]))


def check_balanced(entries: list[Entry]) -> None:
    debits = sum((e.amount for e in entries if e.direction == DEBIT), Decimal(0))
    credits = sum((e.amount for e in entries if e.direction == CREDIT), Decimal(0))
    if not entries or debits != credits:
        raise ValueError(f"entries do not balance: debits {debits}, credits {credits}")
