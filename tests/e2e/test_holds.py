"""Holds: placing, capturing (in parts), releasing and expiring them, and what they do to
the available balance now and as of a past moment; races over HTTP."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from e2e_helpers import (
    AUTO,
    RFC3339,
    UNKNOWN_ID,
    ReadYourWritesClient,
    account,
    deposit,
    funded_account,
    get,
    loc_names,
    new_customer,
    ok,
    open_account,
    post,
    problem,
    race,
    transfer,
    withdraw,
    wrote_at,
)
from httpx import Response

from infrastructure.settings import Settings
from interfaces.http.app import create_app

HOLD_FIELDS = {"hold_id", "account_id", "amount", "captured_amount", "currency", "status",
               "expires_at", "reference", "placed_at", "position"}


@pytest.fixture
def app(bank, database_url):
    # No sweeper here: each test decides when an expiry gets recorded (see the sweeper's
    # own test below).
    return create_app(Settings(database_url=database_url, hold_sweep_seconds=0), bank=bank)


class Clock:
    """The bank's clock: real time moved on by ``advance`` (events keep real times, so
    they never come after the bank's "now")."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock(bank) -> Clock:
    clock = Clock()
    bank.clock = clock
    return clock


# --- helpers -------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def place_hold(client, key, account_id: str, amount: str, currency: str = "EUR",
               idem: Any = AUTO, **fields: Any) -> Response:
    body = {"account_id": account_id, "amount": amount, "currency": currency, **fields}
    return post(client, "/v1/holds", key, body, idem=idem)


def capture(client, key, hold_id: str, idem: Any = AUTO, **fields: Any) -> Response:
    return post(client, f"/v1/holds/{hold_id}/capture", key, fields, idem=idem)


def release(client, key, hold_id: str, idem: Any = AUTO, **fields: Any) -> Response:
    return post(client, f"/v1/holds/{hold_id}/release", key, fields, idem=idem)


def hold_of(client, key, hold_id: str) -> dict:
    return ok(get(client, f"/v1/holds/{hold_id}", key), 200)


def holds_of(client, key, account_id: str, status: str | None = None) -> list[dict]:
    query = f"?status={status}" if status else ""
    return ok(get(client, f"/v1/accounts/{account_id}/holds{query}", key), 200)["holds"]


def balances(client, key, account_id: str) -> tuple[str, str, str]:
    """(ledger, held, available) as the account reads now."""
    acct = account(client, key, account_id)
    return acct["ledger_balance"], acct["held_amount"], acct["available_balance"]


def balance_as_of(client, key, account_id: str, as_of: str) -> tuple[str, str]:
    """(ledger, available) as booked at ``as_of``."""
    path = f"/v1/accounts/{account_id}/balance?as_of={as_of.replace('+', '%2B')}"
    found = ok(get(client, path, key), 200)
    return found["ledger_balance"], found["available_balance"]


def recorded_hold(bank, hold_id: str):
    """The hold as its own history records it (``status`` without reading the clock)."""
    return bank.reconstruct(UUID(hold_id))


def not_active(response: Response) -> dict:
    """A 409 hold_not_active problem. Its ``status`` member is not checked here: see
    test_hold_not_active_problem_status_is_the_http_status (it carries the hold's status)."""
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "hold_not_active"
    assert body["title"] and body["detail"]
    return body


def without_position(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "position"}




# --- placing ---------------------------------------------------------------------------


def test_a_hold_sets_money_aside(client, teller, clock):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    expires = clock() + timedelta(days=2)
    in_athens = expires.astimezone(timezone(timedelta(hours=2))).isoformat()
    placed = ok(place_hold(client, teller, aid, "30.5", reference="card 4411",
                           expires_at=in_athens), 201)
    assert set(placed) == HOLD_FIELDS
    assert (placed["account_id"], placed["amount"], placed["captured_amount"],
            placed["currency"], placed["status"], placed["reference"]) == (
        aid, "30.50", "0.00", "EUR", "active", "card 4411")
    assert placed["expires_at"] == iso(expires)  # the same moment, printed in UTC
    assert RFC3339.match(placed["placed_at"])
    assert isinstance(placed["position"], int)
    UUID(placed["hold_id"])

    assert hold_of(client, teller, placed["hold_id"]) == placed
    assert balances(client, teller, aid) == ("100.00", "30.50", "69.50")
    listed = ok(get(client, f"/v1/customers/{acct['customer_id']}/accounts", teller), 200)
    assert [(a["ledger_balance"], a["held_amount"], a["available_balance"])
            for a in listed["accounts"]] == [("100.00", "30.50", "69.50")]
    now = ok(get(client, f"/v1/accounts/{aid}/balance", teller), 200)
    assert (now["ledger_balance"], now["available_balance"]) == ("100.00", "69.50")


def test_a_hold_without_expiry_and_in_other_currencies(client, teller):
    jpy = funded_account(client, teller, "5000", "JPY")
    placed = ok(place_hold(client, teller, jpy["account_id"], "1200", "JPY"), 201)
    assert (placed["amount"], placed["captured_amount"], placed["expires_at"],
            placed["reference"]) == ("1200", "0", None, None)
    assert balances(client, teller, jpy["account_id"]) == ("5000", "1200", "3800")
    found = problem(capture(client, teller, placed["hold_id"], amount="1.5"), 422,
                    "validation_error")
    assert loc_names(found, "amount")
    assert ok(capture(client, teller, placed["hold_id"], amount="200"), 201)["amount"] == "200"
    assert balances(client, teller, jpy["account_id"]) == ("4800", "1000", "3800")
    kwd = funded_account(client, teller, "10.000", "KWD")
    assert ok(place_hold(client, teller, kwd["account_id"], "0.125", "KWD"), 201)[
        "amount"] == "0.125"
    assert balances(client, teller, kwd["account_id"]) == ("10.000", "0.125", "9.875")


def test_a_hold_must_fit_the_available_balance(client, teller):
    acct = funded_account(client, teller, "50.00", overdraft_limit="20.00")
    aid = acct["account_id"]
    problem(place_hold(client, teller, aid, "70.01"), 409, "insufficient_funds")
    ok(place_hold(client, teller, aid, "70.00"), 201)
    assert balances(client, teller, aid) == ("50.00", "70.00", "0.00")
    # Held money is not available to anything else.
    problem(place_hold(client, teller, aid, "0.01"), 409, "insufficient_funds")
    problem(withdraw(client, teller, aid, "0.01"), 409, "insufficient_funds")
    other = open_account(client, teller)
    problem(transfer(client, teller, aid, other["account_id"], "0.01"), 409,
            "insufficient_funds")
    ok(deposit(client, teller, aid, "10.00"), 201)
    ok(place_hold(client, teller, aid, "10.00"), 201)
    assert balances(client, teller, aid) == ("60.00", "80.00", "0.00")


MALFORMED_HOLD_FIELDS = [
    ("amount", "10.005"), ("amount", "0"), ("amount", "0.00"), ("amount", "-1.00"),
    ("amount", ".5"), ("amount", "1e3"), ("amount", 10), ("amount", None),
    ("currency", "eur"), ("currency", "XXY"),
    ("expires_at", "2020-01-01T00:00:00Z"), ("expires_at", "2030-01-01T00:00:00"),
    ("expires_at", 1900000000), ("expires_at", "tomorrow"),
    ("reference", "r" * 256), ("account_id", "acct-1"),
]


def test_malformed_holds_are_422(client, teller):
    acct = funded_account(client, teller, "100.00")
    for field, value in MALFORMED_HOLD_FIELDS:
        body = {"account_id": acct["account_id"], "amount": "10.00", "currency": "EUR",
                field: value}
        found = problem(post(client, "/v1/holds", teller, body), 422, "validation_error")
        assert loc_names(found, field), (field, value, found)
    assert holds_of(client, teller, acct["account_id"]) == []
    assert balances(client, teller, acct["account_id"]) == ("100.00", "0.00", "100.00")


def test_a_hold_expiring_now_is_422(client, teller, clock):
    acct = funded_account(client, teller, "100.00")
    found = problem(place_hold(client, teller, acct["account_id"], "1.00",
                               expires_at=iso(clock() - timedelta(seconds=1))), 422,
                    "validation_error")
    assert loc_names(found, "expires_at")
    problem(post(client, "/v1/holds", teller, {"account_id": acct["account_id"], "amount": "1.00",
                                               "currency": "EUR", "ammount": "1.00"}),
            422, "validation_error")
    assert holds_of(client, teller, acct["account_id"]) == []


def test_placing_a_hold_checks_in_the_contract_order(client, teller, admin, auditor,
                                                     compliance):
    acct = funded_account(client, teller, "10.00")
    aid = acct["account_id"]
    problem(place_hold(client, None, aid, "1.00"), 401, "unauthorized")
    problem(place_hold(client, auditor, aid, "1.00", idem=None), 403, "forbidden")
    problem(place_hold(client, compliance, aid, "1.00"), 403, "forbidden")
    problem(place_hold(client, teller, aid, "1.5.0", idem=None), 400,
            "idempotency_key_required")
    problem(place_hold(client, teller, UNKNOWN_ID, "1.5.0"), 422, "validation_error")
    problem(place_hold(client, teller, UNKNOWN_ID, "1.00"), 404, "not_found")
    ok(post(client, f"/v1/accounts/{aid}/freeze", admin, {"reason": "review"}), 200)
    problem(place_hold(client, teller, aid, "1.00", "USD"), 422, "currency_mismatch")
    problem(place_hold(client, teller, aid, "99.00"), 409, "account_frozen")
    problem(place_hold(client, teller, aid, "1.00"), 409, "account_frozen")
    closed = open_account(client, teller)
    ok(post(client, f"/v1/accounts/{closed['account_id']}/close", admin), 200)
    problem(place_hold(client, teller, closed["account_id"], "1.00"), 409, "account_closed")
    assert holds_of(client, teller, aid) == []


# --- capturing -------------------------------------------------------------------------


def test_capturing_all_by_default_credits_clearing(client, teller):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    held = ok(place_hold(client, teller, aid, "40.00", reference="fuel"), 201)
    txn = ok(capture(client, teller, held["hold_id"]), 201)
    assert (txn["kind"], txn["status"], txn["amount"], txn["currency"], txn["reference"]) == (
        "capture", "posted", "40.00", "EUR", "fuel")
    assert sorted(txn["entries"], key=lambda e: e["direction"]) == [
        {"account": "clearing", "direction": "credit", "amount": "40.00"},
        {"account": aid, "direction": "debit", "amount": "40.00"},
    ]
    assert txn["booked_at"] == txn["recorded_at"]
    assert isinstance(txn["position"], int)
    assert without_position(ok(get(client, f"/v1/transactions/{txn['transaction_id']}",
                                   teller), 200)) == without_position(txn)
    after = hold_of(client, teller, held["hold_id"])
    assert (after["status"], after["captured_amount"], after["amount"]) == (
        "captured", "40.00", "40.00")
    assert balances(client, teller, aid) == ("60.00", "0.00", "60.00")


def test_partial_captures_leave_the_rest_held(client, teller, admin):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    merchant = open_account(client, teller)
    mid = merchant["account_id"]
    # A frozen account still takes credits: a capture may go to it.
    ok(post(client, f"/v1/accounts/{mid}/freeze", admin, {"reason": "review"}), 200)
    hid = ok(place_hold(client, teller, aid, "50.00"), 201)["hold_id"]

    first = ok(capture(client, teller, hid, amount="20.00", to_account_id=mid), 201)
    assert sorted(first["entries"], key=lambda e: e["direction"]) == [
        {"account": mid, "direction": "credit", "amount": "20.00"},
        {"account": aid, "direction": "debit", "amount": "20.00"},
    ]
    part = hold_of(client, teller, hid)
    assert (part["status"], part["captured_amount"]) == ("active", "20.00")
    assert balances(client, teller, aid) == ("80.00", "30.00", "50.00")
    assert balances(client, teller, mid) == ("20.00", "0.00", "20.00")

    found = problem(capture(client, teller, hid, amount="30.01"), 409, "capture_exceeds_hold")
    assert found["status"] == 409
    assert hold_of(client, teller, hid)["captured_amount"] == "20.00"

    rest = ok(capture(client, teller, hid, amount="30.00"), 201)
    assert rest["amount"] == "30.00"
    done = hold_of(client, teller, hid)
    assert (done["status"], done["captured_amount"]) == ("captured", "50.00")
    assert balances(client, teller, aid) == ("50.00", "0.00", "50.00")

    not_active(capture(client, teller, hid, amount="0.01"))
    not_active(capture(client, teller, hid))
    not_active(release(client, teller, hid))
    assert balances(client, teller, aid) == ("50.00", "0.00", "50.00")


def test_the_default_capture_takes_what_remains(client, teller):
    acct = funded_account(client, teller, "10.00")
    hid = ok(place_hold(client, teller, acct["account_id"], "9.00"), 201)["hold_id"]
    ok(capture(client, teller, hid, amount="2.50"), 201)
    assert ok(capture(client, teller, hid), 201)["amount"] == "6.50"
    assert hold_of(client, teller, hid)["status"] == "captured"
    assert balances(client, teller, acct["account_id"]) == ("1.00", "0.00", "1.00")


def test_malformed_capture_amounts_are_422(client, teller):
    acct = funded_account(client, teller, "10.00")
    hid = ok(place_hold(client, teller, acct["account_id"], "5.00"), 201)["hold_id"]
    for amount in ("0", "0.00", "1.001", "ten", "-5.00", 5, "1e1", ""):
        found = problem(capture(client, teller, hid, amount=amount), 422, "validation_error")
        assert loc_names(found, "amount"), (amount, found)
    assert hold_of(client, teller, hid)["captured_amount"] == "0.00"
    assert balances(client, teller, acct["account_id"]) == ("10.00", "5.00", "5.00")


def test_capture_refusals_in_the_contract_order(client, teller, admin):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    hid = ok(place_hold(client, teller, aid, "40.00"), 201)["hold_id"]
    usd = open_account(client, teller, "USD")
    closed = open_account(client, teller)
    ok(post(client, f"/v1/accounts/{closed['account_id']}/close", admin), 200)

    problem(capture(client, teller, UNKNOWN_ID, amount="ten"), 422, "validation_error")
    problem(capture(client, teller, UNKNOWN_ID), 404, "not_found")
    problem(capture(client, teller, "hold-1"), 404, "not_found")
    problem(capture(client, teller, aid), 404, "not_found")  # an account is not a hold
    problem(capture(client, teller, hid, to_account_id=UNKNOWN_ID), 404, "not_found")
    assert loc_names(problem(capture(client, teller, hid, to_account_id="x"), 422,
                             "validation_error"), "to_account_id")
    problem(capture(client, teller, hid, to_account_id=aid), 422, "validation_error")
    problem(capture(client, teller, hid, to_account_id=usd["account_id"]), 422,
            "currency_mismatch")
    problem(capture(client, teller, hid, to_account_id=closed["account_id"]), 409,
            "account_closed")
    ok(post(client, f"/v1/accounts/{aid}/freeze", admin, {"reason": "review"}), 200)
    problem(capture(client, teller, hid, amount="40.01"), 409, "account_frozen")
    problem(capture(client, teller, hid), 409, "account_frozen")

    assert hold_of(client, teller, hid)["status"] == "active"
    assert balances(client, teller, aid) == ("100.00", "40.00", "60.00")
    assert balances(client, teller, usd["account_id"]) == ("0.00", "0.00", "0.00")


# --- releasing -------------------------------------------------------------------------


def test_releasing_frees_what_remains(client, teller):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    hid = ok(place_hold(client, teller, aid, "50.00"), 201)["hold_id"]
    ok(capture(client, teller, hid, amount="20.00"), 201)
    released = ok(release(client, teller, hid, reason="order cancelled"), 200)
    assert set(released) == HOLD_FIELDS
    assert (released["status"], released["amount"], released["captured_amount"]) == (
        "released", "50.00", "20.00")
    assert hold_of(client, teller, hid) == released
    assert balances(client, teller, aid) == ("80.00", "0.00", "80.00")
    not_active(release(client, teller, hid))
    not_active(capture(client, teller, hid))
    assert balances(client, teller, aid) == ("80.00", "0.00", "80.00")


def test_release_without_a_reason_and_its_refusals(client, teller):
    acct = funded_account(client, teller, "10.00")
    hid = ok(place_hold(client, teller, acct["account_id"], "4.00"), 201)["hold_id"]
    for bad in ({"reason": ""}, {"reason": "r" * 501}, {"reason": 7}, {"why": "x"}):
        problem(post(client, f"/v1/holds/{hid}/release", teller, bad), 422, "validation_error")
    problem(release(client, teller, UNKNOWN_ID), 404, "not_found")
    problem(release(client, teller, "not-a-hold"), 404, "not_found")
    assert ok(post(client, f"/v1/holds/{hid}/release", teller), 200)["status"] == "released"
    assert balances(client, teller, acct["account_id"]) == ("10.00", "0.00", "10.00")


def test_a_frozen_account_releases_but_neither_holds_nor_captures(client, teller, admin):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    url = f"/v1/accounts/{aid}"
    first = ok(place_hold(client, teller, aid, "30.00"), 201)["hold_id"]
    second = ok(place_hold(client, teller, aid, "20.00"), 201)["hold_id"]
    frozen = ok(post(client, f"{url}/freeze", admin, {"reason": "fraud check"}), 200)
    assert (frozen["status"], frozen["held_amount"], frozen["available_balance"]) == (
        "frozen", "50.00", "50.00")
    problem(place_hold(client, teller, aid, "1.00"), 409, "account_frozen")
    problem(capture(client, teller, first), 409, "account_frozen")
    assert ok(release(client, teller, first), 200)["status"] == "released"
    assert balances(client, teller, aid) == ("100.00", "20.00", "80.00")
    ok(post(client, f"{url}/unfreeze", admin), 200)
    ok(capture(client, teller, second), 201)
    assert balances(client, teller, aid) == ("80.00", "0.00", "80.00")


def test_no_capture_while_the_available_balance_is_below_zero(client, teller, admin):
    """A capture nets to zero on the available balance, but every debit but a reversal
    must leave it >= 0: after a reversal took it below, captures wait for funds."""
    aid = open_account(client, teller)["account_id"]
    first = ok(deposit(client, teller, aid, "100.00"), 201)
    ok(deposit(client, teller, aid, "30.00"), 201)
    hold_id = ok(place_hold(client, teller, aid, "100.00"), 201)["hold_id"]
    ok(post(client, f"/v1/transactions/{first['transaction_id']}/reverse", admin,
            {"reason": "returned cheque"}), 201)
    assert balances(client, teller, aid) == ("30.00", "100.00", "-70.00")
    problem(capture(client, teller, hold_id, amount="10.00"), 409, "insufficient_funds")
    ok(deposit(client, teller, aid, "70.00"), 201)
    ok(capture(client, teller, hold_id, amount="10.00"), 201)
    assert balances(client, teller, aid) == ("90.00", "90.00", "0.00")


def test_closing_needs_no_active_holds(client, teller, admin):
    acct = open_account(client, teller, overdraft_limit="50.00")
    aid = acct["account_id"]
    hid = ok(place_hold(client, teller, aid, "20.00"), 201)["hold_id"]
    assert balances(client, teller, aid) == ("0.00", "20.00", "30.00")
    problem(post(client, f"/v1/accounts/{aid}/close", admin), 409, "account_not_empty")
    ok(capture(client, teller, hid, amount="5.00"), 201)
    ok(deposit(client, teller, aid, "5.00"), 201)
    assert balances(client, teller, aid) == ("0.00", "15.00", "35.00")
    problem(post(client, f"/v1/accounts/{aid}/close", admin), 409, "account_not_empty")
    ok(release(client, teller, hid), 200)
    assert ok(post(client, f"/v1/accounts/{aid}/close", admin), 200)["status"] == "closed"
    problem(place_hold(client, teller, aid, "1.00"), 409, "account_closed")


def test_hold_not_active_problem_status_is_the_http_status(client, teller):
    acct = funded_account(client, teller, "10.00")
    hid = ok(place_hold(client, teller, acct["account_id"], "1.00"), 201)["hold_id"]
    ok(release(client, teller, hid), 200)
    problem(release(client, teller, hid), 409, "hold_not_active")


# --- listing and reading ---------------------------------------------------------------


def test_listing_an_accounts_holds_by_status(client, teller, clock):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    active = ok(place_hold(client, teller, aid, "1.00"), 201)["hold_id"]
    captured = ok(place_hold(client, teller, aid, "2.00"), 201)["hold_id"]
    released = ok(place_hold(client, teller, aid, "3.00"), 201)["hold_id"]
    lapsing = ok(place_hold(client, teller, aid, "4.00",
                            expires_at=iso(clock() + timedelta(minutes=5))), 201)["hold_id"]
    ok(capture(client, teller, captured), 201)
    ok(release(client, teller, released), 200)
    clock.advance(minutes=5)

    listed = holds_of(client, teller, aid)
    assert [h["hold_id"] for h in listed] == [active, captured, released, lapsing]
    assert [h["status"] for h in listed] == ["active", "captured", "released", "expired"]
    for listed_hold in listed:
        assert listed_hold == hold_of(client, teller, listed_hold["hold_id"])
    for status, hold_id in (("active", active), ("captured", captured),
                            ("released", released), ("expired", lapsing)):
        assert [h["hold_id"] for h in holds_of(client, teller, aid, status)] == [hold_id]
    other = funded_account(client, teller, "5.00")
    assert holds_of(client, teller, other["account_id"]) == []
    assert balances(client, teller, aid) == ("98.00", "1.00", "97.00")


def test_listing_refusals(client, teller):
    acct = open_account(client, teller)
    found = problem(get(client, f"/v1/accounts/{acct['account_id']}/holds?status=open", teller),
                    422, "validation_error")
    assert ["query", "status"] in [e["loc"] for e in found["errors"]]
    problem(get(client, f"/v1/accounts/{UNKNOWN_ID}/holds", teller), 404, "not_found")
    problem(get(client, f"/v1/holds/{UNKNOWN_ID}", teller), 404, "not_found")
    problem(get(client, f"/v1/holds/{acct['account_id']}", teller), 404, "not_found")
    problem(get(client, "/v1/holds/h-1", teller), 404, "not_found")
    problem(get(client, f"/v1/accounts/{acct['account_id']}/holds", None), 401, "unauthorized")
    problem(get(client, f"/v1/holds/{UNKNOWN_ID}", None), 401, "unauthorized")


@pytest.mark.parametrize("role", ["teller", "auditor", "compliance", "admin"])
def test_every_role_reads_holds(client, keys, role):
    acct = funded_account(client, keys["teller"], "10.00")
    placed = ok(place_hold(client, keys["teller"], acct["account_id"], "3.00"), 201)
    assert hold_of(client, keys[role], placed["hold_id"]) == placed
    assert [h["hold_id"] for h in holds_of(client, keys[role], acct["account_id"])] == [
        placed["hold_id"]]


@pytest.mark.parametrize("role", ["auditor", "compliance"])
def test_only_tellers_and_admins_act_on_holds(client, keys, role):
    acct = funded_account(client, keys["teller"], "10.00")
    hid = ok(place_hold(client, keys["admin"], acct["account_id"], "3.00"), 201)["hold_id"]
    problem(place_hold(client, keys[role], acct["account_id"], "1.00"), 403, "forbidden")
    problem(capture(client, keys[role], hid), 403, "forbidden")
    problem(release(client, keys[role], hid), 403, "forbidden")
    problem(capture(client, None, hid), 401, "unauthorized")
    problem(release(client, None, hid), 401, "unauthorized")
    assert hold_of(client, keys["teller"], hid)["status"] == "active"
    assert ok(capture(client, keys["admin"], hid, amount="1.00"), 201)["amount"] == "1.00"
    assert ok(release(client, keys["teller"], hid), 200)["status"] == "released"


@pytest.mark.parametrize("path", ["/v1/holds", f"/v1/holds/{UNKNOWN_ID}/capture",
                                  f"/v1/holds/{UNKNOWN_ID}/release"])
def test_hold_writes_need_an_idempotency_key(client, teller, path):
    problem(post(client, path, teller, {}, idem=None), 400, "idempotency_key_required")


def test_hold_writes_replay(client, teller):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    first = place_hold(client, teller, aid, "30.00", idem="hold-1")
    again = place_hold(client, teller, aid, "30.00", idem="hold-1")
    assert again.json() == ok(first, 201)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    problem(place_hold(client, teller, aid, "31.00", idem="hold-1"), 422,
            "idempotency_key_reused")
    hid = first.json()["hold_id"]
    assert balances(client, teller, aid) == ("100.00", "30.00", "70.00")

    refused = capture(client, teller, hid, idem="cap-1", amount="99.00")
    problem(refused, 409, "capture_exceeds_hold")
    retried = capture(client, teller, hid, idem="cap-1", amount="99.00")
    assert problem(retried, 409, "capture_exceeds_hold") == refused.json()
    assert retried.headers["idempotent-replayed"] == "true"

    taken = ok(capture(client, teller, hid, idem="cap-2", amount="10.00"), 201)
    retaken = capture(client, teller, hid, idem="cap-2", amount="10.00")
    assert retaken.status_code == 201 and retaken.json() == taken
    assert retaken.headers["idempotent-replayed"] == "true"

    freed = ok(release(client, teller, hid, idem="rel-1"), 200)
    refreed = release(client, teller, hid, idem="rel-1")
    assert refreed.status_code == 200 and refreed.json() == freed
    assert refreed.headers["idempotent-replayed"] == "true"
    assert balances(client, teller, aid) == ("90.00", "0.00", "90.00")


# --- expiry ----------------------------------------------------------------------------


def test_a_hold_reads_expired_the_moment_it_lapses(client, bank, teller, clock):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    expires = clock() + timedelta(hours=1)
    in_new_york = expires.astimezone(timezone(timedelta(hours=-5))).isoformat()
    hid = ok(place_hold(client, teller, aid, "40.00", expires_at=in_new_york), 201)["hold_id"]
    assert hold_of(client, teller, hid)["expires_at"] == iso(expires)
    clock.advance(minutes=59)
    assert hold_of(client, teller, hid)["status"] == "active"
    assert balances(client, teller, aid) == ("100.00", "40.00", "60.00")

    clock.advance(minutes=1)
    assert hold_of(client, teller, hid)["status"] == "expired"
    assert balances(client, teller, aid) == ("100.00", "0.00", "100.00")
    listed = ok(get(client, f"/v1/customers/{acct['customer_id']}/accounts", teller), 200)
    assert listed["accounts"][0]["available_balance"] == "100.00"
    assert [h["status"] for h in holds_of(client, teller, aid)] == ["expired"]
    assert recorded_hold(bank, hid).status == "active"  # no job was needed for that
    # The freed money is available at once.
    ok(place_hold(client, teller, aid, "100.00"), 201)


def test_acting_on_a_lapsed_hold_is_409_and_records_its_expiry(client, bank, teller, clock):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    expires = clock() + timedelta(minutes=10)
    hid = ok(place_hold(client, teller, aid, "25.00", expires_at=iso(expires)), 201)["hold_id"]
    ok(capture(client, teller, hid, amount="5.00"), 201)
    clock.advance(minutes=11)
    not_active(capture(client, teller, hid, amount="1.00"))
    recorded = recorded_hold(bank, hid)
    assert (recorded.status, recorded.ended_at) == ("expired", expires)  # booked at expires_at
    not_active(release(client, teller, hid))
    wrote_at(bank.last_position())
    after = hold_of(client, teller, hid)
    assert (after["status"], after["captured_amount"]) == ("expired", "5.00")
    assert balances(client, teller, aid) == ("95.00", "0.00", "95.00")
    # Recorded once: the second touch found nothing more to record.
    expiries = [e for e in bank.events.get(UUID(hid)) if type(e).__name__ == "Expired"]
    assert [e.expired_at for e in expiries] == [expires]


def test_releasing_a_lapsed_hold_is_409_and_records_its_expiry(client, bank, teller, clock):
    acct = funded_account(client, teller, "10.00")
    expires = clock() + timedelta(seconds=30)
    hid = ok(place_hold(client, teller, acct["account_id"], "10.00",
                        expires_at=iso(expires)), 201)["hold_id"]
    clock.advance(seconds=30)
    not_active(release(client, teller, hid))
    assert recorded_hold(bank, hid).status == "expired"


def test_a_lapsed_hold_does_not_keep_an_account_open(client, bank, admin, clock):
    acct = open_account(client, admin, overdraft_limit="10.00")
    aid = acct["account_id"]
    hid = ok(place_hold(client, admin, aid, "10.00",
                     expires_at=iso(clock() + timedelta(hours=1))), 201)["hold_id"]
    problem(post(client, f"/v1/accounts/{aid}/close", admin), 409, "account_not_empty")
    clock.advance(hours=2)
    assert ok(post(client, f"/v1/accounts/{aid}/close", admin), 200)["status"] == "closed"
    assert recorded_hold(bank, hid).status == "expired"


def test_a_frozen_account_still_expires_holds(client, bank, teller, admin, clock):
    acct = funded_account(client, teller, "10.00")
    aid = acct["account_id"]
    hid = ok(place_hold(client, teller, aid, "6.00",
                        expires_at=iso(clock() + timedelta(minutes=1))), 201)["hold_id"]
    ok(post(client, f"/v1/accounts/{aid}/freeze", admin, {"reason": "x"}), 200)
    assert balances(client, teller, aid) == ("10.00", "6.00", "4.00")  # the view has it
    clock.advance(minutes=1)
    assert bank.expire_lapsed_holds() == 1
    assert recorded_hold(bank, hid).status == "expired"
    wrote_at(bank.last_position())
    assert balances(client, teller, aid) == ("10.00", "0.00", "10.00")


def test_the_sweeper_records_expiries(bank, database_url, teller, clock):
    fast = create_app(Settings(database_url=database_url, hold_sweep_seconds=0.05), bank=bank)
    with ReadYourWritesClient(fast) as client:
        acct = funded_account(client, teller, "10.00")
        expires = clock() + timedelta(minutes=1)
        hid = ok(place_hold(client, teller, acct["account_id"], "4.00",
                            expires_at=iso(expires)), 201)["hold_id"]
        keep = ok(place_hold(client, teller, acct["account_id"], "1.00"), 201)["hold_id"]
        clock.advance(minutes=1)
        deadline = time.monotonic() + 10
        while recorded_hold(bank, hid).status != "expired" and time.monotonic() < deadline:
            time.sleep(0.02)
        recorded = recorded_hold(bank, hid)
        assert (recorded.status, recorded.ended_at) == ("expired", expires)
        assert recorded_hold(bank, keep).status == "active"
        wrote_at(bank.last_position())
        assert balances(client, teller, acct["account_id"]) == ("10.00", "1.00", "9.00")
        assert [h["status"] for h in holds_of(client, teller, acct["account_id"])] == [
            "expired", "active"]


# --- balances as of a past moment ----------------------------------------------------


def test_balance_as_of_follows_holds_placed_captured_and_released(client, teller):
    acct = open_account(client, teller)
    aid = acct["account_id"]

    def marker() -> str:
        """A moment after everything so far: the booking time of a 1.00 deposit."""
        return ok(deposit(client, teller, aid, "1.00"), 201)["booked_at"]

    funded = ok(deposit(client, teller, aid, "100.00"), 201)["booked_at"]
    hid = ok(place_hold(client, teller, aid, "30.00"), 201)["hold_id"]
    placed = marker()
    ok(capture(client, teller, hid, amount="10.00"), 201)
    captured = marker()
    ok(release(client, teller, hid), 200)
    released = marker()
    ok(place_hold(client, teller, aid, "50.00"), 201)

    assert balance_as_of(client, teller, aid, funded) == ("100.00", "100.00")
    assert balance_as_of(client, teller, aid, placed) == ("101.00", "71.00")
    assert balance_as_of(client, teller, aid, captured) == ("92.00", "72.00")
    assert balance_as_of(client, teller, aid, released) == ("93.00", "93.00")
    assert balances(client, teller, aid) == ("93.00", "50.00", "43.00")


def test_balance_as_of_counts_a_hold_only_until_it_expires(client, teller, admin, clock):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    ok(post(client, f"/v1/accounts/{aid}/limits", admin, {"overdraft_limit": "5.00"}), 200)
    expires = clock() + timedelta(hours=1)
    ok(place_hold(client, teller, aid, "40.00", expires_at=iso(expires)), 201)
    placed = ok(deposit(client, teller, aid, "1.00"), 201)["booked_at"]
    clock.advance(hours=3)
    assert balance_as_of(client, teller, aid, placed) == ("101.00", "66.00")
    just_before = iso(expires - timedelta(microseconds=1))
    assert balance_as_of(client, teller, aid, just_before) == ("101.00", "66.00")
    assert balance_as_of(client, teller, aid, iso(expires)) == ("101.00", "106.00")
    assert balance_as_of(client, teller, aid, iso(clock())) == ("101.00", "106.00")
    assert balances(client, teller, aid) == ("101.00", "0.00", "106.00")


def test_balance_as_of_a_captures_booking_time_does_not_count_it_twice(client, teller):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    hid = ok(place_hold(client, teller, aid, "30.00"), 201)["hold_id"]
    booked = ok(capture(client, teller, hid), 201)["booked_at"]
    # Before the capture: 100 ledger, 30 held; after it: 70 ledger, nothing held.
    # Never 70 ledger with 30 still held.
    assert balance_as_of(client, teller, aid, booked) == ("70.00", "70.00")


def test_balance_as_of_a_holds_placed_at_counts_it(client, teller):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    placed = ok(place_hold(client, teller, aid, "30.00"), 201)["placed_at"]
    assert balance_as_of(client, teller, aid, placed) == ("100.00", "70.00")


# --- races -----------------------------------------------------------------------------


def test_two_concurrent_full_captures_take_the_hold_once(client, teller):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    hid = ok(place_hold(client, teller, aid, "60.00"), 201)["hold_id"]
    responses = race(2, lambda _: capture(client, teller, hid))
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    not_active(loser)
    assert hold_of(client, teller, hid)["captured_amount"] == "60.00"
    assert balances(client, teller, aid) == ("40.00", "0.00", "40.00")


def test_eight_concurrent_partial_captures_never_take_more_than_held(client, teller):
    acct = funded_account(client, teller, "150.00")
    aid = acct["account_id"]
    merchant = open_account(client, teller)["account_id"]
    hid = ok(place_hold(client, teller, aid, "100.00"), 201)["hold_id"]

    def attempt(index: int) -> Response:
        to = {"to_account_id": merchant} if index % 2 else {}
        return capture(client, teller, hid, amount="25.00", **to)

    responses = race(8, attempt)
    taken = [r.json() for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(taken) == 4, [r.text for r in responses]
    # Served one after another: once all 100.00 are taken the hold is captured.
    for response in refused:
        not_active(response)
    assert sum(Decimal(t["amount"]) for t in taken) == Decimal("100.00")
    done = hold_of(client, teller, hid)
    assert (done["status"], done["captured_amount"]) == ("captured", "100.00")
    assert balances(client, teller, aid) == ("50.00", "0.00", "50.00")
    to_merchant = sum(Decimal(t["amount"]) for t in taken
                      if any(e["account"] == merchant for e in t["entries"]))
    assert Decimal(account(client, teller, merchant)["ledger_balance"]) == to_merchant


def test_a_capture_racing_a_release_one_wins(client, teller):
    acct = funded_account(client, teller, "50.00")
    aid = acct["account_id"]
    hid = ok(place_hold(client, teller, aid, "20.00"), 201)["hold_id"]
    responses = race(2, lambda i: capture(client, teller, hid) if i == 0
                     else release(client, teller, hid))
    captured, released = responses
    assert sorted([captured.status_code, released.status_code]) in ([200, 409], [201, 409])
    if captured.status_code == 201:
        not_active(released)
        assert balances(client, teller, aid) == ("30.00", "0.00", "30.00")
        assert hold_of(client, teller, hid)["status"] == "captured"
    else:
        not_active(captured)
        assert balances(client, teller, aid) == ("50.00", "0.00", "50.00")
        assert hold_of(client, teller, hid)["status"] == "released"


def test_holds_and_withdrawals_racing_never_overdraw(client, teller):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    responses = race(8, lambda i: place_hold(client, teller, aid, "30.00") if i % 2
                     else withdraw(client, teller, aid, "30.00"))
    posted = [r for r in responses if r.status_code == 201]
    assert len(posted) == 3, [r.text for r in responses]
    for response in responses:
        if response.status_code != 201:
            problem(response, 409, "insufficient_funds")
    withdrawn = sum(1 for r in posted if "transaction_id" in r.json())
    ledger = Decimal("100.00") - 30 * withdrawn
    held = Decimal(30 * (3 - withdrawn))
    assert balances(client, teller, aid) == (f"{ledger:.2f}", f"{held:.2f}", "10.00")


# --- a teller's system keeps its own books ---------------------------------------------


class Books:
    """What a teller's system expects of the bank, kept beside it: ledgers, limits, holds
    (with their expiry in minutes of the test clock) and which postings were reversed."""

    def __init__(self) -> None:
        self.ledger: dict[str, Decimal] = {}
        self.limit: dict[str, Decimal] = {}
        self.holds: dict[str, dict[str, Any]] = {}
        self.effects: dict[str, dict[str, Decimal]] = {}  # transaction -> account -> signed
        self.reversed: set[str] = set()
        self.reversals: set[str] = set()
        self.minutes = 0  # how far the clock was moved

    def status(self, hold_id: str) -> str:
        hold = self.holds[hold_id]
        lapses = hold["lapses_after"]
        if hold["status"] == "active" and lapses is not None and self.minutes > lapses:
            return "expired"
        return hold["status"]

    def held(self, account_id: str) -> Decimal:
        return sum((h["remaining"] for hid, h in self.holds.items()
                    if h["account"] == account_id and self.status(hid) == "active"), Decimal(0))

    def available(self, account_id: str) -> Decimal:
        return self.ledger[account_id] - self.held(account_id) + self.limit[account_id]

    def can_debit(self, account_id: str, amount: Decimal) -> bool:
        return self.available(account_id) >= amount

    def post(self, transaction_id: str, effects: dict[str, Decimal]) -> None:
        for account_id, signed in effects.items():
            self.ledger[account_id] += signed
        self.effects[transaction_id] = effects


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


class TellerSystem:
    """Random-ish teller work, each answer checked against the books as it comes."""

    def __init__(self, client, teller: str, admin: str, clock: Clock, seed: int) -> None:
        self.client, self.teller, self.admin, self.clock = client, teller, admin, clock
        self.random = random.Random(seed)
        self.books = Books()
        self.accounts: list[str] = []

    def amount(self, high: int = 9000) -> Decimal:
        return Decimal(self.random.randint(1, high)) / 100

    def pick(self) -> str:
        return self.random.choice(self.accounts)

    def two(self) -> tuple[str, str]:
        source, destination = self.random.sample(self.accounts, 2)
        return source, destination

    def open(self, customer_id: str, limit: str) -> None:
        acct = open_account(self.client, self.teller, customer_id=customer_id,
                            overdraft_limit=limit)
        self.accounts.append(acct["account_id"])
        self.books.ledger[acct["account_id"]] = Decimal(0)
        self.books.limit[acct["account_id"]] = Decimal(limit)

    def expect(self, response: Response, status: int, code: str | None = None) -> dict:
        assert response.status_code == status, response.text
        body = response.json()
        if code is not None:
            assert body["code"] == code, body
        return body

    # --- steps -------------------------------------------------------------------------

    def deposit(self) -> None:
        aid, amount = self.pick(), self.amount()
        txn = self.expect(deposit(self.client, self.teller, aid, money(amount)), 201)
        self.books.post(txn["transaction_id"], {aid: amount})

    def withdraw(self) -> None:
        aid, amount = self.pick(), self.amount()
        response = withdraw(self.client, self.teller, aid, money(amount))
        if self.books.can_debit(aid, amount):
            txn = self.expect(response, 201)
            self.books.post(txn["transaction_id"], {aid: -amount})
        else:
            self.expect(response, 409, "insufficient_funds")

    def transfer(self) -> None:
        (source, destination), amount = self.two(), self.amount()
        response = transfer(self.client, self.teller, source, destination, money(amount))
        if self.books.can_debit(source, amount):
            txn = self.expect(response, 201)
            self.books.post(txn["transaction_id"], {source: -amount, destination: amount})
        else:
            self.expect(response, 409, "insufficient_funds")

    def place(self) -> None:
        aid, amount = self.pick(), self.amount(4000)
        lapses_after = None
        fields: dict[str, Any] = {}
        if self.random.random() < 0.5:
            # Whole steps of 10 minutes are taken, so a hold set to lapse 5 + 10k minutes
            # on is active for k + 1 steps and expired after (real time adds seconds).
            minutes = 5 + 10 * self.random.randint(0, 2)
            fields["expires_at"] = iso(self.clock() + timedelta(minutes=minutes))
            lapses_after = self.books.minutes + minutes
        response = place_hold(self.client, self.teller, aid, money(amount), **fields)
        if self.books.can_debit(aid, amount):
            hold = self.expect(response, 201)
            self.books.holds[hold["hold_id"]] = {
                "account": aid, "remaining": amount, "captured": Decimal(0),
                "status": "active", "lapses_after": lapses_after}
        else:
            self.expect(response, 409, "insufficient_funds")

    def some_hold(self) -> str | None:
        """Mostly a hold that is still active, now and then any other."""
        active = [h for h in self.books.holds if self.books.status(h) == "active"]
        pool = active if active and self.random.random() < 0.8 else list(self.books.holds)
        return self.random.choice(pool) if pool else None

    def capture(self) -> None:
        hold_id = self.some_hold()
        if hold_id is None:
            return
        hold = self.books.holds[hold_id]
        fields: dict[str, Any] = {}
        taken = hold["remaining"]
        if self.random.random() < 0.6:  # a part, or now and then more than remains
            cents = int(taken * 100)
            taken = Decimal(self.random.randint(1, cents + cents // 4 + 1)) / 100
            fields["amount"] = money(taken)
        destination = None
        if self.random.random() < 0.5:
            destination = self.random.choice([a for a in self.accounts if a != hold["account"]])
            fields["to_account_id"] = destination
        response = capture(self.client, self.teller, hold_id, **fields)
        status = self.books.status(hold_id)
        if status != "active":
            self.expect(response, 409, "hold_not_active")
            hold["status"] = status  # an expiry gets recorded: it stays expired
        elif taken > hold["remaining"]:
            self.expect(response, 409, "capture_exceeds_hold")
        else:
            txn = self.expect(response, 201)
            effects = {hold["account"]: -taken}
            if destination is not None:
                effects[destination] = taken
            self.books.post(txn["transaction_id"], effects)
            hold["remaining"] -= taken
            hold["captured"] += taken
            if hold["remaining"] == 0:
                hold["status"] = "captured"

    def release(self) -> None:
        hold_id = self.some_hold()
        if hold_id is None:
            return
        response = release(self.client, self.teller, hold_id)
        status = self.books.status(hold_id)
        if status != "active":
            self.expect(response, 409, "hold_not_active")
            self.books.holds[hold_id]["status"] = status
        else:
            assert self.expect(response, 200)["status"] == "released"
            self.books.holds[hold_id]["status"] = "released"

    def reverse(self) -> None:
        if not self.books.effects:
            return
        tid = self.random.choice(list(self.books.effects))
        response = post(self.client, f"/v1/transactions/{tid}/reverse", self.admin,
                        {"reason": "books test"})
        if tid in self.books.reversals:
            self.expect(response, 422, "validation_error")
        elif tid in self.books.reversed:
            self.expect(response, 409, "already_reversed")
        else:
            txn = self.expect(response, 201)
            self.books.reversed.add(tid)
            self.books.reversals.add(txn["transaction_id"])
            self.books.post(txn["transaction_id"],
                            {a: -signed for a, signed in self.books.effects[tid].items()})

    def batch(self) -> None:
        atomic = self.random.random() < 0.4
        items, effects = [], []
        for _ in range(self.random.randint(1, 4)):
            kind, amount = self.random.choice(["deposit", "withdrawal", "transfer"]), self.amount()
            if kind == "transfer":
                source, destination = self.two()
                items.append({"type": kind, "from_account_id": source,
                              "to_account_id": destination, "amount": money(amount),
                              "currency": "EUR"})
                effects.append({source: -amount, destination: amount})
            else:
                aid = self.pick()
                items.append({"type": kind, "account_id": aid, "amount": money(amount),
                              "currency": "EUR", "channel": "cash"})
                effects.append({aid: amount if kind == "deposit" else -amount})
        response = post(self.client, "/v1/batches", self.teller,
                        {"atomic": atomic, "items": items})
        # Run the items against a copy of the ledgers, in order.
        saved = dict(self.books.ledger)
        fits = []
        for effect in effects:
            debited = [(a, -s) for a, s in effect.items() if s < 0]
            fit = all(self.books.can_debit(a, amount) for a, amount in debited)
            fits.append(fit)
            if fit:
                for account_id, signed in effect.items():
                    self.books.ledger[account_id] += signed
        self.books.ledger = saved
        if atomic and not all(fits):
            found = self.expect(response, 409, "batch_rejected")
            assert [i["index"] for i in found["items"]] == [
                i for i, fit in enumerate(fits) if not fit]
            return
        body = self.expect(response, 201)
        for result, effect, fit in zip(body["results"], effects, fits, strict=True):
            assert result["status"] == ("posted" if fit else "rejected"), body
            if fit:
                self.books.post(result["transaction"]["transaction_id"], effect)
            else:
                assert result["error"]["code"] == "insufficient_funds"

    def tick(self) -> None:
        self.clock.advance(minutes=10)
        self.books.minutes += 10

    # --- checks ------------------------------------------------------------------------

    def check(self, customer_id: str) -> None:
        listed = ok(get(self.client, f"/v1/customers/{customer_id}/accounts", self.teller),
                    200)["accounts"]
        expected = [(a, money(self.books.ledger[a]), money(self.books.held(a)),
                     money(self.books.available(a))) for a in self.accounts]
        assert [(a["account_id"], a["ledger_balance"], a["held_amount"],
                 a["available_balance"]) for a in listed] == expected
        for account_id, ledger, held, available in expected:
            assert balances(self.client, self.teller, account_id) == (ledger, held, available)
            now = ok(get(self.client, f"/v1/accounts/{account_id}/balance", self.teller), 200)
            assert (now["ledger_balance"], now["available_balance"]) == (ledger, available)
            shown = {h["hold_id"]: (h["status"], h["captured_amount"])
                     for h in holds_of(self.client, self.teller, account_id)}
            assert shown == {
                hid: (self.books.status(hid), money(h["captured"]))
                for hid, h in self.books.holds.items() if h["account"] == account_id}


@pytest.mark.parametrize("seed", [7, 2026])
def test_a_teller_system_keeps_its_own_books(client, teller, admin, clock, seed):
    work = TellerSystem(client, teller, admin, clock, seed)
    customer_id = new_customer(client, teller)["customer_id"]
    for limit in ("0.00", "0.00", "50.00", "200.00"):
        work.open(customer_id, limit)
    for account_id in work.accounts:
        ok(deposit(client, teller, account_id, "100.00"), 201)
        work.books.ledger[account_id] += Decimal("100.00")
    steps = [work.deposit, work.withdraw, work.transfer, work.place, work.place, work.capture,
             work.capture, work.release, work.reverse, work.batch, work.batch, work.tick]
    for step in range(90):
        work.random.choice(steps)()
        if step % 30 == 29:
            work.check(customer_id)
    work.check(customer_id)
