"""The posting services: every check first, in the contract's order, then balanced entries."""

from __future__ import annotations

import itertools
from decimal import Decimal
from uuid import uuid4

import pytest
from eventsourcing.application import project_aggregate
from hypothesis import given
from hypothesis import strategies as st

from domain import posting
from domain.account import ACTIVE, CLOSED, FROZEN, Account
from domain.cause import Cause
from domain.errors import (
    AccountClosed,
    AccountFrozen,
    BankError,
    CurrencyMismatch,
    InsufficientFunds,
    ValidationFailed,
)
from domain.ledger import CASH, CLEARING, CREDIT, DEBIT, Entry
from domain.money import Money

CAUSE = Cause(actor_key_id="key-7", actor_role="teller", request_id="req-7", via="api")
D = Decimal


def eur(amount: str) -> Money:
    return Money(D(amount), "EUR")


def account_with(
    currency: str = "EUR", balance: str = "0", limit: str = "0", status: str = ACTIVE
) -> Account:
    account = Account.open(uuid4(), currency, CAUSE, overdraft_limit=D(limit))
    if D(balance):
        account.credit(uuid4(), D(balance), CAUSE)
    if status == FROZEN:
        account.freeze("test", CAUSE)
    elif status == CLOSED:
        assert D(balance) == 0
        account.close(CAUSE)
    account.collect_events()
    return account


def signed_net(entries: list[Entry]) -> Decimal:
    return sum((e.signed_amount for e in entries), D(0))


# ------------------------------------------------------------------- deposit


@pytest.mark.parametrize(("channel", "internal"), [("cash", CASH), ("cheque", CLEARING),
                                                    ("wire", CLEARING), ("internal", CLEARING)])
def test_a_deposit_credits_the_customer_and_debits_cash_or_clearing(
    channel: str, internal: str
) -> None:
    account = account_with()
    txn = posting.deposit(account, eur("10.50"), channel, CAUSE, reference="ref")
    assert txn.kind == "deposit"
    assert txn.channel == channel
    assert txn.reference == "ref"
    assert txn.entries == [
        Entry(str(account.id), CREDIT, D("10.50")),
        Entry(internal, DEBIT, D("10.50")),
    ]
    assert signed_net(txn.entries) == 0
    assert account.ledger_balance == D("10.50")
    [credited] = account.collect_events()
    assert isinstance(credited, Account.FundsCredited)
    assert credited.transaction_id == txn.id
    assert credited.amount == D("10.50")


def test_a_frozen_account_takes_a_deposit() -> None:
    account = account_with(status=FROZEN)
    posting.deposit(account, eur("1.00"), "cash", CAUSE)
    assert account.ledger_balance == D("1.00")


def test_a_closed_account_takes_no_deposit() -> None:
    account = account_with(status=CLOSED)
    with pytest.raises(AccountClosed):
        posting.deposit(account, eur("1.00"), "cash", CAUSE)
    assert account.collect_events() == []


def test_a_deposit_in_another_currency_is_refused() -> None:
    account = account_with("JPY")
    with pytest.raises(CurrencyMismatch) as refused:
        posting.deposit(account, eur("1.00"), "cash", CAUSE)
    assert refused.value.context["account_id"] == account.id
    assert account.ledger_balance == 0
    assert account.collect_events() == []


def test_currency_is_checked_before_closed() -> None:
    account = account_with("JPY", status=CLOSED)
    with pytest.raises(CurrencyMismatch):
        posting.deposit(account, eur("1.00"), "cash", CAUSE)
    with pytest.raises(CurrencyMismatch):
        posting.withdraw(account, eur("1.00"), "cash", CAUSE)


@pytest.mark.parametrize("move", [posting.deposit, posting.withdraw])
@pytest.mark.parametrize("amount", ["0", "-1.00"])
def test_amounts_moved_must_be_positive(move, amount: str) -> None:
    account = account_with(balance="100")
    with pytest.raises(ValidationFailed):
        move(account, eur(amount), "cash", CAUSE)
    assert account.ledger_balance == D(100)
    assert account.collect_events() == []


@pytest.mark.parametrize("move", [posting.deposit, posting.withdraw])
def test_unknown_channel_is_refused(move) -> None:
    account = account_with(balance="100")
    with pytest.raises(ValidationFailed):
        move(account, eur("1"), "carrier-pigeon", CAUSE)


# ------------------------------------------------------------------ withdraw


def test_a_withdrawal_debits_the_customer_and_credits_cash() -> None:
    account = account_with(balance="20.00", limit="5.00")
    txn = posting.withdraw(account, eur("25.00"), "cash", CAUSE)
    assert txn.kind == "withdrawal"
    assert txn.entries == [
        Entry(str(account.id), DEBIT, D("25.00")),
        Entry(CASH, CREDIT, D("25.00")),
    ]
    assert account.ledger_balance == D("-5.00")
    assert account.available_balance == 0


def test_a_withdrawal_beyond_available_is_refused_with_the_account_id() -> None:
    account = account_with(balance="20.00", limit="5.00")
    with pytest.raises(InsufficientFunds) as refused:
        posting.withdraw(account, eur("25.01"), "cash", CAUSE)
    assert refused.value.context["account_id"] == account.id
    assert account.ledger_balance == D("20.00")
    assert account.collect_events() == []


def test_a_frozen_account_refuses_a_withdrawal() -> None:
    account = account_with(balance="20.00", status=FROZEN)
    with pytest.raises(AccountFrozen):
        posting.withdraw(account, eur("1.00"), "cash", CAUSE)
    assert account.collect_events() == []


def test_a_closed_account_refuses_a_withdrawal() -> None:
    account = account_with(limit="50.00", status=CLOSED)
    with pytest.raises(AccountClosed):
        posting.withdraw(account, eur("1.00"), "cash", CAUSE)


# ------------------------------------------------------------------ transfer


def test_a_transfer_moves_money_between_two_accounts() -> None:
    source = account_with(balance="100.00")
    destination = account_with()
    txn = posting.transfer(source, destination, eur("40.00"), CAUSE, reference="rent")
    assert txn.kind == "transfer"
    assert txn.channel == "internal"
    assert txn.reference == "rent"
    assert txn.entries == [
        Entry(str(source.id), DEBIT, D("40.00")),
        Entry(str(destination.id), CREDIT, D("40.00")),
    ]
    assert signed_net(txn.entries) == 0
    assert (source.ledger_balance, destination.ledger_balance) == (D("60.00"), D("40.00"))
    assert sorted(txn.customer_account_ids()) == sorted([source.id, destination.id])


def test_a_transfer_to_the_same_account_is_refused() -> None:
    account = account_with(balance="100.00")
    with pytest.raises(ValidationFailed):
        posting.transfer(account, account, eur("1.00"), CAUSE)
    assert account.ledger_balance == D("100.00")


def test_a_transfer_to_a_frozen_account_is_a_credit_and_is_accepted() -> None:
    source = account_with(balance="10.00")
    destination = account_with(status=FROZEN)
    posting.transfer(source, destination, eur("10.00"), CAUSE)
    assert destination.ledger_balance == D("10.00")


def expected_transfer_refusal(
    src_currency: str, dst_currency: str, src_status: str, dst_status: str, enough: bool
) -> type[BankError] | None:
    """The contract's order: currency -> closed -> frozen -> funds."""
    if src_currency != "EUR" or dst_currency != "EUR":
        return CurrencyMismatch
    if CLOSED in (src_status, dst_status):
        return AccountClosed
    if src_status == FROZEN:
        return AccountFrozen
    if not enough:
        return InsufficientFunds
    return None


def transfer_party(currency: str, status: str) -> Account:
    # available 100 whatever the status: closed accounts hold it as a limit (ledger 0)
    if status == CLOSED:
        return account_with(currency, limit="100", status=CLOSED)
    return account_with(currency, balance="100", status=status)


CASES = list(itertools.product(("EUR", "USD"), ("EUR", "USD"), (ACTIVE, FROZEN, CLOSED),
                               (ACTIVE, FROZEN, CLOSED), (True, False)))


@pytest.mark.parametrize(("src_cur", "dst_cur", "src_status", "dst_status", "enough"), CASES)
def test_transfer_checks_in_the_contract_order(
    src_cur: str, dst_cur: str, src_status: str, dst_status: str, enough: bool
) -> None:
    source = transfer_party(src_cur, src_status)
    destination = transfer_party(dst_cur, dst_status)
    before = [(a.ledger_balance, a.version) for a in (source, destination)]
    amount = eur("60.00" if enough else "100.01")
    expected = expected_transfer_refusal(src_cur, dst_cur, src_status, dst_status, enough)
    if expected is None:
        posting.transfer(source, destination, amount, CAUSE)
        assert source.ledger_balance == before[0][0] - D("60.00")
        assert destination.ledger_balance == before[1][0] + D("60.00")
        return
    with pytest.raises(BankError) as refused:
        posting.transfer(source, destination, amount, CAUSE)
    assert type(refused.value) is expected
    assert refused.value.context["account_id"] in (source.id, destination.id)
    assert [(a.ledger_balance, a.version) for a in (source, destination)] == before
    assert source.collect_events() == [] and destination.collect_events() == []


def test_a_currency_mismatch_names_the_mismatched_account() -> None:
    source = account_with("EUR", balance="10")
    destination = account_with("USD")
    with pytest.raises(CurrencyMismatch) as refused:
        posting.transfer(source, destination, eur("1"), CAUSE)
    assert refused.value.context["account_id"] == destination.id
    assert refused.value.context["account_currency"] == "USD"


def test_the_closed_side_is_named() -> None:
    source = account_with(balance="10")
    destination = account_with(status=CLOSED)
    with pytest.raises(AccountClosed) as refused:
        posting.transfer(source, destination, eur("1"), CAUSE)
    assert refused.value.context["account_id"] == destination.id


def test_posting_events_replay_to_equal_accounts() -> None:
    source = Account.open(uuid4(), "EUR", CAUSE, overdraft_limit=D("30"))
    destination = Account.open(uuid4(), "EUR", CAUSE)
    src_events = list(source.collect_events())
    dst_events = list(destination.collect_events())
    posting.deposit(source, eur("20"), "wire", CAUSE)
    posting.transfer(source, destination, eur("50"), CAUSE)
    posting.withdraw(destination, eur("5"), "cash", CAUSE)
    src_events += source.collect_events()
    dst_events += destination.collect_events()
    assert project_aggregate(None, src_events) == source
    assert project_aggregate(None, dst_events) == destination
    assert source.ledger_balance == D("-30")
    assert destination.ledger_balance == D("45")


# ------------------------------------------------------------------ property


@given(st.lists(st.tuples(st.sampled_from(["deposit", "withdraw", "transfer"]),
                          st.integers(1, 20_000), st.booleans()), max_size=40))
def test_postings_never_breach_available_and_always_balance(ops) -> None:
    accounts = [account_with(limit="50.00"), account_with(limit="0")]
    internal = D(0)
    for kind, cents, flip in ops:
        amount = eur(str(D(cents).scaleb(-2)))
        a, b = (accounts[1], accounts[0]) if flip else (accounts[0], accounts[1])
        before = a.available_balance
        try:
            if kind == "deposit":
                txn = posting.deposit(a, amount, "cash", CAUSE)
            elif kind == "withdraw":
                txn = posting.withdraw(a, amount, "cash", CAUSE)
            else:
                txn = posting.transfer(a, b, amount, CAUSE)
        except InsufficientFunds:
            assert before - amount.amount < 0
            continue
        assert signed_net(txn.entries) == 0
        internal += sum((e.signed_amount for e in txn.entries if e.is_internal), D(0))
        for account in accounts:
            assert account.available_balance >= 0
    assert sum(a.ledger_balance for a in accounts) + internal == 0
