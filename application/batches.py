"""Batches of postings: the items' form, checked before anything is loaded.

A malformed item makes the whole request a 422 naming it (``("items", index, field)``);
what depends on the state (funds, a closed day, a frozen account) is that item's own
refusal, decided when the batch is applied in order against the running state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from application.forms import check_counterparty, check_reference, money
from domain.errors import ValidationFailed
from domain.money import Money

MAX_ITEMS = 1000


@dataclass(frozen=True)
class BatchItem:
    index: int
    type: str
    money: Money
    account_id: UUID | None = None  # deposits and withdrawals
    from_account_id: UUID | None = None  # transfers
    to_account_id: UUID | None = None
    channel: str = "internal"
    booked_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)  # reference, conducted_by, ...

    @property
    def account_ids(self) -> tuple[UUID, ...]:
        ids = (self.account_id, self.from_account_id, self.to_account_id)
        return tuple(i for i in ids if i is not None)


def check_items(items: list[dict[str, Any]], now: datetime) -> list[BatchItem]:
    """Every item's form, or one ValidationFailed naming every malformed item."""
    if not 1 <= len(items) <= MAX_ITEMS:
        raise ValidationFailed.at(("items",), f"a batch has 1 to {MAX_ITEMS} items")
    errors: list[tuple[tuple[str | int, ...], str]] = []
    checked: list[BatchItem] = []
    previous: datetime | None = None
    for index, raw in enumerate(items):
        try:
            item = _item(index, raw, now)
        except ValidationFailed as error:
            errors.extend(error.errors)
            continue
        if item.booked_at is not None:
            if previous is not None and item.booked_at < previous:
                errors.append(
                    (("items", index, "booked_at"), "booked_at must not decrease within a batch")
                )
            previous = item.booked_at
        checked.append(item)
    if errors:
        raise ValidationFailed(errors)
    return checked


def _item(index: int, raw: dict[str, Any], now: datetime) -> BatchItem:
    at = ("items", index)
    kind = raw["type"]
    amount = money(raw["amount"], raw["currency"], at)
    reference = raw.get("reference")
    check_reference(reference, at)
    check_counterparty(raw.get("counterparty"), at)
    booked_at = raw.get("booked_at")
    if booked_at is not None and booked_at > now:
        raise ValidationFailed.at((*at, "booked_at"), "booked_at may not be in the future")
    if kind == "transfer":
        if raw["from_account_id"] == raw["to_account_id"]:
            raise ValidationFailed.at((*at, "to_account_id"), "a transfer needs two different accounts")
        return BatchItem(
            index, kind, amount, from_account_id=raw["from_account_id"],
            to_account_id=raw["to_account_id"], booked_at=booked_at,
            details={"reference": reference},
        )
    return BatchItem(
        index, kind, amount, account_id=raw["account_id"], channel=raw["channel"],
        booked_at=booked_at,
        details={
            "reference": reference,
            "conducted_by": raw.get("conducted_by"),
            "counterparty": raw.get("counterparty"),
        },
    )


def rejection(index: int, code: str, detail: str) -> dict[str, Any]:
    return {"index": index, "status": "rejected", "error": {"code": code, "detail": detail}}
