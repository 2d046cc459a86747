"""Money: an exact Decimal amount in an ISO 4217 currency, never a float."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from domain.currencies import MINOR_UNITS
from domain.errors import ValidationFailed

# Major units as the contract prints them: no sign, no exponent, no leading zeros,
# at most 15 integer digits; the fraction is checked against the currency separately.
_MONEY_TEXT = re.compile(r"^(0|[1-9][0-9]{0,14})(\.([0-9]+))?$")


def minor_units(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise ValidationFailed.at(
            ("currency",), f"{currency!r} is not an ISO 4217 currency code"
        ) from None


def is_currency(code: object) -> bool:
    return isinstance(code, str) and code in MINOR_UNITS


def parse_amount(text: object, currency: str, loc: tuple[str | int, ...] = ("amount",)) -> Decimal:
    """Parse a contract money string for ``currency``; refuse anything else."""
    m = minor_units(currency)
    if not isinstance(text, str):
        raise ValidationFailed.at(loc, "money must be a JSON string such as \"10.50\"")
    match = _MONEY_TEXT.fullmatch(text)
    if match is None:
        raise ValidationFailed.at(loc, f"{text!r} is not a money amount in major units")
    fraction = match.group(3)
    if fraction is not None and (m == 0 or len(fraction) > m):
        raise ValidationFailed.at(
            loc, f"{currency} has {m} decimal places; {text!r} has more"
        )
    return Decimal(text)


def check_precision(amount: Decimal, currency: str, loc: tuple[str | int, ...] = ("amount",)) -> None:
    exponent = amount.as_tuple().exponent
    if not isinstance(exponent, int) or -exponent > minor_units(currency):
        raise ValidationFailed.at(loc, f"{amount} exceeds {currency}'s precision")


_QUANTUM = {code: Decimal(1).scaleb(-units) for code, units in MINOR_UNITS.items()}


def format_amount(amount: Decimal, currency: str) -> str:
    """Exactly the currency's minor units: "10.50", JPY "1000"."""
    quantum = _QUANTUM.get(currency)
    if quantum is None:
        quantum = Decimal(1).scaleb(-minor_units(currency))
    text = f"{amount.quantize(quantum):f}"
    return "0" + text[2:] if text.startswith("-0") and Decimal(text) == 0 else text


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("Money takes a Decimal amount, never a float")
        check_precision(self.amount, self.currency)

    @classmethod
    def parse(cls, text: object, currency: str) -> Money:
        return cls(parse_amount(text, currency), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def check_positive(self, loc: tuple[str | int, ...] = ("amount",)) -> None:
        if self.amount <= 0:
            raise ValidationFailed.at(loc, "amount must be greater than zero")

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __str__(self) -> str:
        return f"{format_amount(self.amount, self.currency)} {self.currency}"
