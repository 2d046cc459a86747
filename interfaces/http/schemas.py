"""Request bodies as the contract writes them. Money stays a string here: its form
depends on the currency, and the application checks it exactly."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field


def _text_only(value: Any) -> Any:
    # JSON carries dates and timestamps as strings; a number is not a date here
    # (lax parsing would read 1700000000 as a Unix time).
    if not isinstance(value, str):
        raise ValueError("must be a string in ISO 8601 / RFC 3339 form")
    return value


IsoDate = Annotated[date, BeforeValidator(_text_only)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_text_only)]


class Strict(BaseModel):
    # Unknown fields are refused: a misspelt "ammount" must not pass silently.
    model_config = ConfigDict(extra="forbid")


class IdentificationIn(Strict):
    type: Literal["passport", "national_id", "drivers_license", "ssn", "itin", "ein", "other"]
    number: str
    issuing_country: str


class AddressIn(Strict):
    street: str
    city: str
    region: str | None = None
    postal_code: str
    country: str


class CustomerChangeIn(Strict):
    name: str | None = None
    kind: Literal["person", "organization"] | None = None
    country: str | None = None
    date_of_birth: IsoDate | None = None
    identification: IdentificationIn | None = None
    address: AddressIn | None = None
    occupation: str | None = None
    group_id: str | None = None
    risk_rating: Literal["low", "medium", "high"] | None = None

    def fields(self) -> dict:
        return self.model_dump(exclude_unset=True)


class CustomerIn(CustomerChangeIn):
    name: str
    kind: Literal["person", "organization"]
    country: str


class AccountIn(Strict):
    customer_id: UUID
    currency: str
    product: Literal["current", "savings"] = "current"
    overdraft_limit: str = "0"
    opened_at: Timestamp | None = None


class CounterpartyIn(Strict):
    name: str | None = None
    account: str | None = None
    country: str | None = None


class CashMovementIn(Strict):
    account_id: UUID
    amount: str
    currency: str
    channel: Literal["cash", "cheque", "wire", "internal"]
    reference: str | None = None
    conducted_by: UUID | None = None
    counterparty: CounterpartyIn | None = None


class TransferIn(Strict):
    from_account_id: UUID
    to_account_id: UUID
    amount: str
    currency: str
    reference: str | None = None


class FreezeIn(Strict):
    reason: str


class NoBody(Strict):
    pass


class LimitIn(Strict):
    overdraft_limit: str


class HoldIn(Strict):
    account_id: UUID
    amount: str
    currency: str
    reference: str | None = None
    expires_at: Timestamp | None = None


class CaptureIn(Strict):
    amount: str | None = None
    to_account_id: UUID | None = None


class ReleaseIn(Strict):
    reason: str | None = None


class ReverseIn(Strict):
    reason: str


class _CashItem(CashMovementIn):
    booked_at: Timestamp | None = None


class DepositItem(_CashItem):
    type: Literal["deposit"]


class WithdrawalItem(_CashItem):
    type: Literal["withdrawal"]


class TransferItem(Strict):
    type: Literal["transfer"]
    from_account_id: UUID
    to_account_id: UUID
    amount: str
    currency: str
    reference: str | None = None
    booked_at: Timestamp | None = None


BatchItemIn = Annotated[DepositItem | WithdrawalItem | TransferItem, Field(discriminator="type")]


class BatchIn(Strict):
    atomic: bool
    items: list[BatchItemIn]

    def item_dicts(self) -> list[dict[str, Any]]:
        return [
            {**item.model_dump(exclude={"counterparty"}),
             "counterparty": getattr(item, "counterparty", None)
             and item.counterparty.model_dump()}  # type: ignore[union-attr]
            for item in self.items
        ]


class RootIn(Strict):
    position: int = Field(ge=1)
    root: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


class VerifyIn(Strict):
    # A root kept outside the bank (from `backoffice audit seal`): the log must lead to it.
    expect_root: RootIn | None = None
