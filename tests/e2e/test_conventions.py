"""Conventions: auth and roles, the order of checks, money, request ids, problem documents."""

from __future__ import annotations

import uuid

import pytest
from e2e_helpers import (
    UNKNOWN_ID,
    account,
    balance,
    deposit,
    funded_account,
    get,
    loc_names,
    new_customer,
    ok,
    open_account,
    patch,
    post,
    problem,
    transfer,
    withdraw,
)

# ------------------------------------------------------------------------------ auth


def test_missing_authorization_is_401(client):
    problem(client.get(f"/v1/accounts/{UNKNOWN_ID}"), 401, "unauthorized")
    problem(post(client, "/v1/customers", None, {"name": "x"}), 401, "unauthorized")


@pytest.mark.parametrize(
    "authorization", ["Bearer bo_not-a-real-key", "Bearer ", "Basic dXNlcjpwYXNz", "bo_raw"]
)
def test_unknown_or_malformed_key_is_401(client, teller, authorization):
    response = client.get(
        f"/v1/accounts/{UNKNOWN_ID}", headers={"Authorization": authorization}
    )
    problem(response, 401, "unauthorized")


def test_revoked_key_is_401(client, bank, make_key, admin):
    view, secret = make_key("teller", "leaver")
    customer = new_customer(client, secret)
    ok(post(client, f"/v1/keys/{view['key_id']}/revoke", admin), 200)
    problem(get(client, f"/v1/customers/{customer['customer_id']}", secret), 401, "unauthorized")
    problem(post(client, "/v1/customers", secret, {"name": "B", "kind": "person",
                                                     "country": "FR"}), 401, "unauthorized")


FORBIDDEN_WRITES = [
    # (role, method, path template, body)
    ("teller", "POST", "/v1/accounts/{account}/freeze", {"reason": "fraud"}),
    ("teller", "POST", "/v1/accounts/{account}/unfreeze", None),
    ("teller", "POST", "/v1/accounts/{account}/close", None),
    ("teller", "POST", "/v1/accounts/{account}/limits", {"overdraft_limit": "100.00"}),
    ("teller", "POST", "/v1/keys/{key}/revoke", None),
    ("teller", "GET", "/v1/keys", None),
    ("compliance", "GET", "/v1/keys", None),
    ("compliance", "POST", "/v1/keys/{key}/revoke", None),
    ("auditor", "POST", "/v1/keys/{key}/revoke", None),
]
for _role in ("auditor", "compliance"):
    FORBIDDEN_WRITES += [
        (_role, "POST", "/v1/customers", {"name": "Eve", "kind": "person", "country": "DE"}),
        (_role, "PATCH", "/v1/customers/{customer}", {"occupation": "spy"}),
        (_role, "POST", "/v1/accounts", {"customer_id": "{customer}", "currency": "EUR"}),
        (_role, "POST", "/v1/deposits", {"account_id": "{account}", "amount": "5.00",
                                         "currency": "EUR", "channel": "cash"}),
        (_role, "POST", "/v1/withdrawals", {"account_id": "{account}", "amount": "5.00",
                                            "currency": "EUR", "channel": "cash"}),
        (_role, "POST", "/v1/transfers", {"from_account_id": "{account}",
                                          "to_account_id": "{other}", "amount": "5.00",
                                          "currency": "EUR"}),
        (_role, "POST", "/v1/accounts/{account}/freeze", {"reason": "x"}),
        (_role, "POST", "/v1/accounts/{account}/unfreeze", None),
        (_role, "POST", "/v1/accounts/{account}/close", None),
        (_role, "POST", "/v1/accounts/{account}/limits", {"overdraft_limit": "1.00"}),
    ]


def _fill(template, ids):
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: _fill(v, ids) for k, v in template.items()}
    return template


@pytest.mark.parametrize(
    ("role", "method", "path", "body"), FORBIDDEN_WRITES,
    ids=[f"{r}-{m}-{p}" for r, m, p, _ in FORBIDDEN_WRITES],
)
def test_role_restrictions_are_403(client, keys, make_key, role, method, path, body):
    acct = funded_account(client, keys["admin"], "50.00")
    other = open_account(client, keys["admin"])
    key_view, _ = make_key("teller", "victim")
    ids = {"account": acct["account_id"], "other": other["account_id"],
           "customer": acct["customer_id"], "key": key_view["key_id"]}
    url, payload = _fill(path, ids), _fill(body, ids)
    if method == "GET":
        response = get(client, url, keys[role])
    elif method == "PATCH":
        response = patch(client, url, keys[role], payload, idem="k-1")
    else:
        response = post(client, url, keys[role], payload, idem="k-1")
    body = problem(response, 403, "forbidden")
    assert body["status"] == 403
    # Nothing happened: the account and its balance are as they were.
    after = account(client, keys["admin"], acct["account_id"])
    assert after["status"] == "active"
    assert after["ledger_balance"] == "50.00"
    assert after["overdraft_limit"] == "0.00"
    assert balance(client, keys["admin"], other["account_id"]) == "0.00"
    listed = ok(get(client, "/v1/keys", keys["admin"]), 200)["keys"]
    assert all(k["revoked_at"] is None for k in listed)


@pytest.mark.parametrize("role", ["teller", "auditor", "compliance", "admin"])
def test_every_role_may_read_customers_accounts_and_transactions(client, keys, role):
    acct = funded_account(client, keys["teller"], "12.00")
    txn = ok(deposit(client, keys["teller"], acct["account_id"], "1.00"), 201)
    key = keys[role]
    assert ok(get(client, f"/v1/customers/{acct['customer_id']}", key), 200)["name"]
    listed = ok(get(client, f"/v1/customers/{acct['customer_id']}/accounts", key), 200)
    assert [a["account_id"] for a in listed["accounts"]] == [acct["account_id"]]
    assert ok(get(client, f"/v1/accounts/{acct['account_id']}", key), 200)[
        "ledger_balance"] == "13.00"
    assert ok(get(client, f"/v1/transactions/{txn['transaction_id']}", key), 200)[
        "amount"] == "1.00"


def test_teller_may_not_give_opened_at(client, teller, admin):
    customer = new_customer(client, teller)
    body = {"customer_id": customer["customer_id"], "currency": "EUR",
            "opened_at": "2024-01-02T09:00:00Z"}
    problem(post(client, "/v1/accounts", teller, body), 403, "forbidden")
    assert ok(get(client, f"/v1/customers/{customer['customer_id']}/accounts", teller),
              200)["accounts"] == []
    opened = ok(post(client, "/v1/accounts", admin, body), 201)
    assert opened["opened_at"] == "2024-01-02T09:00:00Z"


# ---------------------------------------------------------------- order of checks


def test_401_before_403(client, make_key, admin):
    acct = open_account(client, admin)
    url = f"/v1/accounts/{acct['account_id']}/freeze"  # admin only: a teller would be 403
    problem(post(client, url, "bo_unknown", {"reason": "x"}), 401, "unauthorized")
    view, secret = make_key("teller", "revoked-teller")
    ok(post(client, f"/v1/keys/{view['key_id']}/revoke", admin), 200)
    problem(post(client, url, secret, {"reason": "x"}), 401, "unauthorized")


def test_401_before_400_idempotency_key_required(client):
    problem(post(client, "/v1/deposits", None, {}, idem=None), 401, "unauthorized")


def test_403_before_400_idempotency_key_required(client, teller, auditor, admin):
    acct = open_account(client, admin)
    problem(post(client, f"/v1/accounts/{acct['account_id']}/close", teller, None, idem=None),
            403, "forbidden")
    problem(deposit(client, auditor, acct["account_id"], "1.00", idem=None), 403, "forbidden")


def test_403_before_validation_and_404(client, auditor, compliance):
    bad = {"account_id": UNKNOWN_ID, "amount": "1e3", "currency": "eur", "channel": "mail"}
    problem(post(client, "/v1/deposits", auditor, bad), 403, "forbidden")
    problem(post(client, "/v1/deposits", compliance, bad), 403, "forbidden")


def test_teller_opened_at_403_before_400_idempotency_key_required(client, teller):
    customer = new_customer(client, teller)
    body = {"customer_id": customer["customer_id"], "currency": "EUR",
            "opened_at": "2024-01-02T09:00:00Z"}
    problem(post(client, "/v1/accounts", teller, body, idem=None), 403, "forbidden")


def test_teller_opened_at_403_before_validation_error(client, teller):
    body = {"customer_id": "not-a-uuid", "currency": "EUR", "opened_at": "2024-01-02T09:00:00Z"}
    problem(post(client, "/v1/accounts", teller, body), 403, "forbidden")


def test_400_idempotency_key_required_before_validation(client, teller):
    bad = {"account_id": "nope", "amount": 10, "currency": "EUR", "channel": "cash"}
    problem(post(client, "/v1/deposits", teller, bad, idem=None), 400,
            "idempotency_key_required")
    problem(post(client, "/v1/deposits", teller, bad, idem="x" * 300), 400,
            "idempotency_key_required")


def test_reused_key_before_validation_and_404(client, teller):
    acct = open_account(client, teller)
    ok(deposit(client, teller, acct["account_id"], "5.00", idem="once"), 201)
    problem(deposit(client, teller, acct["account_id"], "1e3", idem="once"), 422,
            "idempotency_key_reused")
    problem(deposit(client, teller, UNKNOWN_ID, "5.00", idem="once"), 422,
            "idempotency_key_reused")
    assert balance(client, teller, acct["account_id"]) == "5.00"


def test_replay_before_the_current_state(client, teller):
    """A stored 409 replays even after the state changed (it would now succeed)."""
    acct = open_account(client, teller)
    first = problem(withdraw(client, teller, acct["account_id"], "5.00", idem="w"), 409,
                    "insufficient_funds")
    ok(deposit(client, teller, acct["account_id"], "100.00"), 201)
    again = withdraw(client, teller, acct["account_id"], "5.00", idem="w")
    assert problem(again, 409, "insufficient_funds") == first
    assert again.headers["idempotent-replayed"] == "true"
    assert balance(client, teller, acct["account_id"]) == "100.00"


def test_413_between_idempotency_and_validation(client, teller):
    acct = open_account(client, teller)
    huge = {"account_id": acct["account_id"], "amount": "1e3", "currency": "EUR",
            "channel": "cash", "reference": "x" * (5 * 1024 * 1024 + 1)}
    problem(post(client, "/v1/deposits", teller, huge, idem="big"), 413, "payload_too_large")
    ok(deposit(client, teller, acct["account_id"], "1.00", idem="small"), 201)
    problem(post(client, "/v1/deposits", teller, huge, idem="small"), 422,
            "idempotency_key_reused")
    assert balance(client, teller, acct["account_id"]) == "1.00"


def test_validation_before_404(client, teller):
    body = problem(deposit(client, teller, UNKNOWN_ID, "10.005"), 422, "validation_error")
    assert loc_names(body, "amount")
    body = problem(post(client, "/v1/accounts", teller,
                        {"customer_id": UNKNOWN_ID, "currency": "XYZ"}), 422,
                   "validation_error")
    assert loc_names(body, "currency")
    body = problem(transfer(client, teller, UNKNOWN_ID, UNKNOWN_ID, "5.00"), 422,
                   "validation_error")


def test_404_before_currency_mismatch(client, teller):
    usd = funded_account(client, teller, "50.00", "USD")
    problem(transfer(client, teller, usd["account_id"], UNKNOWN_ID, "5.00", "EUR"), 404,
            "not_found")
    problem(transfer(client, teller, UNKNOWN_ID, usd["account_id"], "5.00", "EUR"), 404,
            "not_found")
    problem(deposit(client, teller, UNKNOWN_ID, "5.00", "USD"), 404, "not_found")
    assert balance(client, teller, usd["account_id"]) == "50.00"


def test_currency_mismatch_before_account_closed(client, teller, admin):
    closed = open_account(client, teller)
    ok(post(client, f"/v1/accounts/{closed['account_id']}/close", admin), 200)
    problem(deposit(client, teller, closed["account_id"], "5.00", "USD"), 422,
            "currency_mismatch")
    problem(withdraw(client, teller, closed["account_id"], "5.00", "USD"), 422,
            "currency_mismatch")
    usd = funded_account(client, teller, "20.00", "USD")
    problem(transfer(client, teller, usd["account_id"], closed["account_id"], "5.00", "USD"),
            422, "currency_mismatch")


def test_account_closed_before_account_frozen(client, teller, admin):
    frozen = funded_account(client, teller, "20.00")
    ok(post(client, f"/v1/accounts/{frozen['account_id']}/freeze", admin,
            {"reason": "investigation"}), 200)
    closed = open_account(client, teller)
    ok(post(client, f"/v1/accounts/{closed['account_id']}/close", admin), 200)
    problem(transfer(client, teller, frozen["account_id"], closed["account_id"], "5.00"),
            409, "account_closed")
    assert balance(client, teller, frozen["account_id"]) == "20.00"


def test_account_frozen_before_insufficient_funds(client, teller, admin):
    frozen = funded_account(client, teller, "1.00")
    other = open_account(client, teller)
    ok(post(client, f"/v1/accounts/{frozen['account_id']}/freeze", admin, {"reason": "x"}), 200)
    problem(withdraw(client, teller, frozen["account_id"], "500.00"), 409, "account_frozen")
    problem(transfer(client, teller, frozen["account_id"], other["account_id"], "500.00"), 409,
            "account_frozen")


# ---------------------------------------------------------------------------- money

BAD_EUR_AMOUNTS = [10, 10.5, "10.005", ".5", "+5", "1e3", "007", "NaN", "Infinity", "-5",
                   "10.", "", " 10", "10 ", "10\n", "10.00\n", "1,00", "0x10", "１０",
                   "1000000000000000", None, ["10"], {"amount": "10"}]


@pytest.mark.parametrize("amount", BAD_EUR_AMOUNTS, ids=repr)
def test_malformed_money_is_a_validation_error(client, teller, amount):
    acct = open_account(client, teller)
    body = problem(deposit(client, teller, acct["account_id"], amount), 422, "validation_error")
    assert loc_names(body, "amount"), body
    assert balance(client, teller, acct["account_id"]) == "0.00"


@pytest.mark.parametrize("amount", ["0", "0.00", "0.0"])
def test_amounts_moved_must_be_positive(client, teller, amount):
    acct = funded_account(client, teller, "10.00")
    for move in (deposit, withdraw):
        body = problem(move(client, teller, acct["account_id"], amount), 422, "validation_error")
        assert loc_names(body, "amount")
    other = open_account(client, teller)
    problem(transfer(client, teller, acct["account_id"], other["account_id"], amount), 422,
            "validation_error")
    assert balance(client, teller, acct["account_id"]) == "10.00"


@pytest.mark.parametrize(
    ("currency", "amount", "printed"),
    [("EUR", "10.5", "10.50"), ("EUR", "10", "10.00"), ("EUR", "0.01", "0.01"),
     ("USD", "999999999999999.99", "999999999999999.99"),
     ("JPY", "1000", "1000"), ("KWD", "1.234", "1.234"), ("KWD", "7", "7.000"),
     ("KWD", "0.5", "0.500")],
)
def test_money_is_printed_with_exactly_the_minor_units(client, teller, currency, amount,
                                                        printed):
    acct = open_account(client, teller, currency)
    txn = ok(deposit(client, teller, acct["account_id"], amount, currency), 201)
    assert txn["amount"] == printed
    assert {e["amount"] for e in txn["entries"]} == {printed}
    after = account(client, teller, acct["account_id"])
    assert after["ledger_balance"] == printed
    assert after["available_balance"] == printed
    zero = "0" if currency == "JPY" else ("0.000" if currency == "KWD" else "0.00")
    assert after["overdraft_limit"] == zero
    assert after["held_amount"] == zero


@pytest.mark.parametrize(
    ("currency", "amount"),
    [("JPY", "1000.5"), ("JPY", "1000.0"), ("JPY", "1000."), ("KWD", "1.2345"),
     ("EUR", "1.001"), ("USD", "0.001")],
)
def test_more_decimals_than_the_currency_has_are_refused(client, teller, currency, amount):
    acct = open_account(client, teller, currency)
    body = problem(deposit(client, teller, acct["account_id"], amount, currency), 422,
                   "validation_error")
    assert loc_names(body, "amount")


@pytest.mark.parametrize("currency", ["XXX", "ABC", "eur", "EURO", "", 978])
def test_unknown_currency_is_a_validation_error(client, teller, currency):
    acct = open_account(client, teller)
    body = problem(deposit(client, teller, acct["account_id"], "1.00", currency), 422,
                   "validation_error")
    assert loc_names(body, "currency")
    customer = new_customer(client, teller)
    body = problem(post(client, "/v1/accounts", teller,
                        {"customer_id": customer["customer_id"], "currency": currency}),
                   422, "validation_error")
    assert loc_names(body, "currency")


# ------------------------------------------------------------- request ids, problems


def test_request_id_is_echoed(client, teller):
    r = get(client, f"/v1/accounts/{UNKNOWN_ID}", teller, extra={"X-Request-ID": "req-42"})
    assert r.headers["x-request-id"] == "req-42"
    r = client.get("/healthz", headers={"X-Request-ID": "health-1"})
    assert r.headers["x-request-id"] == "health-1"
    r = post(client, "/v1/customers", teller,
             {"name": "R", "kind": "person", "country": "DE"}, extra={"X-Request-ID": "c-9"})
    assert r.status_code == 201
    assert r.headers["x-request-id"] == "c-9"


def test_request_id_is_generated_when_absent(client, teller):
    first = get(client, f"/v1/accounts/{UNKNOWN_ID}", teller).headers["x-request-id"]
    second = client.get("/healthz").headers["x-request-id"]
    assert first and second and first != second
    uuid.UUID(first)
    uuid.UUID(second)


def test_problem_documents(client, teller):
    r = get(client, f"/v1/accounts/{UNKNOWN_ID}", teller)
    body = problem(r, 404, "not_found")
    assert set(body) >= {"type", "title", "status", "detail", "code"}
    r = post(client, "/v1/deposits", teller, {"amount": "x"})
    body = problem(r, 422, "validation_error")
    assert loc_names(body, "account_id") and loc_names(body, "channel")
    assert all(e["loc"][0] == "body" for e in body["errors"])


def test_unparseable_json_is_a_validation_error(client, teller):
    r = client.post("/v1/deposits", content=b"{not json",
                    headers={"Authorization": f"Bearer {teller}", "Idempotency-Key": "j",
                             "Content-Type": "application/json"})
    problem(r, 422, "validation_error")


def test_unknown_body_fields_are_refused(client, teller):
    acct = open_account(client, teller)
    body = problem(deposit(client, teller, acct["account_id"], "1.00", ammount="2.00"), 422,
                   "validation_error")
    assert loc_names(body, "ammount")
