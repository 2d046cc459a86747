"""An account that holds money when it reaches a snapshot version (every 100 events).

Found while extending the projections' histories with holds; the long histories in
test_projections.py turn account snapshots off until this is fixed
(``projection_helpers.without_account_snapshots``).
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest

from application.bank import Bank
from domain.account import Account
from domain.cause import Cause
from infrastructure.bootstrap import bootstrap


def test_an_account_holding_money_is_snapshotted_and_read_back(
    bank: Bank, database_url: str, cli_cause: Cause
) -> None:
    customer = UUID(
        bank.register_customer(
            {"name": "Ada", "kind": "person", "country": "GB"}, cli_cause
        ).body["customer_id"]
    )
    account = UUID(bank.open_account(customer, "EUR", cli_cause).body["account_id"])
    bank.deposit(account, "100.00", "EUR", "cash", cli_cause)  # version 2
    bank.place_hold(account, "40.00", "EUR", cli_cause)  # version 3
    for _ in range(96):  # versions 4 to 99
        bank.deposit(account, "0.01", "EUR", "cash", cli_cause)
    assert bank.reconstruct(account).version == 99  # type: ignore[union-attr]

    bank.deposit(account, "0.01", "EUR", "cash", cli_cause)  # version 100: a snapshot

    other = bootstrap(database_url=database_url)  # a cold load starts from it
    try:
        loaded = other.repository.get(account)
        assert isinstance(loaded, Account)
        assert loaded.version == 100
        assert loaded.held_amount() == Decimal("40.00")
        assert loaded.ledger_balance == Decimal("100.97")
    finally:
        other.close()
