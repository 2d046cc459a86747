"""A hold placed through one Bank (server process) and ended through another.

Found while running tests/integration/test_bank_store.py (two processes on one store),
which fails the same way once its state machine places holds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from application.bank import Bank
from domain.cause import Cause
from infrastructure.bootstrap import bootstrap


def expire(bank: Bank, hold_id: UUID, cause: Cause) -> object:
    """As the sweeper would once the hold has lapsed."""
    later = bank.clock() + timedelta(hours=1)
    bank.clock = lambda: later
    return bank.expire_hold(hold_id)


@pytest.mark.parametrize(
    "end",
    [
        lambda bank, hold_id, cause: bank.release_hold(hold_id, cause),
        lambda bank, hold_id, cause: bank.capture_hold(hold_id, cause, amount="10.00"),
        expire,
    ],
    ids=["release", "capture", "expire"],
)
def test_a_hold_placed_through_one_bank_ends_through_another(
    bank: Bank,
    database_url: str,
    cli_cause: Cause,
    end: Callable[[Bank, UUID, Cause], object],
) -> None:
    other = bootstrap(database_url=database_url)
    try:
        customer = UUID(
            bank.register_customer(
                {"name": "Ada", "kind": "person", "country": "GB"}, cli_cause
            ).body["customer_id"]
        )
        account = UUID(bank.open_account(customer, "EUR", cli_cause).body["account_id"])
        other.deposit(account, "100.00", "EUR", "cash", cli_cause)  # other caches it
        expires_at = bank.clock() + timedelta(minutes=10)
        hold = bank.place_hold(  # changes the account here
            account, "40.00", "EUR", cli_cause, expires_at=expires_at
        )

        end(other, UUID(hold.body["hold_id"]), cli_cause)

        assert bank.reconstruct(account).held_amount() < Decimal("40.00")  # type: ignore[union-attr]
    finally:
        other.close()
