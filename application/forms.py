"""Checks of a request's form, made before anything is loaded (422s).

``at`` is where the checked fields sit in the body: ``()`` for a single request,
``("items", i)`` for a batch's item, so a refusal names the item.
"""

from __future__ import annotations

import re
from typing import Any

from domain.countries import is_country_code
from domain.errors import ValidationFailed
from domain.money import Money, is_currency, parse_amount

Loc = tuple[str | int, ...]

# A limit's or a capture's currency is known only once the account or hold is loaded,
# and unknown ids must answer 404 after form errors: so check the form first, the
# currency's precision after loading.
_DECIMAL_TEXT = re.compile(r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$")


def check_currency(currency: str, at: Loc = ()) -> None:
    if not is_currency(currency):
        raise ValidationFailed.at((*at, "currency"), f"{currency!r} is not an ISO 4217 code")


def money(amount: str, currency: str, at: Loc = ()) -> Money:
    """A positive amount in the currency's precision."""
    check_currency(currency, at)
    parsed = Money(parse_amount(amount, currency, (*at, "amount")), currency)
    parsed.check_positive((*at, "amount"))
    return parsed


def check_money_text(amount: Any, loc: Loc) -> None:
    if not isinstance(amount, str) or not _DECIMAL_TEXT.fullmatch(amount):
        raise ValidationFailed.at(loc, "must be a money string such as \"500.00\"")


def check_reference(reference: Any, at: Loc = ()) -> None:
    if reference is not None and (not isinstance(reference, str) or len(reference) > 255):
        raise ValidationFailed.at((*at, "reference"), "must be a string of at most 255 characters")


def check_counterparty(counterparty: dict[str, Any] | None, at: Loc = ()) -> None:
    country = (counterparty or {}).get("country")
    if country is not None and not is_country_code(country):
        raise ValidationFailed.at(
            (*at, "counterparty", "country"), f"{country!r} is not an ISO 3166-1 alpha-2 code"
        )


def check_reason(reason: Any, *, required: bool) -> None:
    if reason is None and not required:
        return
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise ValidationFailed.at(("reason",), "a reason of 1 to 500 characters is required")
