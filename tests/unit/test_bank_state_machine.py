"""The Bank application against a model, driven by a hypothesis state machine.

The machine keeps its own model of every account (balance, limit, status, version, the
holds its record lists), of every hold and transaction, of the bank's internal ledger
accounts and of the business calendar, predicts for every command whether the contract
accepts or refuses it (and with which error), and checks after every step that the
store, replayed from its events, says the same thing.

Time is the machine's own: every Bank reads its ``Clock``, which stands still until a
rule moves it forward, so holds lapse exactly when the model says they do.

``BankMachine`` runs here on the in-memory store; tests/integration/test_bank_store.py
subclasses it to run on SQLite or PostgreSQL (``make_banks`` is the hook).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from application.bank import Bank
from application.errors import IdempotencyKeyReused, ReplayedError
from application.idempotency import Claim, Outcome, fingerprint
from application.views import timestamp
from domain.cause import Cause
from domain.currencies import MINOR_UNITS
from domain.errors import (
    AccountClosed,
    AccountFrozen,
    AccountNotEmpty,
    AlreadyReversed,
    BankError,
    BatchRejected,
    BookedBeforeOpening,
    BusinessDayClosed,
    CaptureExceedsHold,
    CurrencyMismatch,
    HoldNotActive,
    InsufficientFunds,
    ValidationFailed,
)
from domain.transaction import Transaction
from infrastructure.bootstrap import bootstrap

CURRENCIES = ("EUR", "JPY")
CHANNELS = ("cash", "cheque", "wire", "internal")
SCOPE = "key-teller-1"
CAUSE = Cause(actor_key_id=SCOPE, actor_role="admin", request_id=None, via="api")


# ------------------------------------------------------------------ money text


def text_of(minor: int, currency: str, short: bool = False) -> str:
    """A contract money string for a non-negative amount in minor units."""
    m = MINOR_UNITS[currency]
    if m == 0:
        return str(minor)
    whole, fraction = divmod(minor, 10**m)
    text = f"{whole}.{fraction:0{m}d}"
    if short:  # "10.5" and "10" are as valid as "10.50"
        text = text.rstrip("0").rstrip(".")
    return text


def printed(minor: int, currency: str) -> str:
    """What responses must print: exactly the currency's minor units, signed."""
    return ("-" if minor < 0 else "") + text_of(abs(minor), currency)


def decimal_of(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-MINOR_UNITS[currency])


def minor_of(text: str, currency: str) -> int:
    return int(Decimal(text).scaleb(MINOR_UNITS[currency]))


def jsonable(item: dict[str, Any]) -> dict[str, Any]:
    """A batch item as its JSON body (for the request's fingerprint)."""
    return {
        k: str(v) if isinstance(v, UUID) else v.isoformat() if isinstance(v, datetime) else v
        for k, v in item.items()
    }


def other_currency(currency: str) -> str:
    return CURRENCIES[1 - CURRENCIES.index(currency)]


def internal_for(channel: str) -> str:
    return "cash" if channel == "cash" else "clearing"


# ------------------------------------------------------------------ the model


class Clock:
    """The banks' clock: it stands still until the machine moves it forward."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class ModelHold:
    hold_id: UUID
    account_id: UUID
    currency: str
    amount: int
    expires_at: datetime | None
    reference: str | None
    captured: int = 0
    # As recorded: a hold past its expires_at stays "active" here until something
    # records its expiry, but it stops counting at expires_at all the same.
    status: str = "active"
    version: int = 1

    @property
    def remaining(self) -> int:
        return self.amount - self.captured

    def lapsed_at(self, now: datetime) -> bool:
        """Active as recorded, but past its expiry: its Expired event is due."""
        return self.status == "active" and self.expires_at is not None and now >= self.expires_at

    def status_at(self, now: datetime) -> str:
        return "expired" if self.lapsed_at(now) else self.status


@dataclass
class ModelAccount:
    account_id: UUID
    customer_id: UUID
    currency: str
    limit: int
    ledger: int = 0
    status: str = "active"
    version: int = 1
    # True while the available balance is negative because a limit was cut below
    # what was drawn, or a reversal took money back; nothing else may take an account
    # below zero available.
    excess_by_cut: bool = False
    excess_by_reversal: bool = False
    opened_at: str = ""  # as the account view prints it
    # The holds the account's record lists (active as recorded), by id.
    holds: dict[UUID, ModelHold] = field(default_factory=dict)
    clock: Clock = field(kw_only=True, repr=False)

    @property
    def opened_on(self) -> datetime:
        return datetime.fromisoformat(self.opened_at)

    def held(self) -> int:
        """What active holds still hold; a lapsed one no longer counts."""
        now = self.clock()
        return sum(h.remaining for h in self.holds.values() if not h.lapsed_at(now))

    @property
    def available(self) -> int:
        return self.ledger - self.held() + self.limit

    def settle(self) -> None:
        if self.available >= 0:
            self.excess_by_cut = False
            self.excess_by_reversal = False


def no_expiries() -> list[ModelHold]:
    return []


@dataclass
class Claimed:
    """A request made with an Idempotency-Key, and what it answered the first time."""

    request: Callable[[Claim | None], Outcome]
    claim: Claim
    outcome: Outcome | None
    error: BankError | None
    # The lapsed holds whose expiry a call of the request records before anything else
    # (a capture, a release or a close touches them first), whatever it then answers.
    expiring: Callable[[], list[ModelHold]] = no_expiries
    # A hold's expires_at: once it is past, the request no longer passes the Bank's
    # form check, so a retry must look its key up first, as the HTTP pipeline does.
    valid_until: datetime | None = None


amounts = st.integers(min_value=1, max_value=300_000)
limits = st.one_of(st.just(0), st.integers(min_value=0, max_value=100_000))
rarely = st.sampled_from([False, False, False, False, False, False, True])
# How far a step moves the clock, in minutes: mostly within a hold's life, sometimes a day.
time_steps = st.sampled_from([1, 5, 15, 30, 60, 90, 120, 180, 240, 24 * 60])
# A hold's life, in minutes from now (None: it never expires; <= 0: refused).
hold_lives = st.sampled_from([None, None, 0, -10, *[5, 30, 60, 120, 240] * 2])


class BankMachine(RuleBasedStateMachine):
    """Every command may be accepted or refused; the model says which."""

    accounts = Bundle("accounts")
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        # Noon today: the same hours of the day in every run, near the real time that
        # stamps recorded_at and the opening of accounts not imported.
        self.clock = Clock(datetime.combine(datetime.now(UTC).date(), time(12), tzinfo=UTC))
        self.banks: list[Bank] = self.make_banks()
        for bank in self.banks:
            bank.clock = self.clock
        self.bank: Bank = self.banks[0]
        self.model: dict[UUID, ModelAccount] = {}
        self.customers: dict[UUID, list[UUID]] = {}
        # credit-positive balances of the bank's own accounts, per currency
        self.internal: dict[str, dict[str, int]] = {
            c: {"cash": 0, "clearing": 0} for c in CURRENCIES
        }
        self.transactions: dict[UUID, dict[str, Any]] = {}  # as first answered
        self.reversed: dict[UUID, UUID] = {}  # transaction -> the reversal of it
        self.model_holds: dict[UUID, ModelHold] = {}
        self.closed_through: date | None = None
        self.closed_at: datetime | None = None
        self.claimed: list[Claimed] = []
        self.last_refusal: BankError | None = None
        self.commands = 0

    # -------------------------------------------------------------- store hooks

    def make_banks(self) -> list[Bank]:
        """One Bank, or several on one store (the second simulates another process)."""
        return [bootstrap(database_url="memory://")]

    def teardown(self) -> None:
        for bank in self.banks:
            bank.close()

    # -------------------------------------------------------------- helpers

    def events_since(self, position: int) -> int:
        """Events stored after ``position``. Counted rather than read off the head:
        PostgreSQL's positions have gaps where a conflicting insert was rolled back
        (two processes on one store)."""
        return len(self.bank.recorder.select_notifications(start=position + 1, limit=10_000))

    def perform(
        self,
        expected: type[BankError] | None,
        request: Callable[[Claim | None], Outcome],
        use_claim: bool = False,
        path: str = "",
        body: dict[str, Any] | None = None,
        expiring: Callable[[], list[ModelHold]] = no_expiries,
        valid_until: datetime | None = None,
    ) -> Outcome | None:
        """Run a command; check it was accepted or refused as the model predicts.

        ``expiring`` names the lapsed holds whose expiry the command records first
        (two events each: the hold's and its account's), whatever it then decides.
        """
        claim = (
            Claim(SCOPE, f"idem-{uuid4()}", fingerprint("POST", path, body))
            if use_claim
            else None
        )
        label = path.rsplit("/", 1)[-1] or "open"
        # With several Banks on one store (several server processes), commands go to
        # each in turn: every process must decide on what the others wrote.
        self.commands += 1
        self.bank = self.banks[self.commands % len(self.banks)]
        due = expiring()
        before = self.bank.last_position()
        self.last_refusal = None
        try:
            outcome = request(claim)
        except BankError as error:
            self.record_expiries(due)
            self.last_refusal = error
            note(f"refused: {error!r}")
            event(f"{label}: {type(error).__name__}")
            assert expected is not None, f"model expected acceptance, got {error!r}"
            assert type(error) is expected, f"expected {expected.__name__}, got {error!r}"
            if claim is None or isinstance(error, ValidationFailed):
                assert self.events_since(before) == 2 * len(due), (
                    "a refusal wrote an event"
                )
            else:
                # the refusal is remembered with the key (one record, no effect)
                assert self.events_since(before) > 2 * len(due)
                self.claimed.append(
                    Claimed(request, claim, None, error, expiring, valid_until)
                )
            return None
        self.record_expiries(due)
        assert expected is None, f"model expected {expected.__name__}, but it was accepted"
        event(f"{label}: accepted")
        assert not outcome.replayed
        if outcome.position is not None:
            assert outcome.position == self.bank.last_position()
        if claim is not None:
            self.claimed.append(Claimed(request, claim, outcome, None, expiring, valid_until))
        return outcome

    def due_expiries(self, holds: Iterable[ModelHold]) -> list[ModelHold]:
        now = self.clock()
        return [h for h in holds if h.lapsed_at(now)]

    def record_expiries(self, due: list[ModelHold]) -> None:
        """The bank has recorded these lapsed holds' expiry (hold and account, +1 each)."""
        for h in due:
            event("a lapsed hold's expiry recorded")
            assert h.lapsed_at(self.clock())
            h.status = "expired"
            h.version += 1
            m = self.model[h.account_id]
            del m.holds[h.hold_id]
            m.version += 1

    def movement_refusal(
        self, account: ModelAccount, currency: str, minor: int, debit: bool
    ) -> type[BankError] | None:
        if currency != account.currency:
            return CurrencyMismatch
        if account.status == "closed":
            return AccountClosed
        if not debit:
            return None
        if account.status == "frozen":
            return AccountFrozen
        if account.available - minor < 0:
            return InsufficientFunds
        return None

    def transfer_refusal(
        self, src: ModelAccount, dst: ModelAccount, currency: str, minor: int
    ) -> type[BankError] | None:
        """Two different accounts: currency, closed, frozen, funds."""
        if src.currency != currency or dst.currency != currency:
            return CurrencyMismatch
        if "closed" in (src.status, dst.status):
            return AccountClosed
        if src.status == "frozen":
            return AccountFrozen
        if src.available - minor < 0:
            return InsufficientFunds
        return None

    def check_funds_left(self, *account_ids: UUID) -> None:
        """Every accepted debit or hold but a reversal leaves available >= 0: in the
        model, and in the bank's view of the account, which says the same."""
        for account_id in account_ids:
            m = self.model[account_id]
            view = self.bank.get_account(account_id)
            assert view["held_amount"] == printed(m.held(), m.currency)
            assert view["available_balance"] == printed(m.available, m.currency)
            assert m.available >= 0, f"{account_id} left below zero available"

    def check_transaction(
        self,
        body: dict[str, Any],
        kind: str,
        currency: str,
        minor: int,
        channel: str,
        entries: list[tuple[str, str, int]],
        booked_at: datetime | None = None,
    ) -> None:
        assert body["kind"] == kind
        assert body["status"] == "posted"
        assert body["currency"] == currency
        assert body["amount"] == printed(minor, currency)
        assert body["channel"] == channel
        if booked_at is None:
            assert body["booked_at"] == body["recorded_at"]
        else:  # an import: booked when it says, recorded now
            assert body["booked_at"] == timestamp(booked_at)
        got = sorted((e["account"], e["direction"], e["amount"]) for e in body["entries"])
        assert got == sorted((a, d, printed(n, currency)) for a, d, n in entries)
        debits = sum(Decimal(e["amount"]) for e in body["entries"] if e["direction"] == "debit")
        credits = sum(Decimal(e["amount"]) for e in body["entries"] if e["direction"] == "credit")
        assert debits == credits
        txn_id = UUID(body["transaction_id"])
        assert txn_id not in self.transactions
        self.transactions[txn_id] = body
        stored = self.bank.get_transaction(txn_id)
        assert {k: stored[k] for k in body} == body
        assert stored["position"] is not None
        assert self.bank.reconstruct(txn_id) == self.bank.repository.get(txn_id)

    def check_account_view(self, view: dict[str, Any], m: ModelAccount) -> None:
        c = m.currency
        assert view["account_id"] == str(m.account_id)
        assert view["customer_id"] == str(m.customer_id)
        assert view["currency"] == c
        assert view["status"] == m.status
        assert view["ledger_balance"] == printed(m.ledger, c)
        assert view["overdraft_limit"] == printed(m.limit, c)
        assert view["available_balance"] == printed(m.available, c)
        assert view["held_amount"] == printed(m.held(), c)
        assert view["opened_at"] == m.opened_at
        assert view["version"] == m.version

    def check_hold_view(self, view: dict[str, Any], h: ModelHold) -> None:
        c = h.currency
        assert view["hold_id"] == str(h.hold_id)
        assert view["account_id"] == str(h.account_id)
        assert view["currency"] == c
        assert view["amount"] == printed(h.amount, c)
        assert view["captured_amount"] == printed(h.captured, c)
        assert view["status"] == h.status_at(self.clock())
        assert view["expires_at"] == timestamp(h.expires_at)
        assert view["reference"] == h.reference

    # -------------------------------------------------------------- customers, accounts

    def _open(
        self,
        customer_id: UUID,
        currency: str,
        limit: int,
        short: bool,
        opened_at: datetime | None = None,
    ) -> UUID:
        outcome = self.perform(None, lambda claim: self.bank.open_account(
            customer_id, currency, CAUSE, overdraft_limit=text_of(limit, currency, short),
            opened_at=opened_at, claim=claim,
        ))
        assert outcome is not None
        account_id = UUID(outcome.body["account_id"])
        if opened_at is not None:
            assert outcome.body["opened_at"] == timestamp(opened_at)
        m = ModelAccount(account_id, customer_id, currency, limit,
                         opened_at=outcome.body["opened_at"], clock=self.clock)
        self.check_account_view(outcome.body, m)
        self.model[account_id] = m
        self.customers[customer_id].append(account_id)
        return account_id

    def _register(self) -> UUID:
        outcome = self.bank.register_customer(
            {"name": "Grace Hopper", "kind": "person", "country": "US"}, CAUSE
        )
        customer_id = UUID(outcome.body["customer_id"])
        assert outcome.body["version"] == 1
        self.customers[customer_id] = []
        return customer_id

    def _open_funded(self, currency: str, limit: int, funds: int, days_ago: int = 0) -> UUID:
        opened_at = self.clock() - timedelta(days=days_ago) if days_ago else None
        account = self._open(self._register(), currency, limit, False, opened_at)
        self.deposit(account, funds, False, "cash", use_claim=False, short=False)
        return account

    # A few funded accounts to start from, so that most runs move money around.
    @initialize(target=accounts, limit=limits, funds=amounts)
    def first_eur_account(self, limit: int, funds: int) -> UUID:
        return self._open_funded("EUR", limit, funds)

    @initialize(target=accounts, limit=limits, funds=amounts)
    def second_eur_account(self, limit: int, funds: int) -> UUID:
        return self._open_funded("EUR", limit, funds)

    @initialize(target=accounts, limit=limits, funds=amounts)
    def first_jpy_account(self, limit: int, funds: int) -> UUID:
        return self._open_funded("JPY", limit, funds)

    @initialize(target=accounts, limit=limits, funds=amounts, days_ago=st.integers(1, 6))
    def eur_account_with_history(self, limit: int, funds: int, days_ago: int) -> UUID:
        """Opened days ago (opened_at, as imports of history do), for imports to book on."""
        return self._open_funded("EUR", limit, funds, days_ago)

    @initialize(target=holds, funds=amounts, data=st.data(),
                life=st.sampled_from([None, 30, 60, 120, 240]))
    def a_hold_from_the_start(self, funds: int, data: st.DataObject, life: int | None) -> Any:
        """An account holding part of its money, so that every run has a hold to
        capture, release or see lapse (the account is in the model, not the bundle)."""
        account = self._open_funded("EUR", 0, funds)
        return self.place_hold(account, data, False, "part", life, "card 4242", False)

    @rule(target=accounts, currency=st.sampled_from(CURRENCIES), limit=limits,
          short=st.booleans())
    def open_customer_and_account(self, currency: str, limit: int, short: bool) -> UUID:
        return self._open(self._register(), currency, limit, short)

    @rule(target=accounts, currency=st.sampled_from(CURRENCIES), limit=limits,
          days_ago=st.integers(1, 6))
    def open_an_account_with_history(self, currency: str, limit: int, days_ago: int) -> UUID:
        opened_at = self.clock() - timedelta(days=days_ago)
        return self._open(self._register(), currency, limit, False, opened_at)

    @precondition(lambda self: self.customers)
    @rule(target=accounts, data=st.data(), currency=st.sampled_from(CURRENCIES), limit=limits)
    def open_another_account(self, data: st.DataObject, currency: str, limit: int) -> UUID:
        customer_id = data.draw(st.sampled_from(list(self.customers)))  # creation order
        return self._open(customer_id, currency, limit, False)

    # -------------------------------------------------------------- movements

    @rule(account=accounts, minor=amounts, wrong_currency=rarely,
          channel=st.sampled_from(CHANNELS), use_claim=st.booleans(), short=st.booleans())
    def deposit(self, account: UUID, minor: int, wrong_currency: bool, channel: str,
                use_claim: bool, short: bool) -> None:
        m = self.model[account]
        currency = other_currency(m.currency) if wrong_currency else m.currency
        amount = text_of(minor, currency, short)
        outcome = self.perform(
            self.movement_refusal(m, currency, minor, debit=False),
            lambda claim: self.bank.deposit(account, amount, currency, channel, CAUSE,
                                            reference="dep", claim=claim),
            use_claim, "/v1/deposits",
            {"account_id": str(account), "amount": amount, "currency": currency,
             "channel": channel, "reference": "dep"},
        )
        if outcome is None:
            return
        m.ledger += minor
        m.version += 1
        m.settle()
        internal = internal_for(channel)
        self.internal[currency][internal] -= minor
        self.check_transaction(outcome.body, "deposit", currency, minor, channel,
                               [(str(account), "credit", minor), (internal, "debit", minor)])

    def _withdraw(self, account: UUID, minor: int, currency: str, channel: str,
                  use_claim: bool, short: bool = False) -> None:
        m = self.model[account]
        amount = text_of(minor, currency, short)
        outcome = self.perform(
            self.movement_refusal(m, currency, minor, debit=True),
            lambda claim: self.bank.withdraw(account, amount, currency, channel, CAUSE,
                                             claim=claim),
            use_claim, "/v1/withdrawals",
            {"account_id": str(account), "amount": amount, "currency": currency,
             "channel": channel},
        )
        if outcome is None:
            return
        assert m.available - minor >= 0
        m.ledger -= minor
        m.version += 1
        m.settle()
        internal = internal_for(channel)
        self.internal[currency][internal] += minor
        self.check_transaction(outcome.body, "withdrawal", currency, minor, channel,
                               [(str(account), "debit", minor), (internal, "credit", minor)])
        self.check_funds_left(account)

    @rule(account=accounts, minor=amounts, wrong_currency=rarely,
          channel=st.sampled_from(CHANNELS), use_claim=st.booleans(), short=st.booleans())
    def withdraw(self, account: UUID, minor: int, wrong_currency: bool, channel: str,
                 use_claim: bool, short: bool) -> None:
        m = self.model[account]
        currency = other_currency(m.currency) if wrong_currency else m.currency
        self._withdraw(account, minor, currency, channel, use_claim, short)

    @rule(account=accounts, channel=st.sampled_from(CHANNELS))
    def withdraw_exactly_what_is_available(self, account: UUID, channel: str) -> None:
        m = self.model[account]
        if m.available > 0:
            self._withdraw(account, m.available, m.currency, channel, use_claim=False)

    @rule(account=accounts, use_claim=st.booleans())
    def withdraw_one_minor_unit_beyond_available(self, account: UUID, use_claim: bool) -> None:
        m = self.model[account]
        minor = max(m.available, 0) + 1
        # must be refused (insufficient, frozen or closed) and change nothing
        assert self.movement_refusal(m, m.currency, minor, debit=True) is not None
        self._withdraw(account, minor, m.currency, "cash", use_claim)

    @rule(source=accounts, destination=accounts, minor=amounts, data=st.data(),
          currency_of=st.sampled_from(["source"] * 6 + ["destination", "other"]),
          use_claim=st.booleans(), short=st.booleans())
    def transfer(self, source: UUID, destination: UUID, minor: int, data: st.DataObject,
                 currency_of: str, use_claim: bool, short: bool) -> None:
        src = self.model[source]
        peers = [a for a, m in self.model.items() if a != source and m.currency == src.currency]
        if peers and data.draw(rarely.map(lambda anyone: not anyone), label="peer"):
            # mostly between two accounts of one currency; sometimes anyone at all
            destination = data.draw(st.sampled_from(peers), label="destination")
        dst = self.model[destination]
        currency = {
            "source": src.currency,
            "destination": dst.currency,
            "other": other_currency(src.currency),
        }[currency_of]
        amount = text_of(minor, currency, short)
        expected: type[BankError] | None
        if source == destination:
            expected = ValidationFailed
        else:
            expected = self.transfer_refusal(src, dst, currency, minor)
        outcome = self.perform(
            expected,
            lambda claim: self.bank.transfer(source, destination, amount, currency, CAUSE,
                                             reference="xfer", claim=claim),
            use_claim, "/v1/transfers",
            {"from_account_id": str(source), "to_account_id": str(destination),
             "amount": amount, "currency": currency, "reference": "xfer"},
        )
        if outcome is None:
            return
        src.ledger -= minor
        dst.ledger += minor
        src.version += 1
        dst.version += 1
        src.settle()
        dst.settle()
        self.check_transaction(outcome.body, "transfer", currency, minor, "internal",
                               [(str(source), "debit", minor), (str(destination), "credit", minor)])
        self.check_funds_left(source)

    def closed_accounts(self) -> list[UUID]:
        return [a for a, m in self.model.items() if m.status == "closed"]

    @precondition(lambda self: self.closed_accounts())
    @rule(data=st.data(), minor=amounts, use_claim=st.booleans())
    def pay_into_a_closed_account(self, data: st.DataObject, minor: int, use_claim: bool) -> None:
        account = data.draw(st.sampled_from(self.closed_accounts()), label="closed")
        self.deposit(account, minor, False, "cash", use_claim, short=False)
        peers = [a for a, m in self.model.items()
                 if a != account and m.currency == self.model[account].currency]
        if peers:
            source = data.draw(st.sampled_from(peers), label="source")
            self.transfer(source, account, minor, data, "destination", use_claim, short=False)

    # -------------------------------------------------------------- status and limits

    @rule(account=accounts, use_claim=st.booleans())
    def freeze(self, account: UUID, use_claim: bool) -> None:
        m = self.model[account]
        expected = AccountClosed if m.status == "closed" else None
        outcome = self.perform(
            expected,
            lambda claim: self.bank.freeze_account(account, "compliance review", CAUSE,
                                                   claim=claim),
            use_claim, f"/v1/accounts/{account}/freeze", {"reason": "compliance review"},
        )
        if outcome is None:
            return
        if m.status == "active":
            m.status = "frozen"
            m.version += 1
        elif not use_claim:
            assert outcome.position is None, "freezing a frozen account wrote an event"
        self.check_account_view(outcome.body, m)

    @rule(account=accounts)
    def unfreeze(self, account: UUID) -> None:
        m = self.model[account]
        expected = AccountClosed if m.status == "closed" else None
        outcome = self.perform(
            expected,
            lambda claim: self.bank.unfreeze_account(account, CAUSE, claim=claim),
            path=f"/v1/accounts/{account}/unfreeze", body={},
        )
        if outcome is None:
            return
        if m.status == "frozen":
            m.status = "active"
            m.version += 1
        else:
            assert outcome.position is None
        self.check_account_view(outcome.body, m)

    @rule(account=accounts, use_claim=st.booleans())
    def close(self, account: UUID, use_claim: bool) -> None:
        m = self.model[account]
        expected: type[BankError] | None = None
        if m.status == "closed":
            expected = AccountClosed
        elif m.ledger != 0 or m.held() != 0:
            expected = AccountNotEmpty  # a lapsed hold does not keep it open
        outcome = self.perform(
            expected,
            lambda claim: self.bank.close_account(account, CAUSE, claim=claim),
            use_claim, f"/v1/accounts/{account}/close", {},
            # first, whatever it decides, the expiry of its lapsed holds is recorded
            expiring=lambda: self.due_expiries(self.model[account].holds.values()),
        )
        if outcome is None:
            return
        m.status = "closed"
        m.version += 1
        self.check_account_view(outcome.body, m)

    def open_accounts(self) -> int:
        return sum(1 for m in self.model.values() if m.status != "closed")

    @precondition(lambda self: self.open_accounts() >= 4)
    @rule(account=accounts, channel=st.sampled_from(CHANNELS))
    def settle_to_zero_and_close(self, account: UUID, channel: str) -> None:
        """Release its holds, bring the ledger to exactly zero (if the account can
        move) and close it."""
        m = self.model[account]
        now = self.clock()
        for hold_id in [h for h, held in m.holds.items() if held.status_at(now) == "active"]:
            self.release(hold_id, use_claim=False)
        if m.ledger > 0 and m.status == "active":
            self._withdraw(account, m.ledger, m.currency, channel, use_claim=False)
        elif m.ledger < 0 and m.status != "closed":
            self.deposit(account, -m.ledger, False, channel, use_claim=False, short=False)
        self.close(account, use_claim=False)

    @rule(account=accounts, limit=limits, short=st.booleans(), use_claim=st.booleans())
    def set_limit(self, account: UUID, limit: int, short: bool, use_claim: bool) -> None:
        m = self.model[account]
        text = text_of(limit, m.currency, short)
        expected = AccountClosed if m.status == "closed" else None
        outcome = self.perform(
            expected,
            lambda claim: self.bank.set_overdraft_limit(account, text, CAUSE, claim=claim),
            use_claim, f"/v1/accounts/{account}/limits", {"overdraft_limit": text},
        )
        if outcome is None:
            return
        if limit != m.limit:
            m.limit = limit
            m.version += 1
            m.excess_by_cut = m.available < 0
        elif not use_claim:
            assert outcome.position is None
        self.check_account_view(outcome.body, m)

    @rule(account=accounts)
    def cut_limit_below_what_is_drawn(self, account: UUID) -> None:
        m = self.model[account]
        if m.ledger < 0 and m.status != "closed":
            # halve what the account may draw: it is now in excess
            self.set_limit(account, -m.ledger // 2, short=False, use_claim=False)

    # -------------------------------------------------------------- time

    @rule(minutes=time_steps)
    def advance_time(self, minutes: int) -> None:
        self.clock.now += timedelta(minutes=minutes)

    def pending_expiries(self) -> list[datetime]:
        now = self.clock()
        return sorted({
            h.expires_at for h in self.model_holds.values()
            if h.status == "active" and h.expires_at is not None and h.expires_at > now
        })

    @precondition(lambda self: self.pending_expiries())
    @rule(data=st.data())
    def advance_to_an_expiry(self, data: st.DataObject) -> None:
        """A hold counts until the moment before its expires_at, and stops counting at
        expires_at, though nothing has recorded its expiry yet."""
        expires_at = data.draw(st.sampled_from(self.pending_expiries()), label="expires_at")
        lapsing = [h for h in self.model_holds.values()
                   if h.status == "active" and h.expires_at == expires_at]
        self.clock.now = expires_at - timedelta(microseconds=1)
        held_before = {}
        for h in lapsing:
            assert self.bank.get_hold(h.hold_id)["status"] == "active"
            view = self.bank.get_account(h.account_id)
            self.check_account_view(view, self.model[h.account_id])
            held_before[h.account_id] = Decimal(view["held_amount"])
        self.clock.now = expires_at
        for account_id, before in held_before.items():
            view = self.bank.get_account(account_id)
            self.check_account_view(view, self.model[account_id])
            freed = sum(h.remaining for h in lapsing if h.account_id == account_id)
            assert Decimal(view["held_amount"]) == before - decimal_of(
                freed, self.model[account_id].currency
            )
        event("the clock at a hold's expires_at")
        for h in lapsing:
            assert self.bank.get_hold(h.hold_id)["status"] == "expired"
            rebuilt = self.bank.reconstruct(h.hold_id)
            assert rebuilt is not None
            assert rebuilt.status == "active"  # its expiry is not recorded yet

    # -------------------------------------------------------------- holds

    @rule(target=holds, account=accounts, data=st.data(), wrong_currency=rarely,
          how_much=st.sampled_from(["part"] * 4 + ["all available", "beyond available", "any"]),
          life=hold_lives, reference=st.sampled_from([None, "card 4242"]),
          use_claim=st.booleans())
    def place_hold(self, account: UUID, data: st.DataObject, wrong_currency: bool,
                   how_much: str, life: int | None, reference: str | None,
                   use_claim: bool) -> Any:
        m = self.model[account]
        currency = other_currency(m.currency) if wrong_currency else m.currency
        minor = {
            "part": lambda: data.draw(st.integers(1, max(m.available, 1)), label="part"),
            "all available": lambda: max(m.available, 1),
            "beyond available": lambda: max(m.available, 0) + 1,
            "any": lambda: data.draw(amounts, label="amount"),
        }[how_much]()
        now = self.clock()
        expires_at = None if life is None else now + timedelta(minutes=life)
        amount = text_of(minor, currency)
        expected = (
            ValidationFailed
            if expires_at is not None and expires_at <= now
            else self.movement_refusal(m, currency, minor, debit=True)
        )
        outcome = self.perform(
            expected,
            lambda claim: self.bank.place_hold(account, amount, currency, CAUSE,
                                               reference=reference, expires_at=expires_at,
                                               claim=claim),
            use_claim, "/v1/holds",
            {"account_id": str(account), "amount": amount, "currency": currency,
             "reference": reference, "expires_at": timestamp(expires_at)},
            valid_until=expires_at,
        )
        if outcome is None:
            return multiple()
        hold_id = UUID(outcome.body["hold_id"])
        h = ModelHold(hold_id, account, currency, minor, expires_at, reference)
        assert hold_id not in self.model_holds
        self.model_holds[hold_id] = h
        m.holds[hold_id] = h
        m.version += 1
        self.check_hold_view(outcome.body, h)
        self.check_funds_left(account)
        return hold_id

    @rule(hold=holds, data=st.data(),
          how_much=st.sampled_from(["all", "all", "remaining", "part", "part", "beyond"]),
          to=st.sampled_from(["clearing"] * 3 + ["peer"] * 3 + ["own", "other currency"]),
          use_claim=st.booleans())
    def capture(self, hold: UUID, data: st.DataObject, how_much: str, to: str,
                use_claim: bool) -> None:
        h = self.model_holds[hold]
        m = self.model[h.account_id]
        c = h.currency
        minor: int | None = {
            "all": lambda: None,  # the default: all that remains
            "remaining": lambda: max(h.remaining, 1),
            "part": lambda: data.draw(st.integers(1, max(h.remaining - 1, 1)), label="part"),
            "beyond": lambda: h.remaining + 1,
        }[how_much]()
        destination: UUID | None = None
        if to == "own":
            destination = h.account_id
        elif to != "clearing":
            wanted = c if to == "peer" else other_currency(c)
            candidates = [a for a, other in self.model.items()
                          if a != h.account_id and other.currency == wanted]
            if candidates:
                destination = data.draw(st.sampled_from(candidates), label="destination")
        dst = self.model[destination] if destination is not None else None
        taken = h.remaining if minor is None else minor
        expected: type[BankError] | None = None
        if destination == h.account_id:
            expected = ValidationFailed
        elif dst is not None and dst.currency != c:
            expected = CurrencyMismatch
        elif "closed" in (dst.status if dst is not None else None, m.status):
            expected = AccountClosed  # the destination's, then the hold's account
        elif m.status == "frozen":
            expected = AccountFrozen
        elif m.available < 0:
            # A capture leaves available as it was, but every debit but a reversal must
            # leave it >= 0, and a reversal or a limit cut can have taken it below.
            expected = InsufficientFunds
        elif h.status_at(self.clock()) != "active":
            expected = HoldNotActive
            event(f"capture: on a hold {h.status_at(self.clock())}")
        elif taken > h.remaining:
            expected = CaptureExceedsHold
        body: dict[str, Any] = {}
        if minor is not None:
            body["amount"] = text_of(minor, c)
        if destination is not None:
            body["to_account_id"] = str(destination)
        outcome = self.perform(
            expected,
            lambda claim: self.bank.capture_hold(
                hold, CAUSE, amount=body.get("amount"), to_account_id=destination, claim=claim
            ),
            use_claim, f"/v1/holds/{hold}/capture", body,
            expiring=lambda: self.due_expiries([h]),
        )
        if outcome is None:
            return
        h.captured += taken
        h.version += 1
        m.ledger -= taken
        m.version += 2  # the held money let go, then debited
        if h.captured == h.amount:
            h.status = "captured"
            del m.holds[hold]
        credited = "clearing"
        if dst is not None:
            credited = str(destination)
            dst.ledger += taken
            dst.version += 1
            dst.settle()
        else:
            self.internal[c]["clearing"] += taken
        self.check_transaction(outcome.body, "capture", c, taken, "internal",
                               [(str(h.account_id), "debit", taken), (credited, "credit", taken)])
        assert outcome.body["reference"] == h.reference
        self.check_hold_view(self.bank.get_hold(hold), h)
        self.check_funds_left(h.account_id)

    @rule(hold=holds, use_claim=st.booleans())
    def release(self, hold: UUID, use_claim: bool) -> None:
        h = self.model_holds[hold]
        m = self.model[h.account_id]
        # frozen or not; a hold that ended (a closed account's, say) is not active
        expected = None if h.status_at(self.clock()) == "active" else HoldNotActive
        outcome = self.perform(
            expected,
            lambda claim: self.bank.release_hold(hold, CAUSE, reason="customer",
                                                 claim=claim),
            use_claim, f"/v1/holds/{hold}/release", {"reason": "customer"},
            expiring=lambda: self.due_expiries([h]),
        )
        if outcome is None:
            return
        h.status = "released"
        h.version += 1
        del m.holds[hold]
        m.version += 1
        m.settle()
        self.check_hold_view(outcome.body, h)

    @rule(target=holds, account=accounts, data=st.data(), life=hold_lives,
          then=st.lists(st.sampled_from(["wait", "lapse", "capture", "capture", "release",
                                         "sweep"]), min_size=1, max_size=4))
    def a_hold_and_what_follows(self, account: UUID, data: st.DataObject, life: int | None,
                                then: list[str]) -> Any:
        """A hold, then time passing and acts on it: the interplay in one rule."""
        placed = self.place_hold(account, data, False, "part", life, "card 4242", False)
        if not isinstance(placed, UUID):
            return placed
        h = self.model_holds[placed]
        for step in then:
            if step == "wait":
                self.advance_time(data.draw(time_steps, label="minutes"))
            elif step == "lapse":  # to its expires_at exactly
                if h.expires_at is not None and h.expires_at > self.clock():
                    self.clock.now = h.expires_at
            elif step == "capture":
                how_much = data.draw(st.sampled_from(["all", "part", "part", "beyond"]))
                to = data.draw(st.sampled_from(["clearing", "peer"]), label="to")
                self.capture(placed, data, how_much, to, data.draw(st.booleans()))
            elif step == "release":
                self.release(placed, data.draw(st.booleans(), label="use_claim"))
            else:
                self.sweep_lapsed_holds()
        return placed

    def lapsed_holds(self) -> list[UUID]:
        now = self.clock()
        return [h.hold_id for h in self.model_holds.values() if h.lapsed_at(now)]

    @precondition(lambda self: self.lapsed_holds())
    @rule(data=st.data(), capture=st.booleans(), use_claim=st.booleans())
    def act_on_a_lapsed_hold(self, data: st.DataObject, capture: bool, use_claim: bool) -> None:
        """Past expires_at, unrecorded: the touch records the expiry, then refuses."""
        hold = data.draw(st.sampled_from(self.lapsed_holds()), label="lapsed")
        if capture:
            self.capture(hold, data, "all", "clearing", use_claim)
        else:
            self.release(hold, use_claim)
        assert self.model_holds[hold].status == "expired"

    @precondition(lambda self: self.lapsed_holds())
    @rule(data=st.data(), channel=st.sampled_from(CHANNELS))
    def spend_what_a_lapsed_hold_freed(self, data: st.DataObject, channel: str) -> None:
        """Its expiry unrecorded, a lapsed hold no longer counts: all that is available
        now, the lapsed hold's money included, may be withdrawn."""
        hold = data.draw(st.sampled_from(self.lapsed_holds()), label="lapsed")
        m = self.model[self.model_holds[hold].account_id]
        if m.available > 0:
            event(f"withdrawal of what a lapsed hold freed, from an account {m.status}")
            self._withdraw(m.account_id, m.available, m.currency, channel, use_claim=False)

    @rule()
    def sweep_lapsed_holds(self) -> None:
        due = self.due_expiries(self.model_holds.values())
        before = self.bank.last_position()
        assert self.bank.expire_lapsed_holds() == len(due)
        self.record_expiries(due)
        assert self.events_since(before) == 2 * len(due)
        assert self.bank.expire_lapsed_holds() == 0, "an expiry was recorded twice"
        assert self.events_since(before) == 2 * len(due)

    # -------------------------------------------------------------- reversals

    def reversal_refusal(self, txn_id: UUID) -> type[BankError] | None:
        original = self.transactions[txn_id]
        if original["kind"] == "reversal":
            return ValidationFailed  # a reversal is not reversed again
        if any(self.model[UUID(e["account"])].status == "closed"
               for e in original["entries"] if e["account"] not in ("cash", "clearing")):
            return AccountClosed  # 409 account_closed before the other 409s
        if txn_id in self.reversed:
            return AlreadyReversed
        return None

    def _reverse(self, txn_id: UUID, use_claim: bool) -> None:
        original = self.transactions[txn_id]
        outcome = self.perform(
            self.reversal_refusal(txn_id),
            lambda claim: self.bank.reverse_transaction(txn_id, "booked in error", CAUSE,
                                                        claim=claim),
            use_claim, f"/v1/transactions/{txn_id}/reverse", {"reason": "booked in error"},
        )
        if outcome is None:
            return
        c = original["currency"]
        mirrored: list[tuple[str, str, int]] = []
        for e in original["entries"]:
            n = minor_of(e["amount"], c)
            direction = "credit" if e["direction"] == "debit" else "debit"
            mirrored.append((e["account"], direction, n))
            signed = n if direction == "credit" else -n
            if e["account"] in ("cash", "clearing"):
                self.internal[c][e["account"]] += signed
                continue
            a = self.model[UUID(e["account"])]
            a.ledger += signed
            a.version += 1
            if a.available < 0:
                # posted even below the limit (or on a frozen account)
                assert signed < 0 or a.excess_by_cut or a.excess_by_reversal
                a.excess_by_reversal = True
            a.settle()
        reversal_id = UUID(outcome.body["transaction_id"])
        self.check_transaction(outcome.body, "reversal", c, minor_of(original["amount"], c),
                               original["channel"], mirrored)
        assert outcome.body["reverses"] == str(txn_id)
        assert outcome.body["reference"] == original["reference"]
        self.reversed[txn_id] = reversal_id
        shown = self.bank.get_transaction(txn_id)
        assert shown["status"] == "reversed"
        assert shown["reversed_by"] == str(reversal_id)
        assert {k: shown[k] for k in original if k not in ("status", "position")} == {
            k: v for k, v in original.items() if k not in ("status", "position")
        }, "a reversal edited the original"
        if len(self.banks) == 1:
            assert self.bank.reconstruct(txn_id) == self.bank.repository.get(txn_id)

    @precondition(lambda self: self.transactions)
    @rule(data=st.data(), use_claim=st.booleans())
    def reverse(self, data: st.DataObject, use_claim: bool) -> None:
        """Any transaction at all: a repeat, a reversal, one on a closed account..."""
        self._reverse(data.draw(st.sampled_from(list(self.transactions))), use_claim)

    def reversible(self) -> list[UUID]:
        return [t for t in self.transactions if self.reversal_refusal(t) is None]

    @precondition(lambda self: self.reversible())
    @rule(data=st.data(), use_claim=st.booleans())
    def reverse_twice(self, data: st.DataObject, use_claim: bool) -> None:
        txn_id = data.draw(st.sampled_from(self.reversible()))
        self._reverse(txn_id, use_claim)
        assert txn_id in self.reversed
        self._reverse(txn_id, use_claim)  # 409 already_reversed, nothing written

    def on_closed_accounts(self) -> list[UUID]:
        return [t for t in self.transactions if self.reversal_refusal(t) is AccountClosed]

    @precondition(lambda self: self.on_closed_accounts())
    @rule(data=st.data(), use_claim=st.booleans())
    def reverse_on_a_closed_account(self, data: st.DataObject, use_claim: bool) -> None:
        self._reverse(data.draw(st.sampled_from(self.on_closed_accounts())), use_claim)

    # -------------------------------------------------------------- batches

    def draw_item(self, data: st.DataObject, pool: list[UUID]) -> dict[str, Any]:
        """One well-formed item, as the HTTP layer hands it over (ids, timestamps)."""
        kind = data.draw(st.sampled_from(("deposit", "withdrawal", "transfer")), label="type")
        how = data.draw(st.sampled_from(["some"] * 4 + ["beyond", "other currency"]),
                        label="how")
        account = data.draw(st.sampled_from(pool), label="account")
        m = self.model[account]
        currency = other_currency(m.currency) if how == "other currency" else m.currency
        minor = max(m.available, 0) + 1 if how == "beyond" else data.draw(amounts)
        amount = text_of(minor, currency)
        others = [a for a in self.model if a != account]
        if kind == "transfer" and others:
            peers = [a for a in others if self.model[a].currency == m.currency]
            destination = data.draw(st.sampled_from(peers or others), label="to")
            return {"type": kind, "from_account_id": account, "to_account_id": destination,
                    "amount": amount, "currency": currency, "reference": "batch",
                    "booked_at": None}
        channel = data.draw(st.sampled_from(CHANNELS), label="channel")
        return {"type": "withdrawal" if kind == "withdrawal" else "deposit",
                "account_id": account, "amount": amount, "currency": currency,
                "channel": channel, "reference": "batch", "conducted_by": None,
                "counterparty": None, "booked_at": None}

    def business_day(self, moment: datetime) -> date:
        return moment.astimezone(self.bank.business_tz).date()

    def item_refusal(
        self, item: dict[str, Any], running: dict[UUID, ModelAccount]
    ) -> type[BankError] | None:
        transfer = item["type"] == "transfer"
        ids = [item["from_account_id"], item["to_account_id"]] if transfer else [item["account_id"]]
        booked_at = item["booked_at"]
        if booked_at is not None:
            day = self.business_day(booked_at)
            if self.closed_through is not None and day <= self.closed_through:
                return BusinessDayClosed
            if any(booked_at < running[a].opened_on for a in ids):
                return BookedBeforeOpening
        currency = item["currency"]
        minor = minor_of(item["amount"], currency)
        if transfer:
            return self.transfer_refusal(running[ids[0]], running[ids[1]], currency, minor)
        return self.movement_refusal(
            running[ids[0]], currency, minor, debit=item["type"] == "withdrawal"
        )

    def apply_item(
        self,
        item: dict[str, Any],
        running: dict[UUID, ModelAccount],
        internal: dict[str, dict[str, int]],
    ) -> list[tuple[str, str, int]]:
        """The running state after a posted item; its entries."""
        c = item["currency"]
        minor = minor_of(item["amount"], c)
        if item["type"] == "transfer":
            src, dst = running[item["from_account_id"]], running[item["to_account_id"]]
            src.ledger -= minor
            dst.ledger += minor
            for m in (src, dst):
                m.version += 1
                m.settle()
            return [(str(src.account_id), "debit", minor), (str(dst.account_id), "credit", minor)]
        m = running[item["account_id"]]
        code = internal_for(item["channel"])
        sign = 1 if item["type"] == "deposit" else -1
        m.ledger += sign * minor
        m.version += 1
        m.settle()
        internal[c][code] -= sign * minor
        customer, bank = ("credit", "debit") if sign > 0 else ("debit", "credit")
        return [(str(m.account_id), customer, minor), (code, bank, minor)]

    def _post_batch(self, atomic: bool, items: list[dict[str, Any]], use_claim: bool) -> None:
        """Items apply in order against the running state: predict each on a copy."""
        running = {a: copy.copy(m) for a, m in self.model.items()}
        internal = copy.deepcopy(self.internal)
        predicted: list[tuple[type[BankError] | None, list[tuple[str, str, int]]]] = []
        for item in items:
            refusal = self.item_refusal(item, running)
            entries = [] if refusal is not None else self.apply_item(item, running, internal)
            predicted.append((refusal, entries))
        refused = [(i, r.code) for i, (r, _) in enumerate(predicted) if r is not None]
        before = {a: (m.ledger, m.version) for a, m in self.model.items()}
        outcome = self.perform(
            BatchRejected if atomic and refused else None,
            lambda claim: self.bank.post_batch(atomic, items, CAUSE, claim=claim),
            use_claim, "/v1/batches", {"atomic": atomic, "items": [jsonable(i) for i in items]},
        )
        if outcome is None:
            # all or nothing: each failing item named with its own code, nothing posted
            assert isinstance(self.last_refusal, BatchRejected)
            assert [(x["index"], x["code"]) for x in self.last_refusal.items] == refused
            for a, m in self.model.items():
                view = self.bank.get_account(a)
                assert (minor_of(view["ledger_balance"], m.currency), view["version"]) == before[a]
            return
        self.model.update(running)
        self.internal = internal
        body = outcome.body
        assert body["atomic"] is atomic
        assert [r["index"] for r in body["results"]] == list(range(len(items)))
        debited: set[UUID] = set()
        for item, (refusal, entries), result in zip(items, predicted, body["results"],
                                                    strict=True):
            if refusal is not None:
                assert result["status"] == "rejected"
                assert result["error"]["code"] == refusal.code
                assert "transaction" not in result
                continue
            assert result["status"] == "posted"
            c = item["currency"]
            self.check_transaction(
                result["transaction"], item["type"], c, minor_of(item["amount"], c),
                item.get("channel", "internal"), entries, booked_at=item["booked_at"],
            )
            if item["type"] != "deposit":
                debited.add(item.get("from_account_id") or item["account_id"])
        batch_id = UUID(body["batch_id"])
        assert self.bank.get_batch(batch_id) == {**body, "position": outcome.position}
        if len(self.banks) == 1:
            assert self.bank.reconstruct(batch_id) == self.bank.repository.get(batch_id)
        self.check_funds_left(*debited)

    @rule(data=st.data(), atomic=st.booleans(), size=st.integers(1, 4),
          use_claim=st.booleans())
    def post_batch(self, data: st.DataObject, atomic: bool, size: int, use_claim: bool) -> None:
        items = [self.draw_item(data, list(self.model)) for _ in range(size)]
        self._post_batch(atomic, items, use_claim)

    @rule(data=st.data(), atomic=st.booleans(), size=st.integers(1, 3),
          use_claim=st.booleans())
    def import_history(self, data: st.DataObject, atomic: bool, size: int,
                       use_claim: bool) -> None:
        """Items booked in the past, non-decreasing: some before an account was opened,
        some on closed days."""
        now = self.clock()
        opened = [a for a, m in self.model.items() if m.opened_on < now]
        pool = opened if opened and data.draw(rarely.map(lambda anyone: not anyone)) else list(
            self.model
        )
        items = [self.draw_item(data, pool) for _ in range(size)]
        minutes_ago = data.draw(st.lists(st.integers(0, 7 * 24 * 60), min_size=size,
                                         max_size=size), label="minutes ago")
        for item, ago in zip(items, sorted(minutes_ago, reverse=True), strict=True):
            item["booked_at"] = now - timedelta(minutes=ago)
        self._post_batch(atomic, items, use_claim)

    @rule(data=st.data(), atomic=st.booleans(),
          flaw=st.sampled_from(["decreasing", "future", "precision", "empty"]))
    def post_a_malformed_batch(self, data: st.DataObject, atomic: bool, flaw: str) -> None:
        """A 422 naming the malformed item: nothing applied, nothing remembered."""
        items = [self.draw_item(data, list(self.model)) for _ in range(2)]
        now = self.clock()
        loc: tuple[str | int, ...] = ("items", 1, "booked_at")
        if flaw == "decreasing":
            items[0]["booked_at"] = now - timedelta(hours=1)
            items[1]["booked_at"] = now - timedelta(hours=2)
        elif flaw == "future":
            items[1]["booked_at"] = now + timedelta(microseconds=1)
        elif flaw == "precision":
            items[1]["amount"] = "1.001"  # too precise for EUR and JPY alike
            loc = ("items", 1, "amount")
        else:
            items, loc = [], ("items",)
        self.perform(
            ValidationFailed,
            lambda claim: self.bank.post_batch(atomic, items, CAUSE, claim=claim),
            True, "/v1/batches", {"atomic": atomic, "items": [jsonable(i) for i in items]},
        )
        assert isinstance(self.last_refusal, ValidationFailed)
        assert [where for where, _ in self.last_refusal.errors] == [loc]

    # -------------------------------------------------------------- business days

    @rule(days_back=st.integers(-1, 7), use_claim=st.booleans())
    def close_business_day(self, days_back: int, use_claim: bool) -> None:
        now = self.clock()
        today = self.business_day(now)
        day = today - timedelta(days=days_back)
        outcome = self.perform(
            ValidationFailed if day >= today else None,  # only a past day
            lambda claim: self.bank.close_business_day(day, CAUSE, claim=claim),
            use_claim, f"/v1/business-days/{day.isoformat()}/close", {},
        )
        if outcome is None:
            return
        if self.closed_through is None or day > self.closed_through:
            self.closed_through, self.closed_at = day, now
            assert outcome.position is not None
        elif not use_claim:
            assert outcome.position is None, "closing a closed day wrote an event"
        assert outcome.body == {"date": day.isoformat(), "closed_at": timestamp(self.closed_at)}

    # -------------------------------------------------------------- idempotency

    def retry(self, claimed: Claimed) -> tuple[Callable[[Claim], Outcome | None], list[ModelHold]]:
        """How to send a claimed request again, and the expiries that records first."""
        if claimed.valid_until is not None and self.clock() >= claimed.valid_until:
            # Its expires_at is past: the Bank's form check refuses the request itself
            # now, so look the key up first, as the HTTP pipeline always does.
            return self.bank.replay, []
        return claimed.request, claimed.expiring()

    def batch_transactions_reversed(self, body: dict[str, Any]) -> bool:
        return any(UUID(r["transaction"]["transaction_id"]) in self.reversed
                   for r in body["results"] if "transaction" in r)

    @precondition(lambda self: self.claimed)
    @rule(data=st.data())
    def replay_a_claimed_request(self, data: st.DataObject) -> None:
        claimed = data.draw(st.sampled_from(self.claimed))
        request, due = self.retry(claimed)
        before = self.bank.last_position()
        if claimed.error is not None:
            try:
                request(claimed.claim)
            except ReplayedError as replayed:
                assert replayed.code == claimed.error.code
                assert replayed.detail == claimed.error.detail
                assert replayed.extra() == claimed.error.extra()
            else:
                raise AssertionError("a remembered refusal was not replayed")
        else:
            outcome = request(claimed.claim)
            assert claimed.outcome is not None
            assert outcome is not None
            assert outcome.replayed
            if "batch_id" in claimed.outcome.body and self.batch_transactions_reversed(
                claimed.outcome.body
            ):
                event("batch replayed after a reversal of one of its transactions")
            # the stored answer, whatever happened since (a batch's transactions as posted)
            assert outcome.body == claimed.outcome.body
            assert outcome.position == claimed.outcome.position
        self.record_expiries(due)
        assert self.events_since(before) == 2 * len(due), "a replay wrote an event"

    @precondition(lambda self: self.claimed)
    @rule(data=st.data())
    def reuse_a_key_for_another_request(self, data: st.DataObject) -> None:
        claimed = data.draw(st.sampled_from(self.claimed))
        other = Claim(claimed.claim.scope, claimed.claim.key, "another-request")
        request, due = self.retry(claimed)
        before = self.bank.last_position()
        try:
            request(other)
        except IdempotencyKeyReused as refused:
            assert refused.code == "idempotency_key_reused"
        else:
            raise AssertionError("a reused Idempotency-Key was accepted")
        self.record_expiries(due)
        assert self.events_since(before) == 2 * len(due)

    # -------------------------------------------------------------- invariants

    @invariant()
    def money_is_conserved_per_currency(self) -> None:
        actual = self.bank.internal_balances()
        assert set(actual) <= set(CURRENCIES)
        for currency in CURRENCIES:
            internal = actual.get(currency, {"cash": Decimal(0), "clearing": Decimal(0)})
            for code in ("cash", "clearing"):
                assert internal.get(code, Decimal(0)) == decimal_of(
                    self.internal[currency][code], currency
                ), (currency, code)
            customers = sum(
                (Decimal(self.bank.get_account(a)["ledger_balance"])
                 for a, m in self.model.items() if m.currency == currency),
                Decimal(0),
            )
            assert customers + sum(internal.values(), Decimal(0)) == 0, currency
            model_customers = sum(m.ledger for m in self.model.values() if m.currency == currency)
            assert model_customers + sum(self.internal[currency].values()) == 0

    @invariant()
    def nothing_below_available_but_a_limit_cut_or_a_reversal(self) -> None:
        for m in self.model.values():
            view = self.bank.get_account(m.account_id)
            available = Decimal(view["available_balance"])
            assert available == decimal_of(m.available, m.currency)
            if available < 0:
                assert m.excess_by_cut or m.excess_by_reversal, (
                    f"{m.account_id} below zero available without a cut or a reversal"
                )

    @invariant()
    def store_replays_to_the_model(self) -> None:
        for m in self.model.values():
            self.check_account_view(self.bank.get_account(m.account_id), m)
            rebuilt = self.bank.reconstruct(m.account_id)
            assert rebuilt is not None
            if len(self.banks) == 1:
                # one process: its in-memory copy must be exactly what the store replays
                # (with several, a copy may lag until the process next conflicts)
                assert rebuilt == self.bank.repository.get(m.account_id)
            assert rebuilt.ledger_balance == decimal_of(m.ledger, m.currency)
            assert rebuilt.overdraft_limit == decimal_of(m.limit, m.currency)
            assert rebuilt.status == m.status
            assert rebuilt.version == m.version
            assert rebuilt.currency == m.currency
            assert rebuilt.customer_id == m.customer_id
            # the holds its record lists, lapsed ones too until their expiry is recorded
            assert {UUID(str(h)): tuple(held) for h, held in rebuilt.holds.items()} == {
                h.hold_id: (decimal_of(h.remaining, h.currency), h.expires_at)
                for h in m.holds.values()
            }
            assert rebuilt.held_amount(self.clock()) == decimal_of(m.held(), m.currency)

    @invariant()
    def holds_replay_to_the_model(self) -> None:
        for h in self.model_holds.values():
            self.check_hold_view(self.bank.get_hold(h.hold_id), h)
            rebuilt = self.bank.reconstruct(h.hold_id)
            assert rebuilt is not None
            if len(self.banks) == 1:
                assert rebuilt == self.bank.repository.get(h.hold_id)
            assert rebuilt.status == h.status  # as recorded: a lapsed one still active
            assert rebuilt.amount == decimal_of(h.amount, h.currency)
            assert rebuilt.captured_amount == decimal_of(h.captured, h.currency)
            assert rebuilt.captured_amount <= rebuilt.amount, "captured more than held"
            assert rebuilt.version == h.version
            # what it captured is what its capture transactions moved
            assert sum(
                (minor_of(self.transactions[t]["amount"], h.currency) for t in rebuilt.capture_ids),
                0,
            ) == h.captured
        for account_id, m in self.model.items():
            listed = self.bank.account_holds(account_id)
            placed = [h for h in self.model_holds.values() if h.account_id == account_id]
            assert [UUID(x["hold_id"]) for x in listed] == [h.hold_id for h in placed]
            assert [x["status"] for x in listed] == [h.status_at(self.clock()) for h in placed]
            assert set(m.holds) <= {h.hold_id for h in placed}

    def logged(self, event_class: type) -> Iterator[Any]:
        """Every event of one type, from the log."""
        topic = f"{event_class.__module__}:{event_class.__qualname__}"
        start = 1
        while True:
            page = self.bank.recorder.select_notifications(start, 500, topics=[topic])
            yield from (self.bank.mapper.to_domain_event(n) for n in page)
            if len(page) < 500:
                return
            start = page[-1].id + 1

    @invariant()
    def transactions_are_reversed_at_most_once(self) -> None:
        posted = list(self.logged(Transaction.Posted))
        assert Counter(e.originator_id for e in posted) == Counter(list(self.transactions))
        reversals = [(e.reverses, e.originator_id) for e in posted if e.reverses is not None]
        assert len({r for r, _ in reversals}) == len(reversals), "reversed twice"
        assert dict(reversals) == self.reversed
        marked = [(e.originator_id, e.reversed_by) for e in self.logged(Transaction.Reversed)]
        assert len({t for t, _ in marked}) == len(marked), "marked reversed twice"
        assert dict(marked) == self.reversed

    @invariant()
    def closed_days_are_as_closed(self) -> None:
        assert self.bank.closed_through() == self.closed_through

    @invariant()
    def customers_list_their_accounts(self) -> None:
        for customer_id, account_ids in self.customers.items():
            listed = [UUID(a["account_id"]) for a in self.bank.customer_accounts(customer_id)]
            assert listed == account_ids


TestBankStateMachine = BankMachine.TestCase
TestBankStateMachine.settings = settings(
    max_examples=50,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
