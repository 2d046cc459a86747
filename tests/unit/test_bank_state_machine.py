"""The Bank application against a model, driven by a hypothesis state machine.

The machine keeps its own model of every account (balance, limit, status, version) and
of the bank's internal ledger accounts, predicts for every command whether the contract
accepts or refuses it (and with which error), and checks after every step that the
store, replayed from its events, says the same thing.

``BankMachine`` runs here on the in-memory store; tests/integration/test_bank_store.py
subclasses it to run on SQLite or PostgreSQL (``make_banks`` is the hook).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
    precondition,
    rule,
)

from application.bank import Bank
from application.errors import IdempotencyKeyReused, ReplayedError
from application.idempotency import Claim, Outcome, fingerprint
from domain.cause import Cause
from domain.currencies import MINOR_UNITS
from domain.errors import (
    AccountClosed,
    AccountFrozen,
    AccountNotEmpty,
    BankError,
    CurrencyMismatch,
    InsufficientFunds,
    ValidationFailed,
)
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


def other_currency(currency: str) -> str:
    return CURRENCIES[1 - CURRENCIES.index(currency)]


def internal_for(channel: str) -> str:
    return "cash" if channel == "cash" else "clearing"


# ------------------------------------------------------------------ the model


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
    # what was drawn; nothing else may take an account below zero available.
    excess_by_cut: bool = False

    @property
    def available(self) -> int:
        return self.ledger + self.limit

    def settle(self) -> None:
        if self.available >= 0:
            self.excess_by_cut = False


@dataclass
class Claimed:
    """A request made with an Idempotency-Key, and what it answered the first time."""

    request: Callable[[Claim | None], Outcome]
    claim: Claim
    outcome: Outcome | None
    error: BankError | None


amounts = st.integers(min_value=1, max_value=300_000)
limits = st.one_of(st.just(0), st.integers(min_value=0, max_value=100_000))
rarely = st.sampled_from([False, False, False, False, False, False, True])


class BankMachine(RuleBasedStateMachine):
    """Every command may be accepted or refused; the model says which."""

    accounts = Bundle("accounts")

    def __init__(self) -> None:
        super().__init__()
        self.banks: list[Bank] = self.make_banks()
        self.bank: Bank = self.banks[0]
        self.model: dict[UUID, ModelAccount] = {}
        self.customers: dict[UUID, list[UUID]] = {}
        # credit-positive balances of the bank's own accounts, per currency
        self.internal: dict[str, dict[str, int]] = {
            c: {"cash": 0, "clearing": 0} for c in CURRENCIES
        }
        self.transactions: dict[UUID, dict[str, Any]] = {}
        self.claimed: list[Claimed] = []
        self.commands = 0

    # -------------------------------------------------------------- store hooks

    def make_banks(self) -> list[Bank]:
        """One Bank, or several on one store (the second simulates another process)."""
        return [bootstrap(database_url="memory://")]

    def teardown(self) -> None:
        for bank in self.banks:
            bank.close()

    # -------------------------------------------------------------- helpers

    def perform(
        self,
        expected: type[BankError] | None,
        request: Callable[[Claim | None], Outcome],
        use_claim: bool = False,
        path: str = "",
        body: dict[str, Any] | None = None,
    ) -> Outcome | None:
        """Run a command; check it was accepted or refused as the model predicts."""
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
        before = self.bank.last_position()
        try:
            outcome = request(claim)
        except BankError as error:
            note(f"refused: {error!r}")
            event(f"{label}: {type(error).__name__}")
            assert expected is not None, f"model expected acceptance, got {error!r}"
            assert type(error) is expected, f"expected {expected.__name__}, got {error!r}"
            if claim is None or isinstance(error, ValidationFailed):
                assert self.bank.last_position() == before, "a refusal wrote an event"
            else:
                # the refusal is remembered with the key (one record, no effect)
                assert self.bank.last_position() > before
                self.claimed.append(Claimed(request, claim, None, error))
            return None
        assert expected is None, f"model expected {expected.__name__}, but it was accepted"
        event(f"{label}: accepted")
        assert not outcome.replayed
        if outcome.position is not None:
            assert outcome.position == self.bank.last_position()
        if claim is not None:
            self.claimed.append(Claimed(request, claim, outcome, None))
        return outcome

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

    def check_transaction(
        self,
        body: dict[str, Any],
        kind: str,
        currency: str,
        minor: int,
        channel: str,
        entries: list[tuple[str, str, int]],
    ) -> None:
        assert body["kind"] == kind
        assert body["status"] == "posted"
        assert body["currency"] == currency
        assert body["amount"] == printed(minor, currency)
        assert body["channel"] == channel
        assert body["booked_at"] == body["recorded_at"]
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
        assert view["held_amount"] == printed(0, c)
        assert view["version"] == m.version

    # -------------------------------------------------------------- customers, accounts

    def _open(self, customer_id: UUID, currency: str, limit: int, short: bool) -> UUID:
        outcome = self.perform(None, lambda claim: self.bank.open_account(
            customer_id, currency, CAUSE, overdraft_limit=text_of(limit, currency, short),
            claim=claim,
        ))
        assert outcome is not None
        account_id = UUID(outcome.body["account_id"])
        m = ModelAccount(account_id, customer_id, currency, limit)
        self.check_account_view(outcome.body, m)
        self.model[account_id] = m
        self.customers[customer_id].append(account_id)
        return account_id

    def _open_funded(self, currency: str, limit: int, funds: int) -> UUID:
        account = self.open_customer_and_account(currency, limit, short=False)
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

    @rule(target=accounts, currency=st.sampled_from(CURRENCIES), limit=limits,
          short=st.booleans())
    def open_customer_and_account(self, currency: str, limit: int, short: bool) -> UUID:
        outcome = self.bank.register_customer(
            {"name": "Grace Hopper", "kind": "person", "country": "US"}, CAUSE
        )
        customer_id = UUID(outcome.body["customer_id"])
        assert outcome.body["version"] == 1
        self.customers[customer_id] = []
        return self._open(customer_id, currency, limit, short)

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
        peers = list(a for a, m in self.model.items()
                       if a != source and m.currency == src.currency)
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
        elif src.currency != currency or dst.currency != currency:
            expected = CurrencyMismatch
        elif "closed" in (src.status, dst.status):
            expected = AccountClosed
        elif src.status == "frozen":
            expected = AccountFrozen
        elif src.available - minor < 0:
            expected = InsufficientFunds
        else:
            expected = None
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

    def closed_accounts(self) -> list[UUID]:
        return [a for a, m in self.model.items() if m.status == "closed"]

    @precondition(lambda self: self.closed_accounts())
    @rule(data=st.data(), minor=amounts, use_claim=st.booleans())
    def pay_into_a_closed_account(self, data: st.DataObject, minor: int, use_claim: bool) -> None:
        account = data.draw(st.sampled_from(self.closed_accounts()), label="closed")
        self.deposit(account, minor, False, "cash", use_claim, short=False)
        peers = list(a for a, m in self.model.items()
                       if a != account and m.currency == self.model[account].currency)
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
        elif m.ledger != 0:
            expected = AccountNotEmpty
        outcome = self.perform(
            expected,
            lambda claim: self.bank.close_account(account, CAUSE, claim=claim),
            use_claim, f"/v1/accounts/{account}/close", {},
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
        """Bring the ledger to exactly zero (if the account can move) and close it."""
        m = self.model[account]
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

    # -------------------------------------------------------------- idempotency

    @precondition(lambda self: self.claimed)
    @rule(data=st.data())
    def replay_a_claimed_request(self, data: st.DataObject) -> None:
        claimed = data.draw(st.sampled_from(self.claimed))
        before = self.bank.last_position()
        if claimed.error is not None:
            try:
                claimed.request(claimed.claim)
            except ReplayedError as replayed:
                assert replayed.code == claimed.error.code
                assert replayed.detail == claimed.error.detail
                assert replayed.extra() == claimed.error.extra()
            else:
                raise AssertionError("a remembered refusal was not replayed")
        else:
            outcome = claimed.request(claimed.claim)
            assert claimed.outcome is not None
            assert outcome.replayed
            assert outcome.body == claimed.outcome.body
            assert outcome.position == claimed.outcome.position
        assert self.bank.last_position() == before, "a replay wrote an event"

    @precondition(lambda self: self.claimed)
    @rule(data=st.data())
    def reuse_a_key_for_another_request(self, data: st.DataObject) -> None:
        claimed = data.draw(st.sampled_from(self.claimed))
        other = Claim(claimed.claim.scope, claimed.claim.key, "another-request")
        before = self.bank.last_position()
        try:
            claimed.request(other)
        except IdempotencyKeyReused as refused:
            assert refused.code == "idempotency_key_reused"
        else:
            raise AssertionError("a reused Idempotency-Key was accepted")
        assert self.bank.last_position() == before

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
    def nothing_below_available_but_a_limit_cut(self) -> None:
        for m in self.model.values():
            view = self.bank.get_account(m.account_id)
            available = Decimal(view["available_balance"])
            assert available == decimal_of(m.available, m.currency)
            if available < 0:
                assert m.excess_by_cut, f"{m.account_id} below zero available without a cut"

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

    @invariant()
    def customers_list_their_accounts(self) -> None:
        for customer_id, account_ids in self.customers.items():
            listed = [UUID(a["account_id"]) for a in self.bank.customer_accounts(customer_id)]
            assert listed == account_ids


TestBankStateMachine = BankMachine.TestCase
TestBankStateMachine.settings = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
