"""A customer and the KYC facts known about them; every change is an event."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.cause import Cause
from domain.countries import is_country_code
from domain.errors import ValidationFailed

KINDS = ("person", "organization")
RISK_RATINGS = ("low", "medium", "high")
ID_TYPES = ("passport", "national_id", "drivers_license", "ssn", "itin", "ein", "other")

REQUIRED_FIELDS = ("name", "kind", "country")
OPTIONAL_FIELDS = (
    "date_of_birth",
    "identification",
    "address",
    "occupation",
    "group_id",
    "risk_rating",
)
FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS


def _text(loc: tuple[str, ...], value: Any, max_len: int, errors: list) -> None:
    if not isinstance(value, str) or not value.strip():
        errors.append((loc, "must be a non-empty string"))
    elif len(value) > max_len:
        errors.append((loc, f"must be at most {max_len} characters"))


def _country(loc: tuple[str, ...], value: Any, errors: list) -> None:
    if not is_country_code(value):
        errors.append((loc, f"{value!r} is not an ISO 3166-1 alpha-2 country code"))


def check_customer_fields(fields: dict[str, Any], *, today: date) -> None:
    """Validate the fields given (all of them for a new customer, some for a change)."""
    errors: list[tuple[tuple[str, ...], str]] = []
    for name in fields:
        if name not in FIELDS:
            errors.append(((name,), "unknown field"))
    for name in REQUIRED_FIELDS:
        if name in fields and fields[name] is None:
            errors.append(((name,), "may not be null"))
    if fields.get("name") is not None:
        _text(("name",), fields["name"], 200, errors)
    if fields.get("kind") is not None and fields["kind"] not in KINDS:
        errors.append((("kind",), f"must be one of {KINDS}"))
    if fields.get("country") is not None:
        _country(("country",), fields["country"], errors)
    dob = fields.get("date_of_birth")
    if dob is not None and (not isinstance(dob, date) or dob > today):
        errors.append((("date_of_birth",), "must be a date not in the future"))
    ident = fields.get("identification")
    if ident is not None:
        if ident.get("type") not in ID_TYPES:
            errors.append((("identification", "type"), f"must be one of {ID_TYPES}"))
        _text(("identification", "number"), ident.get("number"), 64, errors)
        _country(("identification", "issuing_country"), ident.get("issuing_country"), errors)
    address = fields.get("address")
    if address is not None:
        for part, limit in (("street", 200), ("city", 100), ("postal_code", 20)):
            _text(("address", part), address.get(part), limit, errors)
        if address.get("region") is not None:
            _text(("address", "region"), address["region"], 100, errors)
        _country(("address", "country"), address.get("country"), errors)
    for name, limit in (("occupation", 200), ("group_id", 64)):
        if fields.get(name) is not None:
            _text((name,), fields[name], limit, errors)
    if fields.get("risk_rating") is not None and fields["risk_rating"] not in RISK_RATINGS:
        errors.append((("risk_rating",), f"must be one of {RISK_RATINGS}"))
    if errors:
        raise ValidationFailed(errors)


class Customer(Aggregate):
    class Registered(Aggregate.Created):
        details: dict[str, Any]
        cause: Cause

    class DetailsChanged(Aggregate.Event):
        changes: dict[str, Any]
        cause: Cause

    class AccountAdded(Aggregate.Event):
        account_id: UUID
        cause: Cause

    @event(Registered)
    def __init__(self, details: dict[str, Any], cause: Cause) -> None:
        self.details = {name: details.get(name) for name in FIELDS}
        self.account_ids: list[UUID] = []

    @classmethod
    def register(cls, details: dict[str, Any], cause: Cause, *, today: date) -> Customer:
        for name in REQUIRED_FIELDS:
            if name not in details:
                raise ValidationFailed.at((name,), "field required")
        details = {"risk_rating": "low", **details}
        check_customer_fields(details, today=today)
        return cls(details=details, cause=cause)

    def change(self, changes: dict[str, Any], cause: Cause, *, today: date) -> bool:
        """Record only what differs; returns False when nothing changed."""
        check_customer_fields(changes, today=today)
        effective = {k: v for k, v in changes.items() if self.details.get(k) != v}
        if not effective:
            return False
        self._change(changes=effective, cause=cause)
        return True

    def add_account(self, account_id: UUID, cause: Cause) -> None:
        self._add_account(account_id=account_id, cause=cause)

    @event(DetailsChanged)
    def _change(self, changes: dict[str, Any], cause: Cause) -> None:
        self.details = {**self.details, **changes}

    @event(AccountAdded)
    def _add_account(self, account_id: UUID, cause: Cause) -> None:
        self.account_ids = [*self.account_ids, account_id]
