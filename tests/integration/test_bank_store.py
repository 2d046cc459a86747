"""The Bank on a real store (SQLite, or PostgreSQL with BACKOFFICE_DATABASE_URL).

Reuses the unit suite's state machine with a fresh store per example, two Bank
instances on it (two server processes), and checks that a Bank bootstrapped later on
the same file or schema rebuilds the same state by replay.
"""

from __future__ import annotations

import itertools
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from application.bank import Bank
from application.idempotency import Claim, fingerprint
from domain.cause import Cause
from domain.errors import AccountFrozen, InsufficientFunds
from infrastructure.bootstrap import bootstrap

_UNIT = str(Path(__file__).resolve().parents[1] / "unit")
if _UNIT not in sys.path:
    sys.path.insert(0, _UNIT)

from test_bank_state_machine import BankMachine

CAUSE = Cause(actor_key_id="key-store", actor_role="admin", request_id=None, via="api")

StoreFactory = Callable[[], tuple[str, Callable[[], None]]]


def store_factory(database_url: str, tmp_path: Path) -> StoreFactory:
    """Fresh, empty stores of the same kind as ``database_url``, one per call."""
    counter = itertools.count()
    if database_url.startswith("sqlite:///"):

        def new_sqlite() -> tuple[str, Callable[[], None]]:
            return f"sqlite:///{tmp_path}/example-{next(counter)}.sqlite", lambda: None

        return new_sqlite

    base = database_url.split("?", 1)[0]

    def new_schema() -> tuple[str, Callable[[], None]]:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')

        def drop() -> None:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

        return f"{base}?schema={schema}", drop

    return new_schema


class StoreBankMachine(BankMachine):
    """The model-based machine on a fresh store per example."""

    new_store: StoreFactory  # set per test
    processes = 1

    def make_banks(self) -> list[Bank]:
        self.url, self._drop = type(self).new_store()
        # more than one Bank on the store simulates several server processes
        return [bootstrap(database_url=self.url, with_views=False) for _ in range(self.processes)]

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            self._drop()


STORE_SETTINGS = settings(
    max_examples=8,
    stateful_step_count=20,
    deadline=None,
    # shrinking on a real store takes minutes; the whole failing run is printed instead
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def run_on_store(database_url: str, tmp_path: Path, processes: int) -> None:
    machine = type(
        f"StoreBankMachineWith{processes}Processes",
        (StoreBankMachine,),
        {"new_store": staticmethod(store_factory(database_url, tmp_path)),
         "processes": processes},
    )
    run_state_machine_as_test(machine, settings=STORE_SETTINGS)


def test_the_model_holds_on_the_store(database_url: str, tmp_path: Path) -> None:
    run_on_store(database_url, tmp_path, processes=1)


def test_the_model_holds_with_two_processes_on_one_store(
    database_url: str, tmp_path: Path
) -> None:
    """Commands go to two Banks on one store in turn (two server processes)."""
    run_on_store(database_url, tmp_path, processes=2)


def account_state(bank: Bank, account_id: UUID) -> dict:
    view = bank.get_account(account_id)
    rebuilt = bank.reconstruct(account_id)
    return {
        "view": view,
        "replayed": (rebuilt.ledger_balance, rebuilt.overdraft_limit, rebuilt.status,
                     rebuilt.version),
    }


def test_a_second_bank_on_the_same_store_sees_the_same_state(database_url: str) -> None:
    first = bootstrap(database_url=database_url, with_views=False)
    try:
        customer = UUID(first.register_customer(
            {"name": "Ada", "kind": "person", "country": "GB"}, CAUSE).body["customer_id"])
        eur_a = UUID(first.open_account(customer, "EUR", CAUSE, overdraft_limit="50.00")
                     .body["account_id"])
        eur_b = UUID(first.open_account(customer, "EUR", CAUSE).body["account_id"])
        jpy = UUID(first.open_account(customer, "JPY", CAUSE, overdraft_limit="1000")
                   .body["account_id"])
        txns = [
            first.deposit(eur_a, "100.00", "EUR", "cash", CAUSE).body,
            first.deposit(jpy, "5000", "JPY", "wire", CAUSE).body,
            first.transfer(eur_a, eur_b, "120.50", "EUR", CAUSE).body,
            first.withdraw(jpy, "5999", "JPY", "cash", CAUSE).body,
            first.withdraw(eur_b, "20.50", "EUR", "cheque", CAUSE).body,
        ]
        with pytest.raises(InsufficientFunds):
            first.withdraw(eur_a, "29.51", "EUR", "cash", CAUSE)
        first.freeze_account(eur_b, "review", CAUSE)
        first.set_overdraft_limit(eur_a, "10.00", CAUSE)  # cut below what is drawn
        claim = Claim("key-store", "idem-1", fingerprint("POST", "/v1/deposits", {"n": 1}))
        claimed = first.deposit(jpy, "1", "JPY", "cash", CAUSE, claim=claim)
        txns.append(claimed.body)

        accounts = [eur_a, eur_b, jpy]
        before = {a: account_state(first, a) for a in accounts}
        internal_before = first.internal_balances()
        position_before = first.last_position()
    finally:
        first.close()

    assert before[eur_a]["view"]["ledger_balance"] == "-20.50"
    assert before[eur_a]["view"]["available_balance"] == "-10.50"
    assert before[eur_b]["view"]["ledger_balance"] == "100.00"
    assert before[eur_b]["view"]["status"] == "frozen"
    assert before[jpy]["view"]["ledger_balance"] == "-998"
    assert internal_before == {
        "EUR": {"cash": Decimal("-100.00"), "clearing": Decimal("20.50")},
        "JPY": {"cash": Decimal(5998), "clearing": Decimal(-5000)},
    }

    second = bootstrap(database_url=database_url, with_views=False)
    try:
        for account_id in accounts:
            assert account_state(second, account_id) == before[account_id]
        assert second.internal_balances() == internal_before
        assert second.last_position() == position_before
        for body in txns:
            stored = second.get_transaction(UUID(body["transaction_id"]))
            assert {k: stored[k] for k in body} == body
        listed = [UUID(a["account_id"]) for a in second.customer_accounts(customer)]
        assert listed == accounts
        # the idempotency record survives too: the retry is a replay, not a deposit
        again = second.deposit(jpy, "1", "JPY", "cash", CAUSE, claim=claim)
        assert again.replayed
        assert again.body == claimed.body
        assert again.position == claimed.position
        assert second.last_position() == position_before
        assert second.get_account(jpy)["ledger_balance"] == "-998"
        # and the second instance keeps enforcing the invariants it replayed
        with pytest.raises(InsufficientFunds):
            second.withdraw(jpy, "3", "JPY", "cash", CAUSE)
    finally:
        second.close()


# ------------------------------------------------------------ two processes, one store


@pytest.fixture
def two_processes(database_url: str):
    banks = [bootstrap(database_url=database_url, with_views=False), bootstrap(database_url=database_url, with_views=False)]
    try:
        yield banks
    finally:
        for bank in banks:
            bank.close()


def open_eur_account(bank: Bank) -> UUID:
    customer = UUID(bank.register_customer(
        {"name": "Ada", "kind": "person", "country": "GB"}, CAUSE).body["customer_id"])
    return UUID(bank.open_account(customer, "EUR", CAUSE).body["account_id"])


def test_a_refusal_is_decided_on_what_another_process_wrote(two_processes: list[Bank]) -> None:
    first, second = two_processes
    account = open_eur_account(first)
    second.deposit(account, "100.00", "EUR", "cash", CAUSE)
    # the contract refuses only a debit that would leave available < 0: 100 are there
    outcome = first.withdraw(account, "50.00", "EUR", "cash", CAUSE)
    assert outcome.body["amount"] == "50.00"
    assert second.get_account(account)["ledger_balance"] == "50.00"


def test_a_status_change_is_decided_on_what_another_process_wrote(
    two_processes: list[Bank],
) -> None:
    first, second = two_processes
    account = open_eur_account(first)
    second.get_account(account)
    first.freeze_account(account, "review", CAUSE)
    answer = second.unfreeze_account(account, CAUSE).body
    assert answer["status"] == "active"
    assert first.get_account(account)["status"] == "active"
    assert second.get_account(account)["status"] == "active"
    # frozen again by the first process (whose own copy still says frozen) ...
    assert first.freeze_account(account, "again", CAUSE).body["status"] == "frozen"
    assert second.get_account(account)["status"] == "frozen"
    # ... so the second must refuse a debit as frozen, not as short of funds
    with pytest.raises(AccountFrozen):
        second.withdraw(account, "0.01", "EUR", "cash", CAUSE)


def test_a_no_op_answers_the_current_state(two_processes: list[Bank]) -> None:
    first, second = two_processes
    account = open_eur_account(first)
    first.get_account(account)
    second.deposit(account, "10.00", "EUR", "cash", CAUSE)
    # nothing to change, but the answer is the account as it is, not a stale copy
    answer = first.unfreeze_account(account, CAUSE).body
    assert answer["ledger_balance"] == "10.00"
    assert answer["version"] == 2
