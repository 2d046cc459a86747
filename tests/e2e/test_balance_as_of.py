"""GET /v1/accounts/{id}/balance?as_of=: balances as booked at a moment, from the views."""

from __future__ import annotations

from datetime import datetime, timedelta

from e2e_helpers import (
    UNKNOWN_ID,
    deposit,
    get,
    ok,
    open_account,
    post,
    problem,
    transfer,
    withdraw,
)


def _at(moment: str, shift_us: int = 0) -> str:
    when = datetime.fromisoformat(moment.replace("Z", "+00:00")) + timedelta(microseconds=shift_us)
    return when.isoformat().replace("+00:00", "Z")


def _balance(client, key, account_id, as_of=None):
    path = f"/v1/accounts/{account_id}/balance"
    if as_of is not None:
        path += f"?as_of={as_of.replace('+', '%2B')}"
    return ok(get(client, path, key), 200)


def test_balances_as_booked_at_each_moment(client, teller, admin):
    a = open_account(client, teller)["account_id"]
    b = open_account(client, teller)["account_id"]
    first = ok(deposit(client, teller, a, "100.00"), 201)
    second = ok(transfer(client, teller, a, b, "30.00"), 201)
    limit = ok(post(client, f"/v1/accounts/{a}/limits", admin, {"overdraft_limit": "50.00"}), 200)
    third = ok(withdraw(client, teller, a, "90.00"), 201)

    now = _balance(client, teller, a)
    assert now["account_id"] == a
    assert (now["ledger_balance"], now["available_balance"]) == ("-20.00", "30.00")
    assert now["position"] == third["position"]

    before_first = _balance(client, teller, a, _at(first["booked_at"], -1))
    assert (before_first["ledger_balance"], before_first["available_balance"]) == ("0.00", "0.00")
    at_first = _balance(client, teller, a, first["booked_at"])  # booked at or before counts
    assert (at_first["ledger_balance"], at_first["available_balance"]) == ("100.00", "100.00")
    assert at_first["position"] == first["position"]
    at_second = _balance(client, teller, a, second["booked_at"])
    assert (at_second["ledger_balance"], at_second["available_balance"]) == ("70.00", "70.00")
    # The limit raised later does not count before it was raised.
    assert limit["overdraft_limit"] == "50.00"
    destination = _balance(client, teller, b, second["booked_at"])
    assert destination["ledger_balance"] == "30.00"


def test_as_of_before_the_account_existed_is_zero(client, teller):
    a = open_account(client, teller)["account_id"]
    ok(deposit(client, teller, a, "5.00"), 201)
    early = _balance(client, teller, a, "2020-01-01T00:00:00Z")
    assert (early["ledger_balance"], early["available_balance"], early["position"]) == (
        "0.00", "0.00", None,
    )
    assert early["as_of"] == "2020-01-01T00:00:00Z"


def test_as_of_with_an_offset_is_the_same_moment(client, teller):
    a = open_account(client, teller, currency="JPY")["account_id"]
    txn = ok(deposit(client, teller, a, "1000", currency="JPY"), 201)
    utc = datetime.fromisoformat(txn["booked_at"].replace("Z", "+00:00"))
    tokyo = utc.astimezone(datetime.fromisoformat("2026-01-01T00:00:00+09:00").tzinfo)
    assert _balance(client, teller, a, tokyo.isoformat())["ledger_balance"] == "1000"


def test_bad_as_of_values_are_422(client, teller):
    a = open_account(client, teller)["account_id"]
    for bad in ("yesterday", "2026-11-23", "2026-11-23T10:00:00", "9999-01-01T00:00:00Z"):
        body = problem(get(client, f"/v1/accounts/{a}/balance?as_of={bad}", teller), 422,
                       "validation_error")
        assert ["query", "as_of"] in [e["loc"] for e in body["errors"]], bad


def test_unknown_account_is_404_and_every_role_reads(client, keys):
    problem(get(client, f"/v1/accounts/{UNKNOWN_ID}/balance", keys["teller"]), 404, "not_found")
    a = open_account(client, keys["teller"])["account_id"]
    for key in keys.values():
        assert _balance(client, key, a)["ledger_balance"] == "0.00"
    problem(get(client, f"/v1/accounts/{a}/balance", None), 401, "unauthorized")
