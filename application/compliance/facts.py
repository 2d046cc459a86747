"""What the compliance projection keeps of the log: the facts reports and rules read.

Every fact carries the log position that recorded it, so a report "as of position P"
reads only facts at or before P and is the same whenever it is generated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

IN = "in"
OUT = "out"


@dataclass(frozen=True, slots=True)
class Movement:
    """One customer account's side of a posted transaction.

    A deposit is one ``in`` movement, a withdrawal one ``out``; a transfer is an ``out``
    on the payer's account and an ``in`` on the payee's; a capture an ``out`` (and an
    ``in`` when it pays another account); a reversal mirrors its original, with kind
    ``reversal`` and ``reverses`` naming it.
    """

    transaction_id: str
    position: int
    seq: int  # the entry's index within the transaction
    booked_at: datetime  # aware, UTC
    kind: str  # deposit | withdrawal | transfer | capture | reversal
    channel: str  # cash | cheque | wire | internal
    currency: str
    amount: Decimal
    account_id: str
    customer_id: str  # the account's customer
    flow: str  # IN | OUT, from the account's side
    conducted_by: str | None = None  # customer id, when given
    counterparty_country: str | None = None
    reverses: str | None = None  # for a reversal, the transaction it reverses


@dataclass(frozen=True, slots=True)
class Activity:
    """Something a customer did on an account that is not a movement: opening it
    (``opened``) or placing a hold (``hold``). Counts for dormancy."""

    account_id: str
    customer_id: str
    at: datetime
    position: int
    what: str


@dataclass(frozen=True, slots=True)
class AccountFacts:
    account_id: str
    customer_id: str
    currency: str
    opened_at: datetime
    position: int


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """A customer as known at one version (every change is a new version)."""

    customer_id: str
    position: int
    recorded_at: datetime
    name: str
    kind: str  # person | organization
    country: str
    date_of_birth: date | None = None
    identification: dict[str, Any] | None = None  # {"type", "number", "issuing_country"}
    address: dict[str, Any] | None = None
    occupation: str | None = None
    group_id: str | None = None

    def details(self) -> dict[str, Any]:
        """The known facts by the contract's field names (what a change merges into)."""
        return {name: getattr(self, name) for name in DETAILS}


DETAILS = (
    "name", "kind", "country", "date_of_birth", "identification", "address", "occupation",
    "group_id",
)


@dataclass(frozen=True, slots=True)
class Alert:
    """An AML alert (docs/reports.md): one per rule, customer and trigger."""

    alert_id: str
    rule: str
    customer_id: str
    trigger_transaction_id: str
    trigger_booked_at: datetime
    window_start: datetime
    window_end: datetime
    account_ids: tuple[str, ...]
    transaction_ids: tuple[str, ...]
    figures: dict[str, Any] = field(default_factory=dict)
