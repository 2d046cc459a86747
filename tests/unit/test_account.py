"""The Account aggregate's invariants, in memory: status, limits, funds, events."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import project_aggregate

from domain.account import ACTIVE, CLOSED, FROZEN, Account
from domain.cause import Cause
from domain.errors import (
    AccountClosed,
    AccountFrozen,
    AccountNotEmpty,
    BankError,
    CurrencyMismatch,
    InsufficientFunds,
    ValidationFailed,
)

CAUSE = Cause(actor_key_id="key-1", actor_role="admin", request_id="req-1", via="api")
D = Decimal


def new_account(currency: str = "EUR", limit: str = "0", balance: str = "0") -> Account:
    account = Account.open(uuid4(), currency, CAUSE, overdraft_limit=D(limit))
    if D(balance) > 0:
        account.credit(uuid4(), D(balance), CAUSE)
    elif D(balance) < 0:
        account.debit(uuid4(), -D(balance), CAUSE, enforce_limit=False)
    return account


def replayed(account: Account, events: list) -> Account:
    rebuilt = project_aggregate(None, events)
    assert rebuilt is not None
    return rebuilt


# ------------------------------------------------------------------- opening


def test_a_new_account_is_active_at_zero() -> None:
    customer = uuid4()
    account = Account.open(customer, "EUR", CAUSE, overdraft_limit=D("100.00"))
    assert account.customer_id == customer
    assert account.currency == "EUR"
    assert account.product == "current"
    assert account.status == ACTIVE
    assert account.ledger_balance == 0
    assert account.overdraft_limit == D("100.00")
    assert account.available_balance == D("100.00")
    assert account.version == 1
    assert account.opened_on == account.created_on


@pytest.mark.parametrize(
    ("limit", "currency"),
    [(D("-0.01"), "EUR"), (D("-1"), "JPY"), (D("0.001"), "EUR"), (D("0.5"), "JPY")],
)
def test_an_account_refuses_a_negative_or_too_precise_limit(limit: Decimal, currency: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        Account.open(uuid4(), currency, CAUSE, overdraft_limit=limit)
    assert refused.value.errors[0][0] == ("overdraft_limit",)


def test_an_account_refuses_an_unknown_product() -> None:
    with pytest.raises(ValidationFailed):
        Account.open(uuid4(), "EUR", CAUSE, product="checking")
    assert Account.open(uuid4(), "EUR", CAUSE, product="savings").product == "savings"


# ------------------------------------------------------------------- funds


def test_a_debit_may_use_exactly_the_available_balance() -> None:
    account = new_account(limit="50.00", balance="25.00")
    account.debit(uuid4(), D("75.00"), CAUSE)
    assert account.ledger_balance == D("-50.00")
    assert account.available_balance == 0


def test_a_debit_one_minor_unit_beyond_available_is_refused_and_changes_nothing() -> None:
    account = new_account(limit="50.00", balance="25.00")
    version = account.version
    with pytest.raises(InsufficientFunds) as refused:
        account.debit(uuid4(), D("75.01"), CAUSE)
    assert refused.value.code == "insufficient_funds"
    assert refused.value.context["account_id"] == account.id
    assert account.ledger_balance == D("25.00")
    assert account.version == version


def test_jpy_available_is_whole_yen() -> None:
    account = new_account("JPY", limit="1000", balance="500")
    account.debit(uuid4(), D("1500"), CAUSE)
    with pytest.raises(InsufficientFunds):
        account.debit(uuid4(), D("1"), CAUSE)


def test_currency_mismatch_carries_both_currencies_and_the_id() -> None:
    account = new_account("JPY")
    with pytest.raises(CurrencyMismatch) as refused:
        account.check_currency("EUR")
    assert refused.value.code == "currency_mismatch"
    assert refused.value.context == {
        "account_id": account.id, "account_currency": "JPY", "currency": "EUR",
    }
    account.check_currency("JPY")


# ------------------------------------------------------------------- frozen


def test_a_frozen_account_takes_credits_only() -> None:
    account = new_account(limit="100.00", balance="10.00")
    assert account.freeze("court order", CAUSE) is True
    assert account.status == FROZEN
    assert account.freeze_reason == "court order"
    account.credit(uuid4(), D("5.00"), CAUSE)
    assert account.ledger_balance == D("15.00")
    with pytest.raises(AccountFrozen) as refused:
        account.debit(uuid4(), D("1.00"), CAUSE)
    assert refused.value.code == "account_frozen"
    assert refused.value.context == {"account_id": account.id}
    assert account.ledger_balance == D("15.00")


def test_frozen_is_checked_before_funds() -> None:
    account = new_account()
    account.freeze("kyc", CAUSE)
    with pytest.raises(AccountFrozen):
        account.debit(uuid4(), D("1000.00"), CAUSE)


def test_unfreezing_restores_debits() -> None:
    account = new_account(balance="10.00")
    account.freeze("kyc", CAUSE)
    assert account.unfreeze(CAUSE) is True
    assert account.status == ACTIVE
    assert account.freeze_reason is None
    account.debit(uuid4(), D("10.00"), CAUSE)
    assert account.ledger_balance == 0


def test_freezing_twice_or_unfreezing_an_active_account_records_nothing() -> None:
    account = new_account()
    account.collect_events()
    assert account.unfreeze(CAUSE) is False
    assert account.freeze("one", CAUSE) is True
    assert account.freeze("two", CAUSE) is False
    assert [type(e) for e in account.collect_events()] == [Account.Frozen]
    assert account.status == FROZEN


# ------------------------------------------------------------------- closed


def test_close_needs_a_zero_ledger_balance() -> None:
    for balance in ("0.01", "-0.01"):
        account = new_account(limit="1.00", balance=balance)
        with pytest.raises(AccountNotEmpty) as refused:
            account.close(CAUSE)
        assert refused.value.code == "account_not_empty"
        assert refused.value.context == {"account_id": account.id}
        assert account.status == ACTIVE


def test_a_frozen_account_at_zero_may_be_closed() -> None:
    account = new_account()
    account.freeze("exit", CAUSE)
    account.close(CAUSE)
    assert account.status == CLOSED


def test_a_closed_account_takes_nothing() -> None:
    account = new_account(limit="100.00")
    account.close(CAUSE)
    assert account.status == CLOSED
    version = account.version
    attempts = [
        lambda: account.credit(uuid4(), D("1.00"), CAUSE),
        lambda: account.debit(uuid4(), D("1.00"), CAUSE),
        lambda: account.debit(uuid4(), D("1.00"), CAUSE, enforce_limit=False),
        lambda: account.freeze("again", CAUSE),
        lambda: account.unfreeze(CAUSE),
        lambda: account.close(CAUSE),
        lambda: account.set_overdraft_limit(D("5.00"), CAUSE),
    ]
    for attempt in attempts:
        with pytest.raises(AccountClosed) as refused:
            attempt()
        assert refused.value.code == "account_closed"
        assert refused.value.context == {"account_id": account.id}
    assert account.version == version
    assert account.ledger_balance == 0
    assert account.overdraft_limit == D("100.00")


def test_closed_is_checked_before_frozen() -> None:
    account = new_account()
    account.freeze("x", CAUSE)
    account.close(CAUSE)
    with pytest.raises(AccountClosed):
        account.debit(uuid4(), D("1.00"), CAUSE)


# ------------------------------------------------------------------- limits


def test_a_limit_may_be_cut_below_what_is_drawn() -> None:
    account = new_account(limit="100.00", balance="-80.00")
    assert account.set_overdraft_limit(D("30.00"), CAUSE) is True
    assert account.overdraft_limit == D("30.00")
    assert account.ledger_balance == D("-80.00")
    assert account.available_balance == D("-50.00")
    # in excess: no debit at all, credits still welcome
    with pytest.raises(InsufficientFunds):
        account.debit(uuid4(), D("0.01"), CAUSE)
    account.credit(uuid4(), D("60.00"), CAUSE)
    assert account.available_balance == D("10.00")
    account.debit(uuid4(), D("10.00"), CAUSE)
    assert account.available_balance == 0


def test_setting_the_same_limit_records_nothing_and_bad_limits_are_refused() -> None:
    account = new_account(limit="10.00")
    account.collect_events()
    assert account.set_overdraft_limit(D("10.00"), CAUSE) is False
    assert account.collect_events() == []
    with pytest.raises(ValidationFailed):
        account.set_overdraft_limit(D("-1.00"), CAUSE)
    with pytest.raises(ValidationFailed):
        account.set_overdraft_limit(D("1.001"), CAUSE)
    assert account.overdraft_limit == D("10.00")


def test_a_reversal_style_debit_may_pass_the_limit_but_not_a_closed_account() -> None:
    account = new_account(balance="5.00")
    account.freeze("x", CAUSE)
    account.debit(uuid4(), D("20.00"), CAUSE, enforce_limit=False)
    assert account.available_balance == D("-15.00")


# ------------------------------------------------------------------- events


EXPECTED_EVENTS = {
    "Opened", "FundsCredited", "FundsDebited", "Frozen", "Unfrozen", "Closed",
    "OverdraftLimitChanged",
}


def exercised_account() -> tuple[Account, list]:
    account = Account.open(uuid4(), "EUR", CAUSE, overdraft_limit=D("100.00"))
    txn = uuid4()
    account.credit(txn, D("50.00"), CAUSE)
    account.debit(uuid4(), D("120.00"), CAUSE)
    account.freeze("review", CAUSE)
    account.credit(uuid4(), D("70.00"), CAUSE)
    account.unfreeze(CAUSE)
    account.set_overdraft_limit(D("0.00"), CAUSE)
    account.close(CAUSE)
    return account, list(account.collect_events())


def test_events_are_explicit_past_tense_classes() -> None:
    account, events = exercised_account()
    names = [type(e).__name__ for e in events]
    assert names == [
        "Opened", "FundsCredited", "FundsDebited", "Frozen", "FundsCredited", "Unfrozen",
        "OverdraftLimitChanged", "Closed",
    ]
    for event in events:
        # declared on the aggregate, not generated from a method name
        assert getattr(Account, type(event).__name__) is type(event)
        assert type(event).__qualname__ == f"Account.{type(event).__name__}"
        assert type(event).__name__ in EXPECTED_EVENTS
        assert event.originator_id == account.id
        assert event.cause == CAUSE
    assert [e.originator_version for e in events] == list(range(1, len(events) + 1))


def test_events_carry_what_happened() -> None:
    _, events = exercised_account()
    credited = events[1]
    assert isinstance(credited, Account.FundsCredited)
    assert credited.amount == D("50.00")
    assert isinstance(credited.transaction_id, UUID)
    frozen = events[3]
    assert isinstance(frozen, Account.Frozen)
    assert frozen.reason == "review"
    changed = events[6]
    assert isinstance(changed, Account.OverdraftLimitChanged)
    assert changed.overdraft_limit == 0


def test_replaying_the_collected_events_rebuilds_an_equal_account() -> None:
    account, events = exercised_account()
    rebuilt = replayed(account, events)
    assert rebuilt == account
    assert rebuilt.status == CLOSED
    assert rebuilt.ledger_balance == 0
    assert rebuilt.version == account.version == len(events)


def test_replaying_a_prefix_rebuilds_the_state_as_it_was() -> None:
    account, events = exercised_account()
    rebuilt = replayed(account, events[:4])
    assert rebuilt.status == FROZEN
    assert rebuilt.ledger_balance == D("-70.00")
    assert rebuilt.available_balance == D("30.00")
    assert rebuilt.version == 4


def test_refusals_record_no_event() -> None:
    account = new_account(balance="1.00")
    account.collect_events()
    for attempt in (
        lambda: account.debit(uuid4(), D("2.00"), CAUSE),
        lambda: account.close(CAUSE),
        lambda: account.check_currency("USD"),
    ):
        with pytest.raises(BankError):
            attempt()
    assert account.collect_events() == []
