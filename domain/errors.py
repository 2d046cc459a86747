"""The one typed error hierarchy of the back office.

Every refusal is a subclass of :class:`BankError` carrying a stable ``code`` (the
contract's problem code) and the ids it is about, so the HTTP layer can map it to a
status with one table and auditors can see which aggregate refused.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID


class BankError(Exception):
    code: ClassVar[str] = "bank_error"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context

    def extra(self) -> dict[str, Any]:
        """Additional JSON-ready members for the problem document."""
        return {k: _jsonable(v) for k, v in self.context.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class ValidationFailed(BankError):
    """Input that breaks a rule of form (amount precision, unknown currency...)."""

    code = "validation_error"

    def __init__(self, errors: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.errors = errors
        detail = "; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in errors)
        super().__init__(detail or "invalid request")

    def extra(self) -> dict[str, Any]:
        return {"errors": [{"loc": list(loc), "msg": msg} for loc, msg in self.errors]}

    @classmethod
    def at(cls, loc: tuple[str | int, ...], msg: str) -> ValidationFailed:
        return cls([(loc, msg)])


class NotFound(BankError):
    code = "not_found"

    def __init__(self, kind: str, id: UUID | str) -> None:
        super().__init__(f"{kind} {id} not found", resource=kind, id=id)


class CurrencyMismatch(BankError):
    code = "currency_mismatch"

    def __init__(self, account_id: UUID, account_currency: str, currency: str) -> None:
        super().__init__(
            f"account {account_id} holds {account_currency}, not {currency}",
            account_id=account_id,
            account_currency=account_currency,
            currency=currency,
        )


class AccountClosed(BankError):
    code = "account_closed"

    def __init__(self, account_id: UUID) -> None:
        super().__init__(f"account {account_id} is closed", account_id=account_id)


class AccountFrozen(BankError):
    code = "account_frozen"

    def __init__(self, account_id: UUID) -> None:
        super().__init__(
            f"account {account_id} is frozen: it takes credits only",
            account_id=account_id,
        )


class InsufficientFunds(BankError):
    code = "insufficient_funds"

    def __init__(self, account_id: UUID, available: str, requested: str) -> None:
        super().__init__(
            f"account {account_id} has {available} available, {requested} requested",
            account_id=account_id,
        )


class AccountNotEmpty(BankError):
    code = "account_not_empty"

    def __init__(self, account_id: UUID, ledger_balance: str) -> None:
        super().__init__(
            f"account {account_id} has ledger balance {ledger_balance}: "
            "only an account at zero with no active holds can be closed",
            account_id=account_id,
        )



class HoldNotActive(BankError):
    code = "hold_not_active"

    def __init__(self, hold_id: UUID, status: str) -> None:
        super().__init__(
            f"hold {hold_id} is {status}, not active", hold_id=hold_id, hold_status=status
        )


class CaptureExceedsHold(BankError):
    code = "capture_exceeds_hold"

    def __init__(self, hold_id: UUID, remaining: str, requested: str) -> None:
        super().__init__(
            f"hold {hold_id} has {remaining} left to capture, {requested} requested",
            hold_id=hold_id,
            remaining=remaining,
        )


class AlreadyReversed(BankError):
    code = "already_reversed"

    def __init__(self, transaction_id: UUID, reversed_by: UUID) -> None:
        super().__init__(
            f"transaction {transaction_id} was already reversed by {reversed_by}",
            transaction_id=transaction_id,
            reversed_by=reversed_by,
        )


class BusinessDayClosed(BankError):
    code = "business_day_closed"

    def __init__(self, day: str, closed_through: str) -> None:
        super().__init__(
            f"business day {day} is closed (every day through {closed_through} is final)",
            date=day,
            closed_through=closed_through,
        )


class BatchRejected(BankError):
    """An atomic batch with failing items: nothing of it was posted."""

    code = "batch_rejected"

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        super().__init__(
            f"{len(items)} item(s) of the atomic batch were refused; nothing was posted",
            items=items,
        )


class BookedBeforeOpening(BankError):
    """An import booked before its account was opened."""

    code = "validation_error"

    def __init__(self, account_id: UUID, booked_at: str) -> None:
        super().__init__(
            f"booked_at {booked_at} is before account {account_id} was opened",
            account_id=account_id,
        )
