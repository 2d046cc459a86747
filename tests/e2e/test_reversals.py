"""Reversals: a new transaction mirroring the original, at most once, never on a closed
account, past the overdraft limit if need be; admin only; two at once."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_helpers import (
    AUTO,
    RFC3339,
    UNKNOWN_ID,
    account,
    deposit,
    funded_account,
    get,
    loc_names,
    ok,
    open_account,
    post,
    problem,
    race,
    transfer,
    withdraw,
)
from httpx import Response

FLIP = {"debit": "credit", "credit": "debit"}


def reverse(client, key, transaction_id: str, reason: Any = "posted in error",
            idem: Any = AUTO) -> Response:
    return post(client, f"/v1/transactions/{transaction_id}/reverse", key,
                {"reason": reason}, idem=idem)


def transaction(client, key, transaction_id: str) -> dict:
    return ok(get(client, f"/v1/transactions/{transaction_id}", key), 200)


def balances(client, key, account_id: str) -> tuple[str, str, str]:
    """(ledger, held, available) as the account reads now."""
    acct = account(client, key, account_id)
    return acct["ledger_balance"], acct["held_amount"], acct["available_balance"]


def mirrored(entries: list[dict]) -> list[dict]:
    return sorted(({**e, "direction": FLIP[e["direction"]]} for e in entries),
                  key=lambda e: (e["account"], e["direction"]))


def by_account(entries: list[dict]) -> list[dict]:
    return sorted(entries, key=lambda e: (e["account"], e["direction"]))




def hold_and_capture(client, key, account_id: str, amount: str, **fields: Any) -> dict:
    body = {"account_id": account_id, "amount": amount, "currency": "EUR"}
    hold = ok(post(client, "/v1/holds", key, body), 201)
    return ok(post(client, f"/v1/holds/{hold['hold_id']}/capture", key, fields), 201)


# --- what a reversal is ----------------------------------------------------------------


def test_reversing_a_deposit(client, teller, admin):
    acct = open_account(client, teller)
    aid = acct["account_id"]
    original = ok(deposit(client, teller, aid, "100.00", reference="dep 7"), 201)
    reversal = ok(reverse(client, admin, original["transaction_id"], "keyed twice"), 201)

    assert (reversal["kind"], reversal["status"], reversal["amount"], reversal["currency"],
            reversal["channel"], reversal["reference"]) == (
        "reversal", "posted", "100.00", "EUR", "cash", "dep 7")
    assert reversal["reverses"] == original["transaction_id"]
    assert "reversed_by" not in reversal
    assert by_account(reversal["entries"]) == mirrored(original["entries"])
    assert RFC3339.match(reversal["recorded_at"])
    assert reversal["booked_at"] == reversal["recorded_at"]
    assert reversal["recorded_at"] > original["recorded_at"]
    assert isinstance(reversal["position"], int) and reversal["position"] > original["position"]

    was = transaction(client, teller, original["transaction_id"])
    assert (was["status"], was["reversed_by"]) == ("reversed", reversal["transaction_id"])
    assert {k: v for k, v in was.items() if k not in ("status", "reversed_by", "position")} == {
        k: v for k, v in original.items() if k not in ("status", "position")}
    read = transaction(client, teller, reversal["transaction_id"])
    assert {k: v for k, v in read.items() if k != "position"} == {
        k: v for k, v in reversal.items() if k != "position"}
    assert balances(client, teller, aid) == ("0.00", "0.00", "0.00")


@pytest.mark.parametrize("kind", ["wire deposit", "withdrawal", "transfer",
                                  "capture to clearing", "capture to an account"])
def test_a_reversal_mirrors_each_kind_and_restores_balances(client, teller, admin, kind):
    acct = funded_account(client, teller, "100.00")
    other = funded_account(client, teller, "10.00")
    aid, oid = acct["account_id"], other["account_id"]
    if kind == "wire deposit":
        original = ok(deposit(client, teller, aid, "20.00", channel="wire"), 201)
    elif kind == "withdrawal":
        original = ok(withdraw(client, teller, aid, "20.00", channel="cheque"), 201)
    elif kind == "transfer":
        original = ok(transfer(client, teller, aid, oid, "20.00"), 201)
    elif kind == "capture to clearing":
        original = hold_and_capture(client, teller, aid, "20.00")
    else:
        original = hold_and_capture(client, teller, aid, "20.00", to_account_id=oid)
    reversal = ok(reverse(client, admin, original["transaction_id"]), 201)
    assert (reversal["kind"], reversal["channel"], reversal["amount"]) == (
        "reversal", original["channel"], "20.00")
    assert by_account(reversal["entries"]) == mirrored(original["entries"])
    assert balances(client, teller, aid) == ("100.00", "0.00", "100.00")
    assert balances(client, teller, oid) == ("10.00", "0.00", "10.00")


def test_reversing_a_capture_leaves_the_hold_captured(client, teller, admin):
    acct = funded_account(client, teller, "50.00")
    aid = acct["account_id"]
    hold = ok(post(client, "/v1/holds", teller,
                   {"account_id": aid, "amount": "30.00", "currency": "EUR"}), 201)
    captured = ok(post(client, f"/v1/holds/{hold['hold_id']}/capture", teller, {}), 201)
    ok(reverse(client, admin, captured["transaction_id"]), 201)
    after = ok(get(client, f"/v1/holds/{hold['hold_id']}", teller), 200)
    assert (after["status"], after["captured_amount"]) == ("captured", "30.00")
    # The money comes back to the account, not back under the hold.
    assert balances(client, teller, aid) == ("50.00", "0.00", "50.00")


def test_a_reversal_may_take_an_account_past_its_limit(client, teller, admin):
    acct = open_account(client, teller, overdraft_limit="10.00")
    aid = acct["account_id"]
    credit = ok(deposit(client, teller, aid, "100.00"), 201)
    ok(withdraw(client, teller, aid, "80.00"), 201)
    ok(post(client, "/v1/holds", teller,
            {"account_id": aid, "amount": "25.00", "currency": "EUR"}), 201)
    ok(reverse(client, admin, credit["transaction_id"]), 201)
    # Never clamped: ledger -80, 25 still held, limit 10.
    assert balances(client, teller, aid) == ("-80.00", "25.00", "-95.00")
    problem(withdraw(client, teller, aid, "0.01"), 409, "insufficient_funds")
    ok(deposit(client, teller, aid, "100.00"), 201)
    assert balances(client, teller, aid) == ("20.00", "25.00", "5.00")


def test_a_frozen_account_takes_reversals_both_ways(client, teller, admin):
    acct = funded_account(client, teller, "100.00")
    aid = acct["account_id"]
    credit = ok(deposit(client, teller, aid, "40.00"), 201)
    debit = ok(withdraw(client, teller, aid, "15.00"), 201)
    ok(post(client, f"/v1/accounts/{aid}/freeze", admin, {"reason": "court order"}), 200)
    ok(reverse(client, admin, credit["transaction_id"]), 201)
    ok(reverse(client, admin, debit["transaction_id"]), 201)
    after = account(client, teller, aid)
    assert (after["status"], after["ledger_balance"]) == ("frozen", "100.00")


def test_a_closed_account_takes_no_reversal(client, teller, admin):
    acct = open_account(client, teller)
    source = funded_account(client, teller, "30.00")
    aid, sid = acct["account_id"], source["account_id"]
    credit = ok(deposit(client, teller, aid, "50.00"), 201)
    moved = ok(transfer(client, teller, sid, aid, "30.00"), 201)
    debit = ok(withdraw(client, teller, aid, "80.00"), 201)
    ok(post(client, f"/v1/accounts/{aid}/close", admin), 200)
    for original in (credit, moved, debit):
        problem(reverse(client, admin, original["transaction_id"]), 409, "account_closed")
        assert transaction(client, admin, original["transaction_id"])["status"] == "posted"
    assert balances(client, teller, sid) == ("0.00", "0.00", "0.00")
    assert account(client, teller, aid)["ledger_balance"] == "0.00"


def test_a_transaction_is_reversed_at_most_once(client, teller, admin):
    acct = funded_account(client, teller, "10.00")
    original = ok(deposit(client, teller, acct["account_id"], "5.00"), 201)
    tid = original["transaction_id"]
    first = ok(reverse(client, admin, tid, idem="rev-1"), 201)
    again = reverse(client, admin, tid, idem="rev-1")  # a retry: the same answer
    assert again.status_code == 201 and again.json() == first
    assert again.headers["idempotent-replayed"] == "true"
    found = problem(reverse(client, admin, tid), 409, "already_reversed")
    assert first["transaction_id"] in found["detail"]
    problem(reverse(client, admin, tid, reason="another reason"), 409, "already_reversed")
    assert account(client, teller, acct["account_id"])["ledger_balance"] == "10.00"


def test_a_reversal_is_not_reversed(client, teller, admin):
    acct = funded_account(client, teller, "10.00")
    original = ok(deposit(client, teller, acct["account_id"], "5.00"), 201)
    reversal = ok(reverse(client, admin, original["transaction_id"]), 201)
    problem(reverse(client, admin, reversal["transaction_id"]), 422, "validation_error")
    assert transaction(client, admin, reversal["transaction_id"])["status"] == "posted"
    assert account(client, teller, acct["account_id"])["ledger_balance"] == "10.00"


def test_a_reversal_needs_a_reason(client, teller, admin):
    acct = open_account(client, teller)
    original = ok(deposit(client, teller, acct["account_id"], "5.00"), 201)
    url = f"/v1/transactions/{original['transaction_id']}/reverse"
    for body, field in (({"reason": ""}, "reason"), ({"reason": "   "}, "reason"),
                        ({"reason": "r" * 501}, "reason"), ({"reason": 7}, "reason"),
                        ({"reason": None}, "reason"), ({}, "reason"),
                        ({"reason": "x", "note": "y"}, "note")):
        found = problem(post(client, url, admin, body), 422, "validation_error")
        assert loc_names(found, field), (body, found)
    assert transaction(client, admin, original["transaction_id"])["status"] == "posted"
    assert account(client, teller, acct["account_id"])["ledger_balance"] == "5.00"


def test_reversal_checks_in_the_contract_order(client, keys):
    teller, admin = keys["teller"], keys["admin"]
    acct = funded_account(client, teller, "10.00")
    tid = ok(deposit(client, teller, acct["account_id"], "5.00"), 201)["transaction_id"]
    problem(reverse(client, None, tid), 401, "unauthorized")
    for role in ("teller", "auditor", "compliance"):
        problem(reverse(client, keys[role], tid, idem=None), 403, "forbidden")
        problem(reverse(client, keys[role], tid), 403, "forbidden")
    problem(reverse(client, admin, tid, idem=None), 400, "idempotency_key_required")
    problem(reverse(client, admin, UNKNOWN_ID, ""), 422, "validation_error")
    problem(reverse(client, admin, UNKNOWN_ID), 404, "not_found")
    problem(reverse(client, admin, "txn-1"), 404, "not_found")
    problem(reverse(client, admin, acct["account_id"]), 404, "not_found")
    assert transaction(client, admin, tid)["status"] == "posted"
    assert account(client, teller, acct["account_id"])["ledger_balance"] == "15.00"


def test_account_closed_comes_before_already_reversed(client, teller, admin):
    acct = open_account(client, teller)
    aid = acct["account_id"]
    credit = ok(deposit(client, teller, aid, "5.00"), 201)
    ok(reverse(client, admin, credit["transaction_id"]), 201)
    ok(post(client, f"/v1/accounts/{aid}/close", admin), 200)
    problem(reverse(client, admin, credit["transaction_id"]), 409, "account_closed")


def test_balances_as_of_before_and_after_a_reversal(client, teller, admin):
    acct = open_account(client, teller)
    aid = acct["account_id"]
    credit = ok(deposit(client, teller, aid, "60.00"), 201)
    reversal = ok(reverse(client, admin, credit["transaction_id"]), 201)
    path = f"/v1/accounts/{aid}/balance?as_of="
    assert ok(get(client, path + credit["booked_at"], teller), 200)["ledger_balance"] == "60.00"
    assert ok(get(client, path + reversal["booked_at"], teller), 200)["ledger_balance"] == "0.00"
    entries = ok(get(client, f"/v1/accounts/{aid}/statement", teller), 200)["entries"]
    assert [(e["kind"], e["direction"], e["amount"], e["balance_after"]) for e in entries] == [
        ("deposit", "credit", "60.00", "60.00"), ("reversal", "debit", "60.00", "0.00")]


# --- races -----------------------------------------------------------------------------


@pytest.mark.parametrize("racers", [2, 8])
def test_concurrent_reversals_reverse_once(client, teller, admin, racers):
    acct = funded_account(client, teller, "10.00")
    tid = ok(deposit(client, teller, acct["account_id"], "25.00"), 201)["transaction_id"]
    responses = race(racers, lambda i: reverse(client, admin, tid, f"racer {i}"))
    assert sorted(r.status_code for r in responses) == [201] + [409] * (racers - 1), [
        r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 201)
    for response in responses:
        if response.status_code == 409:
            problem(response, 409, "already_reversed")
    assert transaction(client, admin, tid)["reversed_by"] == winner["transaction_id"]
    assert account(client, teller, acct["account_id"])["ledger_balance"] == "10.00"


def test_a_reversal_racing_a_withdrawal_keeps_the_books_straight(client, teller, admin):
    acct = open_account(client, teller)
    aid = acct["account_id"]
    credit = ok(deposit(client, teller, aid, "100.00"), 201)
    reversal, withdrawal = race(2, lambda i: reverse(client, admin, credit["transaction_id"])
                                if i == 0 else withdraw(client, teller, aid, "100.00"))
    assert reversal.status_code == 201, reversal.text
    if withdrawal.status_code == 201:  # first: the reversal then overdraws
        assert balances(client, teller, aid) == ("-100.00", "0.00", "-100.00")
    else:  # second: nothing left to withdraw
        problem(withdrawal, 409, "insufficient_funds")
        assert balances(client, teller, aid) == ("0.00", "0.00", "0.00")
