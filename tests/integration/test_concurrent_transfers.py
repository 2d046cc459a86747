"""Concurrent transfers on PostgreSQL: no lost update, no spurious error, money conserved.

Eight threads hammer four accounts through one Bank, and then through two Bank
instances on one schema (two server processes). Insufficient funds is the only
refusal allowed; optimistic-concurrency conflicts must be retried by the application.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from decimal import Decimal
from uuid import UUID

import pytest

from application.bank import Bank
from domain.cause import Cause
from domain.errors import InsufficientFunds
from domain.transaction import Transaction
from infrastructure.bootstrap import bootstrap

pytestmark = pytest.mark.postgres

CAUSE = Cause(actor_key_id="key-conc", actor_role="teller", request_id=None, via="api")
THREADS = 8
TRANSFERS_PER_THREAD = 50
# (funding, overdraft limit) per account
ACCOUNTS = [("400.00", "0"), ("250.00", "100.00"), ("100.00", "0"), ("50.00", "25.00")]


def posted_transaction_ids(bank: Bank) -> list[UUID]:
    """Every Transaction record in the log (one Posted event each)."""
    topic = f"{Transaction.Posted.__module__}:{Transaction.Posted.__qualname__}"
    ids: list[UUID] = []
    start = 1
    while True:
        page = bank.recorder.select_notifications(start, 1000, topics=[topic])
        ids.extend(UUID(str(n.originator_id)) for n in page)
        if len(page) < 1000:
            return ids
        start = page[-1].id + 1


def run_concurrent_transfers(url: str, banks: list[Bank], seed: int) -> None:
    setup = banks[0]
    customer = UUID(setup.register_customer(
        {"name": "Load", "kind": "organization", "country": "NL"}, CAUSE).body["customer_id"])
    accounts: list[UUID] = []
    deposits: list[UUID] = []
    for funding, limit in ACCOUNTS:
        account = UUID(setup.open_account(customer, "EUR", CAUSE, overdraft_limit=limit)
                       .body["account_id"])
        deposits.append(UUID(setup.deposit(account, funding, "EUR", "cash", CAUSE)
                             .body["transaction_id"]))
        accounts.append(account)
    funded = sum(Decimal(f) for f, _ in ACCOUNTS)
    limits = {a: Decimal(limit) for a, (_, limit) in zip(accounts, ACCOUNTS, strict=True)}

    accepted: list[tuple[UUID, int | None]] = []
    refused: list[InsufficientFunds] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        rng = random.Random(seed * 100 + index)
        bank = banks[index % len(banks)]
        barrier.wait()
        for _ in range(TRANSFERS_PER_THREAD):
            source, destination = rng.sample(accounts, 2)
            amount = f"{rng.randint(1, 15000) / 100:.2f}"
            try:
                outcome = bank.transfer(source, destination, amount, "EUR", CAUSE)
            except InsufficientFunds as refusal:
                with lock:
                    refused.append(refusal)
            except BaseException as error:  # noqa: BLE001 - every other one is a failure
                with lock:
                    errors.append(error)
            else:
                with lock:
                    accepted.append((UUID(outcome.body["transaction_id"]), outcome.position))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a transfer hung"

    assert errors == [], f"spurious errors: {[repr(e) for e in errors[:5]]}"
    assert len(accepted) + len(refused) == THREADS * TRANSFERS_PER_THREAD
    assert accepted, "no transfer was accepted: the test exercised nothing"

    # Check through every writer and through a cold Bank: what was stored, not cached.
    cold = bootstrap(database_url=url, with_views=False)
    try:
        for reader in [*banks, cold]:
            check_ledger(reader, accounts, limits, funded, deposits, accepted)
    finally:
        cold.close()

    # each accepted write reports its own position
    positions = [p for _, p in accepted]
    assert None not in positions
    assert len(set(positions)) == len(positions)

    # Refusals along the way were allowed, but only a true shortage may refuse: now that
    # the dust has settled, every writer must let each account move all it has available.
    for bank in banks:
        for index, account in enumerate(accounts):
            available = bank.get_account(account)["available_balance"]
            if Decimal(available) > 0:
                bank.transfer(account, accounts[index - 1], available, "EUR", CAUSE)
                assert Decimal(bank.get_account(account)["available_balance"]) == 0


def check_ledger(
    reader: Bank,
    accounts: list[UUID],
    limits: dict[UUID, Decimal],
    funded: Decimal,
    deposits: list[UUID],
    accepted: list[tuple[UUID, int | None]],
) -> None:
    views = {a: reader.get_account(a) for a in accounts}
    ledgers = {a: Decimal(v["ledger_balance"]) for a, v in views.items()}

    # money conserved
    assert sum(ledgers.values()) == funded

    # every ledger balance is the sum of its entries
    transaction_ids = deposits + [t for t, _ in accepted]
    net: Counter[str] = Counter()
    touches: Counter[str] = Counter()
    for transaction_id in transaction_ids:
        txn = reader.get_transaction(transaction_id)
        assert txn["status"] == "posted"
        entries = txn["entries"]
        debits = sum(Decimal(e["amount"]) for e in entries if e["direction"] == "debit")
        credits = sum(Decimal(e["amount"]) for e in entries if e["direction"] == "credit")
        assert debits == credits
        for entry in entries:
            sign = 1 if entry["direction"] == "credit" else -1
            net[entry["account"]] += sign * Decimal(entry["amount"])
            touches[entry["account"]] += 1
    for account_id in accounts:
        assert ledgers[account_id] == net[str(account_id)], account_id
        # no lost update: one event for the opening, one per entry
        assert views[account_id]["version"] == 1 + touches[str(account_id)]
        # nobody below the limit
        assert Decimal(views[account_id]["available_balance"]) >= 0
        assert ledgers[account_id] + limits[account_id] >= 0

    # one Transaction record per accepted transfer (plus the fundings), no more
    recorded = posted_transaction_ids(reader)
    assert len(recorded) == len(set(recorded))
    assert sorted(recorded) == sorted(transaction_ids)
    assert len(recorded) - len(deposits) == len(accepted)


def test_concurrent_transfers_through_one_bank(postgres_url: str) -> None:
    bank = bootstrap(database_url=postgres_url, with_views=False)
    try:
        run_concurrent_transfers(postgres_url, [bank], seed=1)
    finally:
        bank.close()


def test_concurrent_transfers_through_two_banks_on_one_schema(postgres_url: str) -> None:
    banks = [bootstrap(database_url=postgres_url, with_views=False), bootstrap(database_url=postgres_url, with_views=False)]
    try:
        run_concurrent_transfers(postgres_url, banks, seed=2)
    finally:
        for bank in banks:
            bank.close()
