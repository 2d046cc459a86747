"""Batches: the items' form (application.batches.check_items), and a few batches
through the Bank on memory://."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.bank import Bank
from application.batches import MAX_ITEMS, check_items
from application.idempotency import Claim
from domain.cause import Cause
from domain.errors import BatchRejected, ValidationFailed
from infrastructure.bootstrap import bootstrap

CAUSE = Cause(actor_key_id="key-5", actor_role="admin", request_id="req-5", via="api")
NOW = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)
D = Decimal


def deposit(amount: str = "10.00", currency: str = "EUR", **more: Any) -> dict[str, Any]:
    return {"type": "deposit", "account_id": uuid4(), "amount": amount, "currency": currency,
            "channel": "cash", "reference": None, "conducted_by": None, "counterparty": None,
            "booked_at": None, **more}


def withdrawal(account_id: UUID, amount: str) -> dict[str, Any]:
    return {**deposit(amount), "type": "withdrawal", "account_id": account_id}


def transfer(source: UUID, destination: UUID, amount: str = "10.00") -> dict[str, Any]:
    return {"type": "transfer", "from_account_id": source, "to_account_id": destination,
            "amount": amount, "currency": "EUR", "reference": None, "booked_at": None}


def locs(refused: pytest.ExceptionInfo[ValidationFailed]) -> list[list[str | int]]:
    return [e["loc"] for e in refused.value.extra()["errors"]]


# ------------------------------------------------------------------- form


def test_well_formed_items_are_checked_in_order() -> None:
    source, destination = uuid4(), uuid4()
    items = [deposit("10.50"), transfer(source, destination, "3"), deposit("7", "JPY")]
    checked = check_items(items, NOW)
    assert [(c.index, c.type) for c in checked] == [(0, "deposit"), (1, "transfer"),
                                                    (2, "deposit")]
    assert checked[0].money.amount == D("10.50")
    assert checked[1].account_ids == (source, destination)
    assert checked[1].channel == "internal"


@pytest.mark.parametrize("count", [0, MAX_ITEMS + 1])
def test_a_batch_has_1_to_1000_items(count: int) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_items([deposit() for _ in range(count)], NOW)
    assert locs(refused) == [["items"]]


@pytest.mark.parametrize("count", [1, MAX_ITEMS])
def test_1_and_1000_items_are_fine(count: int) -> None:
    assert len(check_items([deposit() for _ in range(count)], NOW)) == count


def test_a_decreasing_booked_at_names_the_item() -> None:
    items = [
        deposit(booked_at=NOW - timedelta(hours=3)),
        deposit(booked_at=NOW - timedelta(hours=3)),  # equal is fine: non-decreasing
        deposit(),  # no booked_at: does not count
        deposit(booked_at=NOW - timedelta(hours=4)),
    ]
    with pytest.raises(ValidationFailed) as refused:
        check_items(items, NOW)
    assert locs(refused) == [["items", 3, "booked_at"]]


def test_a_future_booked_at_is_refused_now_is_not() -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_items([deposit(), deposit(booked_at=NOW + timedelta(microseconds=1))], NOW)
    assert locs(refused) == [["items", 1, "booked_at"]]
    [item] = check_items([deposit(booked_at=NOW)], NOW)
    assert item.booked_at == NOW


@pytest.mark.parametrize(("amount", "currency"), [("10.001", "EUR"), ("10.5", "JPY"),
                                                  ("1e3", "EUR"), ("0.00", "EUR")])
def test_a_bad_amount_names_the_item(amount: str, currency: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_items([deposit(), deposit(), deposit(amount, currency)], NOW)
    assert locs(refused) == [["items", 2, "amount"]]


def test_every_malformed_item_is_named_at_once() -> None:
    same = uuid4()
    items = [deposit("1.001"), deposit(), deposit(currency="EURO"), transfer(same, same)]
    with pytest.raises(ValidationFailed) as refused:
        check_items(items, NOW)
    assert locs(refused) == [["items", 0, "amount"], ["items", 2, "currency"],
                             ["items", 3, "to_account_id"]]


# ------------------------------------------------------------ through the Bank


def opened(bank: Bank, funds: str) -> UUID:
    customer = bank.register_customer(
        {"name": "Ada Lovelace", "kind": "person", "country": "GB"}, CAUSE
    ).body["customer_id"]
    account = UUID(bank.open_account(UUID(customer), "EUR", CAUSE).body["account_id"])
    bank.deposit(account, funds, "EUR", "cash", CAUSE)
    return account


def test_an_atomic_batch_with_a_failing_item_changes_nothing(memory_bank: Bank) -> None:
    bank = memory_bank
    bank.clock = lambda: NOW
    a, b = opened(bank, "100.00"), opened(bank, "5.00")
    before = bank.last_position()
    items = [transfer(a, b, "60.00"), withdrawal(b, "70.00"), withdrawal(a, "41.00")]
    with pytest.raises(BatchRejected) as refused:
        bank.post_batch(True, items, CAUSE)
    # in order against the running state: b has 65.00 when asked for 70.00
    assert [(i["index"], i["code"]) for i in refused.value.items] == [
        (1, "insufficient_funds"), (2, "insufficient_funds")
    ]
    assert bank.last_position() == before
    assert bank.get_account(a)["ledger_balance"] == "100.00"
    assert bank.get_account(b)["ledger_balance"] == "5.00"


def test_a_batch_that_is_not_atomic_posts_the_items_that_pass(memory_bank: Bank) -> None:
    bank = memory_bank
    bank.clock = lambda: NOW
    a, b = opened(bank, "100.00"), opened(bank, "5.00")
    items = [transfer(a, b, "60.00"), withdrawal(b, "70.00"), withdrawal(b, "65.00")]
    outcome = bank.post_batch(False, items, CAUSE)
    results = outcome.body["results"]
    assert [r["status"] for r in results] == ["posted", "rejected", "posted"]
    assert results[1]["error"]["code"] == "insufficient_funds"
    assert bank.get_account(a)["ledger_balance"] == "40.00"
    assert bank.get_account(b)["ledger_balance"] == "0.00"
    assert bank.get_batch(UUID(outcome.body["batch_id"])) == outcome.response()


def test_a_batch_retry_answers_what_was_answered_after_a_reversal(memory_bank: Bank) -> None:
    # A retry returns the stored answer: the transaction as posted, not as it is now.
    bank = memory_bank
    bank.clock = lambda: NOW
    a = opened(bank, "100.00")
    claim = Claim("key-5", "batch-1", "fingerprint")
    items = [withdrawal(a, "10.00")]
    first = bank.post_batch(False, items, CAUSE, claim=claim)
    txn = UUID(first.body["results"][0]["transaction"]["transaction_id"])
    bank.reverse_transaction(txn, "mistake", CAUSE)
    assert bank.get_transaction(txn)["status"] == "reversed"
    again = bank.post_batch(False, items, CAUSE, claim=claim)
    assert again.replayed
    assert again.body == first.body
    assert again.position == first.position


def test_an_atomic_batch_decides_on_what_another_process_wrote(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bank.sqlite"
    first = bootstrap(database_url=url, with_views=False)
    second = bootstrap(database_url=url, with_views=False)
    try:
        for bank in (first, second):
            bank.clock = lambda: NOW
        account = opened(second, "1.00")  # the second caches the account...
        first.deposit(account, "100.00", "EUR", "cash", CAUSE)  # ...one event behind
        items = [deposit("1.00", account_id=account), withdrawal(account, "50.00")]
        outcome = second.post_batch(True, items, CAUSE)
        assert [r["status"] for r in outcome.body["results"]] == ["posted", "posted"]
        assert second.get_account(account)["ledger_balance"] == "52.00"
    finally:
        first.close()
        second.close()
