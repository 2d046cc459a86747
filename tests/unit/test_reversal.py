"""Reversals, in memory: a new transaction mirroring the original, at most once, posted
past limits and on frozen accounts but never on a closed account."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import project_aggregate

from application.bank import Bank
from domain import posting
from domain.account import Account
from domain.cause import Cause
from domain.errors import AccountClosed, AlreadyReversed, ValidationFailed
from domain.ledger import CASH, CLEARING, CREDIT, DEBIT, Entry
from domain.money import Money
from domain.transaction import POSTED, REVERSED, Transaction

CAUSE = Cause(actor_key_id="key-9", actor_role="admin", request_id="req-9", via="api")
D = Decimal
NOW = datetime(2030, 3, 1, 9, 30, tzinfo=UTC)


def eur(amount: str) -> Money:
    return Money(D(amount), "EUR")


def account_with(balance: str = "0", limit: str = "0") -> Account:
    account = Account.open(uuid4(), "EUR", CAUSE, overdraft_limit=D(limit))
    if D(balance):
        account.credit(uuid4(), D(balance), CAUSE)
    account.collect_events()
    return account


def settled(*aggregates: Account | Transaction) -> None:
    for aggregate in aggregates:
        aggregate.collect_events()


def test_a_reversal_mirrors_a_deposit_and_keeps_its_details() -> None:
    account = account_with()
    payer = uuid4()
    original = posting.deposit(account, eur("40.00"), "wire", CAUSE, reference="inv 7",
                               conducted_by=payer, counterparty={"name": "ACME"})
    settled(account, original)
    reversal = posting.reverse(original, {account.id: account}, "booked twice", CAUSE)
    assert reversal.kind == "reversal"
    assert reversal.reverses == original.id
    assert (reversal.amount, reversal.currency, reversal.channel) == (D("40.00"), "EUR", "wire")
    assert reversal.reference == "inv 7"
    assert reversal.conducted_by == payer
    assert reversal.counterparty == {"name": "ACME"}
    assert reversal.entries == [Entry(str(account.id), DEBIT, D("40.00")),
                                Entry(CLEARING, CREDIT, D("40.00"))]
    assert account.ledger_balance == 0


def test_the_original_is_marked_reversed_never_edited() -> None:
    account = account_with("100.00")
    original = posting.withdraw(account, eur("30.00"), "cash", CAUSE)
    entries = original.entries
    settled(account, original)
    reversal = posting.reverse(original, {account.id: account}, "teller error", CAUSE)
    assert original.status == REVERSED
    assert original.reversed_by == reversal.id
    assert original.entries == entries
    [marked] = original.collect_events()
    assert isinstance(marked, Transaction.Reversed)
    assert (marked.reversed_by, marked.reason) == (reversal.id, "teller error")
    assert reversal.entries == [Entry(str(account.id), CREDIT, D("30.00")),
                                Entry(CASH, DEBIT, D("30.00"))]
    assert reversal.status == POSTED
    assert account.ledger_balance == D("100.00")


def test_a_transfer_reversed_moves_the_money_back() -> None:
    source, destination = account_with("100.00"), account_with()
    original = posting.transfer(source, destination, eur("60.00"), CAUSE)
    settled(source, destination, original)
    reversal = posting.reverse(
        original, {source.id: source, destination.id: destination}, "wrong payee", CAUSE
    )
    assert reversal.entries == [e.mirrored() for e in original.entries]
    assert (source.ledger_balance, destination.ledger_balance) == (D("100.00"), 0)
    assert [type(e) for e in source.collect_events()] == [Account.FundsCredited]
    assert [type(e) for e in destination.collect_events()] == [Account.FundsDebited]


def test_a_reversal_may_take_an_account_below_its_limit_and_touch_a_frozen_one() -> None:
    account = account_with(limit="10.00")
    original = posting.deposit(account, eur("50.00"), "cash", CAUSE)
    account.debit(uuid4(), D("45.00"), CAUSE)
    account.freeze("review", CAUSE)
    settled(account, original)
    posting.reverse(original, {account.id: account}, "bounced", CAUSE)
    assert account.ledger_balance == D("-45.00")
    assert account.available_balance == D("-35.00")  # never clamped


def test_a_reversal_is_refused_on_a_closed_account_and_changes_nothing() -> None:
    source, destination = account_with("100.00"), account_with()
    original = posting.transfer(source, destination, eur("100.00"), CAUSE)
    source.close(CAUSE)
    settled(source, destination, original)
    with pytest.raises(AccountClosed) as refused:
        posting.reverse(
            original, {source.id: source, destination.id: destination}, "late", CAUSE
        )
    assert refused.value.code == "account_closed"
    assert original.status == POSTED
    assert destination.ledger_balance == D("100.00")
    for aggregate in (source, destination, original):
        assert aggregate.collect_events() == []


def test_a_transaction_is_reversed_at_most_once() -> None:
    account = account_with()
    original = posting.deposit(account, eur("5.00"), "cash", CAUSE)
    first = posting.reverse(original, {account.id: account}, "once", CAUSE)
    settled(account, original)
    with pytest.raises(AlreadyReversed) as refused:
        posting.reverse(original, {account.id: account}, "twice", CAUSE)
    assert refused.value.code == "already_reversed"
    assert refused.value.extra()["reversed_by"] == str(first.id)
    assert original.reversed_by == first.id
    assert account.ledger_balance == 0
    assert account.collect_events() == original.collect_events() == []


def test_a_closed_account_comes_before_already_reversed() -> None:
    # the contract's order: 409 account_closed, then the other 409s
    account = account_with()
    original = posting.deposit(account, eur("5.00"), "cash", CAUSE)
    posting.reverse(original, {account.id: account}, "once", CAUSE)
    account.close(CAUSE)
    with pytest.raises(AccountClosed):
        posting.reverse(original, {account.id: account}, "twice", CAUSE)


def test_a_reversal_of_a_reversal_is_refused_before_anything_else() -> None:
    account = account_with()
    original = posting.deposit(account, eur("5.00"), "cash", CAUSE)
    reversal = posting.reverse(original, {account.id: account}, "once", CAUSE)
    account.close(CAUSE)
    with pytest.raises(ValidationFailed):
        posting.reverse(reversal, {account.id: account}, "undo the undo", CAUSE)


def test_a_reversal_is_not_reversed_again() -> None:
    account = account_with()
    original = posting.deposit(account, eur("5.00"), "cash", CAUSE)
    reversal = posting.reverse(original, {account.id: account}, "once", CAUSE)
    with pytest.raises(ValidationFailed):
        posting.reverse(reversal, {account.id: account}, "undo the undo", CAUSE)
    assert reversal.status == POSTED


def test_replaying_a_reversed_transaction_rebuilds_it() -> None:
    account = account_with()
    original = posting.deposit(account, eur("5.00"), "cash", CAUSE)
    reversal = posting.reverse(original, {account.id: account}, "once", CAUSE)
    rebuilt = project_aggregate(None, original.collect_events())
    assert rebuilt == original
    assert rebuilt.reversed_by == reversal.id


# ------------------------------------------------------------ through the Bank


def test_the_bank_reverses_once_and_puts_the_money_back(memory_bank: Bank) -> None:
    bank = memory_bank
    bank.clock = lambda: NOW
    customer = bank.register_customer(
        {"name": "Ada Lovelace", "kind": "person", "country": "GB"}, CAUSE
    ).body["customer_id"]
    account = UUID(bank.open_account(UUID(customer), "EUR", CAUSE).body["account_id"])
    deposited = bank.deposit(account, "25.00", "EUR", "cheque", CAUSE).body
    txn = UUID(deposited["transaction_id"])
    reversal = bank.reverse_transaction(txn, "bounced", CAUSE)
    assert reversal.body["kind"] == "reversal"
    assert reversal.body["reverses"] == str(txn)
    assert reversal.body["booked_at"] == reversal.body["recorded_at"]
    shown = bank.get_transaction(txn)
    assert (shown["status"], shown["reversed_by"]) == (
        "reversed", reversal.body["transaction_id"]
    )
    assert bank.get_account(account)["ledger_balance"] == "0.00"
    assert bank.internal_balances()["EUR"][CLEARING] == 0
    before = bank.last_position()
    with pytest.raises(AlreadyReversed):
        bank.reverse_transaction(txn, "again", CAUSE)
    assert bank.last_position() == before
