"""Holds, in memory: the Hold's own life (place, capture in parts, release, expire) and
the arithmetic of the held money on its account, lapsed holds included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import project_aggregate

from application.bank import Bank
from domain import posting
from domain.account import Account
from domain.cause import Cause
from domain.errors import (
    AccountClosed,
    AccountFrozen,
    AccountNotEmpty,
    CaptureExceedsHold,
    CurrencyMismatch,
    HoldNotActive,
    InsufficientFunds,
    ValidationFailed,
)
from domain.hold import ACTIVE, CAPTURED, EXPIRED, RELEASED, Hold
from domain.ledger import CLEARING, CREDIT, DEBIT, Entry
from domain.money import Money
from infrastructure.bootstrap import bootstrap

CAUSE = Cause(actor_key_id="key-3", actor_role="teller", request_id="req-3", via="api")
D = Decimal
NOW = datetime(2030, 3, 1, 9, 30, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)
TICK = timedelta(microseconds=1)


def a_hold(amount: str = "100.00", expires_at: datetime | None = LATER) -> Hold:
    hold = Hold.place(uuid4(), D(amount), "EUR", CAUSE, reference="card", expires_at=expires_at)
    hold.collect_events()
    return hold


def account_with(balance: str = "0", limit: str = "0") -> Account:
    account = Account.open(uuid4(), "EUR", CAUSE, overdraft_limit=D(limit))
    if D(balance):
        account.credit(uuid4(), D(balance), CAUSE)
    account.collect_events()
    return account


def holds_of(account: Account) -> dict[UUID, tuple[Decimal, datetime | None]]:
    """What each hold the account's record lists still holds, and until when."""
    return {UUID(str(h)): (amount, until) for h, (amount, until) in account.holds.items()}


def held_on(account: Account, amount: str, expires_at: datetime | None = LATER) -> Hold:
    return posting.place_hold(account, Money(D(amount), "EUR"), NOW, CAUSE, "card", expires_at)


# ------------------------------------------------------------------- the Hold


def test_a_placed_hold_is_active_with_nothing_captured() -> None:
    account_id = uuid4()
    hold = Hold.place(account_id, D("100.00"), "EUR", CAUSE, reference="card", expires_at=LATER)
    assert hold.account_id == account_id
    assert (hold.amount, hold.captured_amount, hold.remaining) == (D("100.00"), 0, D("100.00"))
    assert hold.status == ACTIVE
    assert hold.status_at(NOW) == ACTIVE
    assert hold.expires_at == LATER
    assert hold.version == 1


def test_captures_in_parts_until_all_is_captured() -> None:
    hold = a_hold("100.00")
    first, second = uuid4(), uuid4()
    hold.capture(first, D("30.00"), NOW, CAUSE)
    assert (hold.captured_amount, hold.remaining, hold.status) == (D("30.00"), D("70.00"), ACTIVE)
    hold.capture(second, D("70.00"), NOW, CAUSE)
    assert (hold.captured_amount, hold.remaining, hold.status) == (D("100.00"), 0, CAPTURED)
    assert hold.capture_ids == [first, second]
    assert [type(e) for e in hold.collect_events()] == [Hold.Captured, Hold.Captured]


def test_a_capture_beyond_what_remains_is_refused_and_records_nothing() -> None:
    hold = a_hold("100.00")
    hold.capture(uuid4(), D("60.00"), NOW, CAUSE)
    hold.collect_events()
    with pytest.raises(CaptureExceedsHold) as refused:
        hold.capture(uuid4(), D("40.01"), NOW, CAUSE)
    assert refused.value.code == "capture_exceeds_hold"
    assert refused.value.extra()["remaining"] == "40.00"
    assert hold.captured_amount == D("60.00")
    assert hold.collect_events() == []


def test_a_release_frees_what_remains_and_ends_the_hold() -> None:
    hold = a_hold("100.00")
    hold.capture(uuid4(), D("25.00"), NOW, CAUSE)
    assert hold.release("customer", NOW, CAUSE) == D("75.00")
    assert hold.status == RELEASED
    assert hold.captured_amount == D("25.00")  # what was captured stays captured


@pytest.mark.parametrize("end", ["capture all", "release", "expire"])
def test_a_hold_that_ended_takes_nothing_more(end: str) -> None:
    hold = a_hold("100.00")
    if end == "capture all":
        hold.capture(uuid4(), D("100.00"), NOW, CAUSE)
    elif end == "release":
        hold.release(None, NOW, CAUSE)
    else:
        hold.expire(LATER, CAUSE)
    status = hold.status
    hold.collect_events()
    for act in (
        lambda: hold.capture(uuid4(), D("0.01"), NOW, CAUSE),
        lambda: hold.release(None, NOW, CAUSE),
        lambda: hold.expire(LATER + timedelta(days=1), CAUSE),
    ):
        with pytest.raises(HoldNotActive) as refused:
            act()
        assert refused.value.code == "hold_not_active"
        assert f"is {status}, not active" in refused.value.detail
    assert hold.collect_events() == []


def test_a_hold_stops_counting_at_expires_at_before_its_expiry_is_recorded() -> None:
    hold = a_hold(expires_at=LATER)
    assert hold.status_at(LATER - TICK) == ACTIVE
    assert not hold.is_lapsed(LATER - TICK)
    assert hold.status_at(LATER) == EXPIRED
    assert hold.is_lapsed(LATER)
    assert hold.status == ACTIVE  # as recorded: nothing written yet


def test_a_lapsed_hold_cannot_be_captured_or_released() -> None:
    hold = a_hold(expires_at=LATER)
    with pytest.raises(HoldNotActive) as refused:
        hold.capture(uuid4(), D("1.00"), LATER, CAUSE)
    assert f"is {EXPIRED}, not active" in refused.value.detail
    with pytest.raises(HoldNotActive):
        hold.release(None, LATER + timedelta(days=3), CAUSE)
    assert hold.captured_amount == 0
    assert hold.collect_events() == []


def test_the_expiry_is_booked_at_expires_at_whenever_it_is_recorded() -> None:
    hold = a_hold("100.00", expires_at=LATER)
    hold.capture(uuid4(), D("10.00"), NOW, CAUSE)
    with pytest.raises(HoldNotActive):
        hold.expire(LATER - TICK, CAUSE)  # not lapsed yet
    assert hold.expire(LATER + timedelta(days=2), CAUSE) == D("90.00")
    assert hold.status == EXPIRED
    assert hold.ended_at == LATER
    expired = hold.collect_events()[-1]
    assert isinstance(expired, Hold.Expired)
    assert expired.expired_at == LATER


def test_a_hold_without_expiry_never_lapses() -> None:
    hold = a_hold(expires_at=None)
    far = NOW + timedelta(days=3650)
    assert hold.status_at(far) == ACTIVE
    with pytest.raises(HoldNotActive):
        hold.expire(far, CAUSE)


def test_replaying_a_holds_events_rebuilds_it() -> None:
    hold = Hold.place(uuid4(), D("50.00"), "EUR", CAUSE, expires_at=LATER)
    hold.capture(uuid4(), D("20.00"), NOW, CAUSE)
    hold.release("done", NOW, CAUSE)
    rebuilt = project_aggregate(None, hold.collect_events())
    assert rebuilt == hold
    assert (rebuilt.status, rebuilt.captured_amount, rebuilt.version) == (RELEASED, D("20.00"), 3)


# ------------------------------------------------------------- on the account


def test_a_hold_sets_money_aside_from_available_not_from_the_ledger() -> None:
    account = account_with("100.00", limit="50.00")
    hold = held_on(account, "120.00")
    assert account.ledger_balance == D("100.00")
    assert account.held_amount(NOW) == D("120.00")
    assert account.available_at(NOW) == D("30.00")
    assert holds_of(account) == {hold.id: (D("120.00"), LATER)}


def test_a_hold_must_fit_the_available_balance_exactly() -> None:
    account = account_with("100.00")
    held_on(account, "60.00")
    with pytest.raises(InsufficientFunds):
        held_on(account, "40.01")
    held_on(account, "40.00")
    assert account.available_at(NOW) == 0


def test_a_lapsed_hold_frees_its_money_at_expires_at_while_the_record_still_lists_it() -> None:
    account = account_with("100.00")
    soon = held_on(account, "30.00", expires_at=LATER)
    held_on(account, "50.00", expires_at=None)
    assert account.available_at(LATER - TICK) == D("20.00")
    assert account.available_at(LATER) == D("50.00")
    assert account.held_amount(LATER) == D("50.00")
    assert account.held_amount(None) == D("80.00")  # without a time: the cautious answer
    assert soon.id in holds_of(account)
    assert account.lapsed_hold_ids(LATER - TICK) == []
    assert account.lapsed_hold_ids(LATER) == [soon.id]


def test_a_debit_may_use_what_a_lapsed_hold_freed() -> None:
    account = account_with("100.00")
    held_on(account, "30.00", expires_at=LATER)
    with pytest.raises(InsufficientFunds):
        account.check_can_debit(D("100.00"), LATER - TICK)
    account.debit(uuid4(), D("100.00"), CAUSE, now=LATER)
    assert account.available_at(LATER) == 0


def test_a_partial_capture_debits_the_ledger_and_leaves_the_rest_held() -> None:
    account = account_with("100.00")
    hold = held_on(account, "40.00")
    available = account.available_at(NOW)
    txn = posting.capture(hold, account, None, D("15.00"), NOW, CAUSE)
    assert account.ledger_balance == D("85.00")
    assert holds_of(account)[hold.id] == (D("25.00"), LATER)
    assert account.available_at(NOW) == available  # it was set aside already
    assert txn.kind == "capture"
    assert txn.entries == [Entry(str(account.id), DEBIT, D("15.00")),
                           Entry(CLEARING, CREDIT, D("15.00"))]
    posting.capture(hold, account, None, None, NOW, CAUSE)  # the rest, by default
    assert hold.status == CAPTURED
    assert holds_of(account) == {}
    assert account.ledger_balance == D("60.00")


def test_a_capture_to_another_account_credits_it() -> None:
    account, destination = account_with("100.00"), account_with()
    hold = held_on(account, "40.00")
    txn = posting.capture(hold, account, destination, None, NOW, CAUSE)
    assert destination.ledger_balance == D("40.00")
    assert {e.account for e in txn.entries} == {str(account.id), str(destination.id)}


def test_a_capture_refuses_the_holds_own_account_or_another_currency_as_destination() -> None:
    account = account_with("100.00")
    hold = held_on(account, "40.00")
    with pytest.raises(ValidationFailed):
        posting.capture(hold, account, account, None, NOW, CAUSE)
    yen = Account.open(uuid4(), "JPY", CAUSE)
    with pytest.raises(CurrencyMismatch):
        posting.capture(hold, account, yen, None, NOW, CAUSE)
    assert hold.captured_amount == 0
    assert holds_of(account)[hold.id] == (D("40.00"), LATER)


def test_a_frozen_account_releases_but_neither_holds_nor_captures() -> None:
    account = account_with("100.00")
    hold = held_on(account, "40.00")
    account.freeze("review", CAUSE)
    with pytest.raises(AccountFrozen):
        held_on(account, "1.00")
    with pytest.raises(AccountFrozen):
        posting.capture(hold, account, None, None, NOW, CAUSE)
    posting.release(hold, account, "customer", NOW, CAUSE)
    assert holds_of(account) == {}
    assert account.available_at(NOW) == D("100.00")


def test_holds_on_a_closed_account_are_refused() -> None:
    account = account_with()
    account.close(CAUSE)
    with pytest.raises(AccountClosed):
        held_on(account, "1.00")


def test_an_expiry_frees_what_remains_of_the_hold() -> None:
    account = account_with("100.00")
    hold = held_on(account, "40.00", expires_at=LATER)
    posting.capture(hold, account, None, D("10.00"), NOW, CAUSE)
    posting.expire(hold, account, LATER, CAUSE)
    assert holds_of(account) == {}
    assert account.held_amount(None) == 0
    assert account.available_at(LATER) == D("90.00")
    released = account.collect_events()[-1]
    assert isinstance(released, Account.HeldFundsReleased)
    assert (released.amount, released.reason) == (D("30.00"), "expired")


def test_an_account_with_an_active_hold_is_not_closed_but_a_lapsed_hold_does_not_count() -> None:
    account = account_with()
    account.set_overdraft_limit(D("10.00"), CAUSE)
    held_on(account, "10.00", expires_at=LATER)
    with pytest.raises(AccountNotEmpty):
        account.close(CAUSE, LATER - TICK)
    account.close(CAUSE, LATER)


def test_replaying_an_accounts_events_rebuilds_its_holds() -> None:
    account = Account.open(uuid4(), "EUR", CAUSE)
    account.credit(uuid4(), D("100.00"), CAUSE)
    kept = held_on(account, "30.00")
    gone = held_on(account, "20.00", expires_at=None)
    posting.capture(kept, account, None, D("10.00"), NOW, CAUSE)
    posting.release(gone, account, None, NOW, CAUSE)
    rebuilt = project_aggregate(None, account.collect_events())
    assert rebuilt == account
    assert holds_of(rebuilt) == {kept.id: (D("20.00"), LATER)}


def test_a_capture_must_leave_available_at_zero_or_more() -> None:
    # Every debit but a reversal; a reversal took the held money back here.
    account = account_with("100.00")
    hold = held_on(account, "100.00")
    account.debit(uuid4(), D("100.00"), CAUSE, enforce_limit=False)  # a reversal
    assert account.available_at(NOW) == D("-100.00")
    account.collect_events()
    with pytest.raises(InsufficientFunds):
        posting.capture(hold, account, None, None, NOW, CAUSE)
    assert hold.captured_amount == 0
    assert account.collect_events() == []


# ------------------------------------------------------------ through the Bank




def _bank(memory_bank: Bank, clock: list[datetime]) -> tuple[Bank, UUID]:
    memory_bank.clock = lambda: clock[0]
    customer = memory_bank.register_customer(
        {"name": "Ada Lovelace", "kind": "person", "country": "GB"}, CAUSE
    ).body["customer_id"]
    account = UUID(memory_bank.open_account(UUID(customer), "EUR", CAUSE).body["account_id"])
    memory_bank.deposit(account, "100.00", "EUR", "cash", CAUSE)
    return memory_bank, account


def test_an_account_with_an_active_hold_is_snapshotted(memory_bank: Bank) -> None:
    # Bank.snapshotting_intervals: a snapshot at version 100, holds and all.
    bank, account = _bank(memory_bank, [NOW])
    bank.place_hold(account, "10.00", "EUR", CAUSE)
    while bank.get_account(account)["version"] < 100:
        bank.deposit(account, "1.00", "EUR", "cash", CAUSE)
    assert bank.repository.get(account) == bank.reconstruct(account)


def test_the_sweeper_limit_counts_due_holds_only(memory_bank: Bank) -> None:
    clock = [NOW]
    bank, account = _bank(memory_bank, clock)
    released = UUID(bank.place_hold(account, "10.00", "EUR", CAUSE, expires_at=LATER)
                    .body["hold_id"])
    due = UUID(bank.place_hold(account, "10.00", "EUR", CAUSE, expires_at=LATER)
               .body["hold_id"])
    bank.release_hold(released, CAUSE)
    clock[0] = LATER
    assert bank.expire_lapsed_holds(limit=1) == 1
    assert bank.reconstruct(due).status == EXPIRED


def two_processes(tmp_path: Path, clock: list[datetime]) -> tuple[Bank, Bank, UUID]:
    """Two Banks on one store, as two server processes; an account with 100.00."""
    url = f"sqlite:///{tmp_path}/bank.sqlite"
    first = bootstrap(database_url=url, with_views=False)
    second = bootstrap(database_url=url, with_views=False)
    for bank in (first, second):
        bank.clock = lambda: clock[0]
    customer = first.register_customer(
        {"name": "Ada Lovelace", "kind": "person", "country": "GB"}, CAUSE
    ).body["customer_id"]
    account = UUID(first.open_account(UUID(customer), "EUR", CAUSE).body["account_id"])
    first.deposit(account, "100.00", "EUR", "cash", CAUSE)
    return first, second, account


def test_another_process_releases_a_hold_it_did_not_see_placed(tmp_path: Path) -> None:
    first, second, account = two_processes(tmp_path, [NOW])
    try:
        second.deposit(account, "1.00", "EUR", "cash", CAUSE)  # the second caches it
        hold = UUID(first.place_hold(account, "10.00", "EUR", CAUSE).body["hold_id"])
        assert second.release_hold(hold, CAUSE).body["status"] == RELEASED
        assert second.get_account(account)["held_amount"] == "0.00"
    finally:
        first.close()
        second.close()


def test_another_process_ended_a_hold_this_one_still_sees_active(tmp_path: Path) -> None:
    clock = [NOW]
    first, second, account = two_processes(tmp_path, clock)
    try:
        hold = UUID(first.place_hold(account, "10.00", "EUR", CAUSE, expires_at=LATER)
                    .body["hold_id"])
        second.capture_hold(hold, CAUSE, amount="1.00")  # the second caches the hold
        first.release_hold(hold, CAUSE)  # ended through the first
        second.deposit(account, "1.00", "EUR", "cash", CAUSE)  # its account copy catches up
        clock[0] = LATER
        assert second.expire_lapsed_holds() == 0  # nothing is due: the hold was released
        with pytest.raises(HoldNotActive):
            second.release_hold(hold, CAUSE)
    finally:
        first.close()
        second.close()
