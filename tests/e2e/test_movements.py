"""Money movements: deposits, withdrawals, transfers, their entries, and reading them back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from e2e_helpers import (
    RFC3339,
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
    problem,
    transfer,
    withdraw,
)

TRANSACTION_FIELDS = {"transaction_id", "kind", "status", "amount", "currency", "channel",
                      "reference", "conducted_by", "counterparty", "entries", "booked_at",
                      "recorded_at", "position"}
LEDGER_OF = {"cash": "cash", "cheque": "clearing", "wire": "clearing", "internal": "clearing"}


def assert_balanced(txn: dict) -> None:
    debits = sum(Decimal(e["amount"]) for e in txn["entries"] if e["direction"] == "debit")
    credits = sum(Decimal(e["amount"]) for e in txn["entries"] if e["direction"] == "credit")
    assert debits == credits == Decimal(txn["amount"])


def assert_well_formed(txn: dict, kind: str) -> None:
    assert set(txn) >= TRANSACTION_FIELDS
    assert txn["kind"] == kind
    assert txn["status"] == "posted"
    assert isinstance(txn["position"], int) and not isinstance(txn["position"], bool)
    assert RFC3339.match(txn["recorded_at"])
    assert txn["booked_at"] == txn["recorded_at"]
    assert_balanced(txn)


@pytest.mark.parametrize("channel", ["cash", "cheque", "wire", "internal"])
def test_deposit_per_channel(client, teller, channel):
    acct = open_account(client, teller)
    txn = ok(deposit(client, teller, acct["account_id"], "125.40", channel=channel), 201)
    assert_well_formed(txn, "deposit")
    assert (txn["amount"], txn["currency"], txn["channel"]) == ("125.40", "EUR", channel)
    assert sorted(txn["entries"], key=lambda e: e["direction"]) == [
        {"account": acct["account_id"], "direction": "credit", "amount": "125.40"},
        {"account": LEDGER_OF[channel], "direction": "debit", "amount": "125.40"},
    ]
    assert balance(client, teller, acct["account_id"]) == "125.40"


@pytest.mark.parametrize("channel", ["cash", "cheque", "wire", "internal"])
def test_withdrawal_per_channel(client, teller, channel):
    acct = funded_account(client, teller, "200.00")
    txn = ok(withdraw(client, teller, acct["account_id"], "75.25", channel=channel), 201)
    assert_well_formed(txn, "withdrawal")
    assert (txn["amount"], txn["channel"]) == ("75.25", channel)
    assert sorted(txn["entries"], key=lambda e: e["direction"]) == [
        {"account": LEDGER_OF[channel], "direction": "credit", "amount": "75.25"},
        {"account": acct["account_id"], "direction": "debit", "amount": "75.25"},
    ]
    after = account(client, teller, acct["account_id"])
    assert (after["ledger_balance"], after["available_balance"]) == ("124.75", "124.75")


def test_deposit_details_are_kept(client, teller):
    acct = open_account(client, teller)
    depositor = new_customer(client, teller, name="Runner")
    counterparty = {"name": "ACME Ltd", "account": "GB29NWBK60161331926819", "country": "GB"}
    txn = ok(deposit(client, teller, acct["account_id"], "9.99", channel="wire",
                     reference="INV-2026-001", conducted_by=depositor["customer_id"],
                     counterparty=counterparty), 201)
    assert txn["reference"] == "INV-2026-001"
    assert txn["conducted_by"] == depositor["customer_id"]
    assert txn["counterparty"] == counterparty
    read = ok(get(client, f"/v1/transactions/{txn['transaction_id']}", teller), 200)
    assert (read["reference"], read["conducted_by"], read["counterparty"]) == (
        "INV-2026-001", depositor["customer_id"], counterparty)


def test_deposit_refusals(client, teller):
    acct = open_account(client, teller)
    aid = acct["account_id"]
    assert loc_names(problem(deposit(client, teller, aid, "1.00", channel="ach"), 422,
                             "validation_error"), "channel")
    assert loc_names(problem(deposit(client, teller, aid, "1.00",
                                     counterparty={"country": "ZZ"}), 422,
                             "validation_error"), "country")
    assert loc_names(problem(deposit(client, teller, aid, "1.00", reference="r" * 256), 422,
                             "validation_error"), "reference")
    problem(deposit(client, teller, aid, "1.00", conducted_by=UNKNOWN_ID), 404, "not_found")
    problem(deposit(client, teller, aid, "1.00", "GBP"), 422, "currency_mismatch")
    assert balance(client, teller, aid) == "0.00"


def test_withdrawal_insufficient_funds(client, teller):
    acct = funded_account(client, teller, "10.00")
    aid = acct["account_id"]
    problem(withdraw(client, teller, aid, "10.01"), 409, "insufficient_funds")
    problem(withdraw(client, teller, aid, "5.00", "USD"), 422, "currency_mismatch")
    problem(withdraw(client, teller, UNKNOWN_ID, "5.00"), 404, "not_found")
    assert balance(client, teller, aid) == "10.00"
    ok(withdraw(client, teller, aid, "10.00"), 201)
    after = account(client, teller, aid)
    assert (after["ledger_balance"], after["available_balance"]) == ("0.00", "0.00")


def test_transfer(client, teller):
    source = funded_account(client, teller, "100.00")
    destination = funded_account(client, teller, "1.00")
    sid, did = source["account_id"], destination["account_id"]
    txn = ok(transfer(client, teller, sid, did, "60.10", reference="rent"), 201)
    assert_well_formed(txn, "transfer")
    assert (txn["amount"], txn["currency"], txn["channel"], txn["reference"]) == (
        "60.10", "EUR", "internal", "rent")
    assert sorted(txn["entries"], key=lambda e: e["direction"]) == [
        {"account": did, "direction": "credit", "amount": "60.10"},
        {"account": sid, "direction": "debit", "amount": "60.10"},
    ]
    assert balance(client, teller, sid) == "39.90"
    assert balance(client, teller, did) == "61.10"


def test_transfer_into_the_overdraft(client, teller):
    source = open_account(client, teller, "JPY", overdraft_limit="5000")
    destination = open_account(client, teller, "JPY")
    ok(transfer(client, teller, source["account_id"], destination["account_id"], "5000",
                "JPY"), 201)
    after = account(client, teller, source["account_id"])
    assert (after["ledger_balance"], after["available_balance"]) == ("-5000", "0")
    problem(transfer(client, teller, source["account_id"], destination["account_id"], "1",
                     "JPY"), 409, "insufficient_funds")
    assert balance(client, teller, destination["account_id"]) == "5000"


def test_transfer_to_the_same_account_is_a_validation_error(client, teller):
    acct = funded_account(client, teller, "10.00")
    body = problem(transfer(client, teller, acct["account_id"], acct["account_id"], "1.00"),
                   422, "validation_error")
    assert body["errors"]
    assert balance(client, teller, acct["account_id"]) == "10.00"


def test_transfer_currency_mismatch(client, teller):
    eur = funded_account(client, teller, "10.00", "EUR")
    usd = funded_account(client, teller, "10.00", "USD")
    for source, destination, currency in ((eur, usd, "EUR"), (eur, usd, "USD"),
                                          (usd, eur, "USD")):
        body = problem(transfer(client, teller, source["account_id"],
                                destination["account_id"], "1.00", currency), 422,
                       "currency_mismatch")
        assert body["status"] == 422
    assert balance(client, teller, eur["account_id"]) == "10.00"
    assert balance(client, teller, usd["account_id"]) == "10.00"


def test_transfer_insufficient_funds(client, teller):
    source = funded_account(client, teller, "10.00")
    destination = open_account(client, teller)
    problem(transfer(client, teller, source["account_id"], destination["account_id"],
                     "10.01"), 409, "insufficient_funds")
    assert balance(client, teller, source["account_id"]) == "10.00"
    assert balance(client, teller, destination["account_id"]) == "0.00"


def test_get_transaction(client, teller, auditor):
    acct = open_account(client, teller)
    written = ok(deposit(client, teller, acct["account_id"], "3.30", channel="cheque",
                         reference="chq 17"), 201)
    read = ok(get(client, f"/v1/transactions/{written['transaction_id']}", auditor), 200)
    assert {k: v for k, v in read.items() if k != "position"} == {
        k: v for k, v in written.items() if k != "position"}
    assert isinstance(read["position"], int)


@pytest.mark.parametrize("transaction_id", [UNKNOWN_ID, "txn-1", "0"])
def test_unknown_or_malformed_transaction_is_404(client, teller, transaction_id):
    problem(get(client, f"/v1/transactions/{transaction_id}", teller), 404, "not_found")


def test_an_account_id_is_not_a_transaction(client, teller):
    acct = open_account(client, teller)
    problem(get(client, f"/v1/transactions/{acct['account_id']}", teller), 404, "not_found")
    problem(get(client, f"/v1/accounts/{acct['customer_id']}", teller), 404, "not_found")


def test_positions_grow_with_every_write(client, teller):
    acct = open_account(client, teller)
    other = open_account(client, teller)
    positions = [acct["position"], other["position"]]
    positions.append(ok(deposit(client, teller, acct["account_id"], "10.00"), 201)["position"])
    positions.append(ok(withdraw(client, teller, acct["account_id"], "1.00"), 201)["position"])
    positions.append(ok(transfer(client, teller, acct["account_id"], other["account_id"],
                                 "2.00"), 201)["position"])
    assert all(isinstance(p, int) for p in positions)
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert client.get("/readyz").json()["position"] == positions[-1]
