"""Accounts: opening, reads, freeze/unfreeze/close, overdraft limits, available balance."""

from __future__ import annotations

import pytest
from e2e_helpers import (
    RFC3339,
    UNKNOWN_ID,
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
    transfer,
    withdraw,
)

ACCOUNT_FIELDS = {"account_id", "customer_id", "currency", "product", "status",
                  "ledger_balance", "available_balance", "held_amount", "overdraft_limit",
                  "opened_at", "version", "position"}


def test_open_with_defaults(client, teller):
    customer = new_customer(client, teller)
    body = ok(post(client, "/v1/accounts", teller,
                   {"customer_id": customer["customer_id"], "currency": "EUR"}), 201)
    assert set(body) >= ACCOUNT_FIELDS
    assert body["customer_id"] == customer["customer_id"]
    assert body["currency"] == "EUR"
    assert body["product"] == "current"
    assert body["status"] == "active"
    assert body["ledger_balance"] == "0.00"
    assert body["available_balance"] == "0.00"
    assert body["held_amount"] == "0.00"
    assert body["overdraft_limit"] == "0.00"
    assert RFC3339.match(body["opened_at"])
    assert isinstance(body["version"], int)
    assert isinstance(body["position"], int) and body["position"] > customer["position"]
    read = ok(get(client, f"/v1/accounts/{body['account_id']}", teller), 200)
    assert {k: v for k, v in read.items() if k != "position"} == {
        k: v for k, v in body.items() if k != "position"}
    assert isinstance(read["position"], int)


def test_open_savings_with_an_overdraft(client, teller):
    acct = open_account(client, teller, "USD", product="savings", overdraft_limit="500")
    assert acct["product"] == "savings"
    assert acct["overdraft_limit"] == "500.00"
    assert acct["ledger_balance"] == "0.00"
    assert acct["available_balance"] == "500.00"


def test_open_admin_with_opened_at(client, admin):
    acct = open_account(client, admin, opened_at="2023-06-30T22:15:00+02:00")
    assert acct["opened_at"] == "2023-06-30T20:15:00Z"


@pytest.mark.parametrize(
    ("change", "field"),
    [({"product": "checking"}, "product"), ({"overdraft_limit": "-1"}, "overdraft_limit"),
     ({"overdraft_limit": "1.005"}, "overdraft_limit"),
     ({"overdraft_limit": 100}, "overdraft_limit"), ({"currency": "usd"}, "currency"),
     ({"opened_at": "2999-01-01T00:00:00Z"}, "opened_at"),
     ({"opened_at": "2020-01-01T00:00:00"}, "opened_at"), ({"opened_at": 1700000000},
                                                            "opened_at")],
)
def test_open_refuses_bad_fields(client, admin, change, field):
    customer = new_customer(client, admin)
    body = {"customer_id": customer["customer_id"], "currency": "EUR", **change}
    assert loc_names(problem(post(client, "/v1/accounts", admin, body), 422,
                             "validation_error"), field)
    assert ok(get(client, f"/v1/customers/{customer['customer_id']}/accounts", admin),
              200)["accounts"] == []


def test_open_for_an_unknown_customer_is_404(client, teller):
    problem(post(client, "/v1/accounts", teller, {"customer_id": UNKNOWN_ID,
                                                  "currency": "EUR"}), 404, "not_found")


@pytest.mark.parametrize("account_id", [UNKNOWN_ID, "nope", "1"])
def test_unknown_or_malformed_account_is_404(client, admin, account_id):
    base = f"/v1/accounts/{account_id}"
    problem(get(client, base, admin), 404, "not_found")
    problem(post(client, f"{base}/freeze", admin, {"reason": "x"}), 404, "not_found")
    problem(post(client, f"{base}/unfreeze", admin), 404, "not_found")
    problem(post(client, f"{base}/close", admin), 404, "not_found")
    problem(post(client, f"{base}/limits", admin, {"overdraft_limit": "10.00"}), 404,
            "not_found")


def test_freeze_and_unfreeze(client, teller, admin):
    acct = funded_account(client, teller, "10.00")
    url = f"/v1/accounts/{acct['account_id']}"
    frozen = ok(post(client, f"{url}/freeze", admin, {"reason": "suspicious activity"}), 200)
    assert frozen["status"] == "frozen"
    assert frozen["ledger_balance"] == "10.00"
    assert frozen["version"] > acct["version"]
    assert isinstance(frozen["position"], int)
    assert account(client, teller, acct["account_id"])["status"] == "frozen"
    thawed = ok(post(client, f"{url}/unfreeze", admin), 200)
    assert thawed["status"] == "active"
    assert thawed["version"] == frozen["version"] + 1
    assert isinstance(thawed["position"], int) and thawed["position"] > frozen["position"]
    ok(withdraw(client, teller, acct["account_id"], "10.00"), 201)


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": 5}, None])
def test_freeze_needs_a_reason(client, admin, body):
    acct = open_account(client, admin)
    problem(post(client, f"/v1/accounts/{acct['account_id']}/freeze", admin, body), 422,
            "validation_error")
    assert account(client, admin, acct["account_id"])["status"] == "active"


def test_frozen_account_takes_credits_only(client, teller, admin):
    frozen = funded_account(client, teller, "50.00", overdraft_limit="100")
    other = funded_account(client, teller, "50.00")
    fid, oid = frozen["account_id"], other["account_id"]
    ok(post(client, f"/v1/accounts/{fid}/freeze", admin, {"reason": "court order"}), 200)

    assert ok(deposit(client, teller, fid, "5.00", channel="wire"), 201)["kind"] == "deposit"
    problem(withdraw(client, teller, fid, "1.00"), 409, "account_frozen")
    problem(withdraw(client, admin, fid, "1.00", channel="cheque"), 409, "account_frozen")
    problem(transfer(client, teller, fid, oid, "1.00"), 409, "account_frozen")
    incoming = ok(transfer(client, teller, oid, fid, "20.00"), 201)
    assert incoming["kind"] == "transfer"

    after = account(client, teller, fid)
    assert after["status"] == "frozen"
    assert after["ledger_balance"] == "75.00"
    assert after["available_balance"] == "175.00"
    assert account(client, teller, oid)["ledger_balance"] == "30.00"


def test_close_needs_a_zero_balance(client, teller, admin):
    acct = funded_account(client, teller, "15.00")
    url = f"/v1/accounts/{acct['account_id']}/close"
    problem(post(client, url, admin), 409, "account_not_empty")
    assert account(client, teller, acct["account_id"])["status"] == "active"
    ok(withdraw(client, teller, acct["account_id"], "15.00"), 201)
    closed = ok(post(client, url, admin), 200)
    assert closed["status"] == "closed"
    assert closed["ledger_balance"] == "0.00"
    assert isinstance(closed["position"], int)


def test_close_refuses_an_overdrawn_account(client, teller, admin):
    acct = open_account(client, teller, overdraft_limit="20")
    ok(withdraw(client, teller, acct["account_id"], "5.00"), 201)
    problem(post(client, f"/v1/accounts/{acct['account_id']}/close", admin), 409,
            "account_not_empty")


def test_closed_account_takes_nothing(client, teller, admin):
    acct = open_account(client, teller)
    other = funded_account(client, teller, "40.00")
    aid, oid = acct["account_id"], other["account_id"]
    ok(post(client, f"/v1/accounts/{aid}/close", admin), 200)
    problem(deposit(client, teller, aid, "5.00"), 409, "account_closed")
    problem(deposit(client, teller, aid, "5.00", channel="internal"), 409, "account_closed")
    problem(withdraw(client, teller, aid, "5.00"), 409, "account_closed")
    problem(transfer(client, teller, oid, aid, "5.00"), 409, "account_closed")
    problem(transfer(client, teller, aid, oid, "5.00"), 409, "account_closed")
    after = account(client, teller, aid)
    assert (after["status"], after["ledger_balance"]) == ("closed", "0.00")
    assert account(client, teller, oid)["ledger_balance"] == "40.00"


def test_a_frozen_account_at_zero_can_be_closed(client, teller, admin):
    acct = open_account(client, teller)
    url = f"/v1/accounts/{acct['account_id']}"
    ok(post(client, f"{url}/freeze", admin, {"reason": "x"}), 200)
    assert ok(post(client, f"{url}/close", admin), 200)["status"] == "closed"
    problem(deposit(client, teller, acct["account_id"], "1.00"), 409, "account_closed")


def test_limits_and_available_balance(client, teller, admin):
    acct = funded_account(client, teller, "30.00")
    aid = acct["account_id"]
    url = f"/v1/accounts/{aid}/limits"
    raised = ok(post(client, url, admin, {"overdraft_limit": "100"}), 200)
    assert raised["overdraft_limit"] == "100.00"
    assert raised["ledger_balance"] == "30.00"
    assert raised["available_balance"] == "130.00"
    assert isinstance(raised["position"], int)

    ok(withdraw(client, teller, aid, "110.00"), 201)
    drawn = account(client, teller, aid)
    assert drawn["ledger_balance"] == "-80.00"
    assert drawn["available_balance"] == "20.00"

    problem(withdraw(client, teller, aid, "20.01"), 409, "insufficient_funds")
    ok(withdraw(client, teller, aid, "20.00"), 201)
    at_limit = account(client, teller, aid)
    assert (at_limit["ledger_balance"], at_limit["available_balance"]) == ("-100.00", "0.00")

    # A limit may be cut below what is drawn: available goes negative, not clamped.
    cut = ok(post(client, url, admin, {"overdraft_limit": "40.00"}), 200)
    assert cut["overdraft_limit"] == "40.00"
    assert cut["ledger_balance"] == "-100.00"
    assert cut["available_balance"] == "-60.00"
    problem(withdraw(client, teller, aid, "0.01"), 409, "insufficient_funds")
    ok(deposit(client, teller, aid, "70.00"), 201)
    assert account(client, teller, aid)["available_balance"] == "10.00"


@pytest.mark.parametrize("limit", ["-1", "1e3", "1.001", 50, "", None, "+5"])
def test_limits_refuse_bad_amounts(client, admin, limit):
    acct = open_account(client, admin)
    body = problem(post(client, f"/v1/accounts/{acct['account_id']}/limits", admin,
                        {"overdraft_limit": limit}), 422, "validation_error")
    assert loc_names(body, "overdraft_limit")
    assert account(client, admin, acct["account_id"])["overdraft_limit"] == "0.00"


def test_limits_follow_the_account_currency(client, admin):
    jpy = open_account(client, admin, "JPY")
    url = f"/v1/accounts/{jpy['account_id']}/limits"
    # Known to be wrong only once the account is loaded: still a form error, not stored.
    for _ in range(2):
        r = post(client, url, admin, {"overdraft_limit": "100.5"}, idem="jpy-limit")
        assert loc_names(problem(r, 422, "validation_error"), "overdraft_limit")
        assert "idempotent-replayed" not in r.headers
    assert ok(post(client, url, admin, {"overdraft_limit": "5000"}, idem="jpy-limit"), 200)[
        "overdraft_limit"] == "5000"
    kwd = open_account(client, admin, "KWD", overdraft_limit="1.25")
    assert kwd["overdraft_limit"] == "1.250"
    assert kwd["available_balance"] == "1.250"
