"""The Transaction record and its entries, in memory."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import project_aggregate
from hypothesis import given
from hypothesis import strategies as st

from domain.cause import Cause
from domain.ledger import (
    CASH,
    CLEARING,
    CREDIT,
    DEBIT,
    Entry,
    check_balanced,
    internal_account_for,
)
from domain.transaction import POSTED, Transaction

CAUSE = Cause(actor_key_id="key-1", actor_role="teller", request_id="req-9", via="api")
D = Decimal


def deposit_entries(account: UUID, amount: str, internal: str = CASH) -> list[Entry]:
    return [Entry.credit(account, D(amount)), Entry.debit(internal, D(amount))]


def test_a_posted_transaction_keeps_what_it_was_given() -> None:
    account = uuid4()
    customer = uuid4()
    txn = Transaction.post(
        kind="deposit",
        amount=D("10.50"),
        currency="EUR",
        channel="cash",
        entries=deposit_entries(account, "10.50"),
        cause=CAUSE,
        reference="till 4",
        conducted_by=customer,
        counterparty={"name": "A. Payer", "country": "DE"},
    )
    assert txn.kind == "deposit"
    assert txn.amount == D("10.50")
    assert txn.currency == "EUR"
    assert txn.channel == "cash"
    assert txn.reference == "till 4"
    assert txn.conducted_by == customer
    assert txn.counterparty == {"name": "A. Payer", "country": "DE"}
    assert txn.entries == [
        Entry(str(account), CREDIT, D("10.50")),
        Entry(CASH, DEBIT, D("10.50")),
    ]
    assert txn.status == POSTED
    assert txn.reversed_by is None
    assert txn.reverses is None
    assert txn.customer_account_ids() == [account]


def test_booked_at_is_recorded_at_unless_given() -> None:
    txn = Transaction.post("deposit", D("1"), "JPY", "wire", deposit_entries(uuid4(), "1", CLEARING), CAUSE)
    assert txn.booked_at == txn.recorded_at == txn.created_on
    past = datetime(2025, 1, 2, 9, 30, tzinfo=UTC)
    imported = Transaction.post(
        "deposit", D("1"), "JPY", "wire", deposit_entries(uuid4(), "1", CLEARING), CAUSE,
        booked_at=past,
    )
    assert imported.booked_at == past
    assert imported.recorded_at == imported.created_on != past


@pytest.mark.parametrize(
    "entries",
    [
        [],
        [Entry.credit("a", D("10"))],
        [Entry.credit("a", D("10")), Entry.debit(CASH, D("9.99"))],
        [Entry.credit("a", D("10")), Entry.credit(CASH, D("10"))],
        [Entry.debit("a", D("5")), Entry.debit("b", D("5")), Entry.credit(CASH, D("9"))],
    ],
)
def test_unbalanced_entries_are_refused(entries: list[Entry]) -> None:
    with pytest.raises(ValueError, match="balance"):
        check_balanced(entries)
    with pytest.raises(ValueError, match="balance"):
        Transaction.post("transfer", D("10"), "EUR", "internal", entries, CAUSE)


def test_split_entries_that_balance_are_accepted() -> None:
    entries = [Entry.debit("a", D("5")), Entry.debit("b", D("5")), Entry.credit(CASH, D("10"))]
    check_balanced(entries)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        Transaction.post("gift", D("1"), "EUR", "cash", deposit_entries(uuid4(), "1"), CAUSE)


@pytest.mark.parametrize("amount", [D("0"), D("-1")])
def test_an_entry_moves_a_positive_amount(amount: Decimal) -> None:
    with pytest.raises(ValueError):
        Entry("a", CREDIT, amount)


def test_an_entry_is_a_debit_or_a_credit() -> None:
    with pytest.raises(ValueError):
        Entry("a", "charge", D("1"))


def test_entries_are_credit_positive_and_mirror() -> None:
    credit = Entry.credit("a", D("3"))
    debit = credit.mirrored()
    assert credit.signed_amount == D("3")
    assert debit == Entry("a", DEBIT, D("3"))
    assert debit.signed_amount == D("-3")
    assert Entry.from_dict(credit.as_dict()) == credit
    assert Entry.debit(CASH, D("1")).is_internal
    assert Entry.debit(CLEARING, D("1")).is_internal
    assert not Entry.debit(str(uuid4()), D("1")).is_internal


@pytest.mark.parametrize(
    ("channel", "internal"),
    [("cash", CASH), ("cheque", CLEARING), ("wire", CLEARING), ("internal", CLEARING)],
)
def test_cash_goes_through_the_vault_everything_else_through_clearing(
    channel: str, internal: str
) -> None:
    assert internal_account_for(channel) == internal


def test_the_one_event_is_an_explicit_past_tense_class_and_replays() -> None:
    txn = Transaction.post("withdrawal", D("7.25"), "EUR", "cheque",
                           [Entry.debit(uuid4(), D("7.25")), Entry.credit(CLEARING, D("7.25"))],
                           CAUSE, reference="r")
    events = list(txn.collect_events())
    assert [type(e) for e in events] == [Transaction.Posted]
    assert type(events[0]).__qualname__ == "Transaction.Posted"
    assert events[0].cause == CAUSE
    rebuilt = project_aggregate(None, events)
    assert rebuilt == txn
    assert rebuilt.entries == txn.entries


@st.composite
def balanced_entries(draw: st.DrawFn) -> list[Entry]:
    debits = draw(st.lists(st.integers(1, 10**6), min_size=1, max_size=4))
    total = sum(debits)
    cuts = sorted(draw(st.lists(st.integers(1, total - 1), max_size=3, unique=True))) if total > 1 else []
    bounds = [0, *cuts, total]
    credits = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
    entries = [Entry.debit(f"d{i}", D(n).scaleb(-2)) for i, n in enumerate(debits)]
    entries += [Entry.credit(f"c{i}", D(n).scaleb(-2)) for i, n in enumerate(credits)]
    return draw(st.permutations(entries))


@given(balanced_entries())
def test_any_balanced_set_of_entries_posts_and_nets_to_zero(entries: list[Entry]) -> None:
    txn = Transaction.post("transfer", D("1"), "EUR", "internal", list(entries), CAUSE)
    assert sum(e.signed_amount for e in txn.entries) == 0
    assert txn.entries == list(entries)
