"""The Customer aggregate: KYC fields, every change an event, in memory."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.application import project_aggregate

from domain.cause import Cause
from domain.customer import FIELDS, Customer
from domain.errors import ValidationFailed

CAUSE = Cause(actor_key_id="key-3", actor_role="teller", request_id="req-3", via="api")
TODAY = date(2026, 3, 1)

FULL: dict[str, Any] = {
    "name": "Ada Lovelace",
    "kind": "person",
    "country": "GB",
    "date_of_birth": date(1990, 12, 10),
    "identification": {"type": "passport", "number": "X123", "issuing_country": "GB"},
    "address": {"street": "1 Main St", "city": "London", "postal_code": "N1",
                "country": "GB"},
    "occupation": "engineer",
    "group_id": "G-1",
    "risk_rating": "medium",
}


def register(**details: Any) -> Customer:
    return Customer.register({"name": "Ada", "kind": "person", "country": "GB", **details},
                             CAUSE, today=TODAY)


def test_a_customer_keeps_every_field_and_defaults_risk_to_low() -> None:
    customer = Customer.register(dict(FULL), CAUSE, today=TODAY)
    assert customer.details == FULL
    assert set(customer.details) == set(FIELDS)
    assert customer.account_ids == []
    assert register().details["risk_rating"] == "low"
    assert register().details["occupation"] is None


@pytest.mark.parametrize("missing", ["name", "kind", "country"])
def test_name_kind_and_country_are_required(missing: str) -> None:
    details = {"name": "Ada", "kind": "person", "country": "GB"}
    del details[missing]
    with pytest.raises(ValidationFailed) as refused:
        Customer.register(details, CAUSE, today=TODAY)
    assert refused.value.errors[0][0] == (missing,)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "   "),
        ("name", "x" * 201),
        ("name", 5),
        ("kind", "robot"),
        ("country", "gb"),
        ("country", "XX"),
        ("country", "GBR"),
        ("date_of_birth", date(2026, 3, 2)),  # tomorrow
        ("risk_rating", "extreme"),
        ("identification", {"type": "library_card", "number": "1", "issuing_country": "GB"}),
        ("identification", {"type": "passport", "number": "", "issuing_country": "GB"}),
        ("identification", {"type": "passport", "number": "1", "issuing_country": "ZZ"}),
        ("address", {"street": "s", "city": "c", "postal_code": "p", "country": "ZZ"}),
        ("address", {"street": "", "city": "c", "postal_code": "p", "country": "GB"}),
        ("occupation", ""),
        ("group_id", "g" * 65),
        ("favourite_colour", "blue"),
    ],
)
def test_bad_fields_are_refused_naming_them(field: str, value: Any) -> None:
    with pytest.raises(ValidationFailed) as refused:
        register(**{field: value})
    assert refused.value.errors[0][0][0] == field


def test_a_person_born_today_is_accepted() -> None:
    assert register(date_of_birth=TODAY).details["date_of_birth"] == TODAY


def test_all_errors_are_reported_together() -> None:
    with pytest.raises(ValidationFailed) as refused:
        Customer.register({"name": "", "kind": "robot", "country": "XX"}, CAUSE, today=TODAY)
    assert {loc for loc, _ in refused.value.errors} == {("name",), ("kind",), ("country",)}


def test_a_change_records_only_what_differs() -> None:
    customer = register(occupation="teacher")
    customer.collect_events()
    assert customer.change({"occupation": "teacher", "risk_rating": "high"}, CAUSE,
                           today=TODAY) is True
    [changed] = customer.collect_events()
    assert isinstance(changed, Customer.DetailsChanged)
    assert changed.changes == {"risk_rating": "high"}
    assert customer.details["risk_rating"] == "high"
    assert customer.details["occupation"] == "teacher"


def test_a_change_that_changes_nothing_records_nothing() -> None:
    customer = register()
    customer.collect_events()
    version = customer.version
    assert customer.change({"name": "Ada"}, CAUSE, today=TODAY) is False
    assert customer.collect_events() == []
    assert customer.version == version


@pytest.mark.parametrize("changes", [{"name": None}, {"country": "XX"}, {"nickname": "A"}])
def test_a_bad_change_is_refused_and_records_nothing(changes: dict[str, Any]) -> None:
    customer = register()
    customer.collect_events()
    with pytest.raises(ValidationFailed):
        customer.change(changes, CAUSE, today=TODAY)
    assert customer.collect_events() == []
    assert customer.details["name"] == "Ada"


def test_events_are_explicit_past_tense_classes_and_replay() -> None:
    customer = register()
    account_id = uuid4()
    customer.change({"group_id": "G-7"}, CAUSE, today=TODAY)
    customer.add_account(account_id, CAUSE)
    events = list(customer.collect_events())
    assert [type(e).__qualname__ for e in events] == [
        "Customer.Registered", "Customer.DetailsChanged", "Customer.AccountAdded",
    ]
    assert all(e.cause == CAUSE for e in events)
    rebuilt = project_aggregate(None, events)
    assert rebuilt == customer
    assert rebuilt.account_ids == [account_id]
    assert rebuilt.details["group_id"] == "G-7"
    # history shows what was known when
    assert project_aggregate(None, events[:1]).details["group_id"] is None
