"""The back office's use cases on the event store.

Every write runs through :meth:`Bank._execute`: load fresh, decide, save every changed
aggregate (and the idempotency record) in one ``save()``, and on an optimistic
concurrency conflict reload and decide again, a bounded number of times.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    project_aggregate,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording

from application.batches import BatchItem, check_items, rejection
from application.compliance.rules import Rules
from application.errors import IdempotencyKeyReused, ReplayedError, ServiceUnavailable
from application.forms import (
    check_counterparty,
    check_currency,
    check_money_text,
    check_reason,
    check_reference,
    money,
)
from application.idempotency import Claim, Outcome, ResourceRef
from application.ports import (
    PositionLookup,
    PositionLookupFactory,
    ProjectionStatus,
    ViewReader,
)
from application.reads import (
    account_row_view,
    decode_cursor,
    hold_row_view,
    range_bounds,
    statement_view,
)
from application.transcodings import CauseAsDict, DateAsISO
from application.turns import Turns
from application.views import (
    account_view,
    api_key_view,
    customer_view,
    hold_view,
    posted_transaction_view,
    timestamp,
    transaction_view,
)
from domain import posting
from domain.account import Account
from domain.api_key import REGISTRY_ID, ApiKey, ApiKeyRegistry
from domain.batch import Batch
from domain.calendar import CALENDAR_ID, BusinessCalendar
from domain.cause import Cause
from domain.customer import Customer, check_customer_fields
from domain.errors import (
    BankError,
    BatchRejected,
    BookedBeforeOpening,
    NotFound,
    ValidationFailed,
)
from domain.hold import STATUSES as HOLD_STATUSES
from domain.hold import Hold
from domain.idempotency import IdempotencyRecord
from domain.ledger import INTERNAL_ACCOUNTS, Entry
from domain.money import format_amount, parse_amount
from domain.transaction import Transaction

if TYPE_CHECKING:
    from application.audit.service import Audit
    from application.compliance.service import Compliance

A = TypeVar("A", bound=Aggregate)
Work = Callable[[], tuple[list[Aggregate], dict[str, Any]]]



@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    name: str


def hash_secret(secret: str) -> str:
    # Secrets are 256-bit random tokens, so a plain SHA-256 is enough: no dictionary
    # to defend against, and it keeps authentication a single lookup.
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class Bank(Application[UUID]):
    name = "Bank"
    snapshotting_intervals = {Account: 100}  # noqa: RUF012  (bounded cold loads)
    AUTH_CACHE_SECONDS = 1.0

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        position_lookup: PositionLookupFactory | None = None,
        clock: Callable[[], datetime] = _now,
        max_attempts: int = 40,
        turn_wait_seconds: float = 5.0,
        read_wait_seconds: float = 2.0,
        business_tz: str = "UTC",
        rules: Rules | None = None,
    ) -> None:
        super().__init__(env)
        self.clock = clock
        self.max_attempts = max_attempts
        self.read_wait_seconds = read_wait_seconds
        self.business_tz = ZoneInfo(business_tz)
        # The versioned settings of reports and alert rules (docs/reports.md).
        self.rules = rules or Rules()
        # The projections' views, once infrastructure attaches them (not in memory://,
        # where answers come from the aggregates).
        self.views: ViewReader | None = None
        # The auditors' use cases (application.audit), attached with the views.
        self.audit: Audit | None = None
        # The compliance officers' use cases (application.compliance), likewise.
        self.compliance: Compliance | None = None
        # Called after every save (wakes this process's projection runners).
        self.saved_hooks: list[Callable[[], None]] = []
        self._principals: dict[str, tuple[Principal | None, float]] = {}
        self._turns = Turns(wait_seconds=turn_wait_seconds)
        self._decision = threading.local()  # the aggregates the current decision read
        self._position_of: PositionLookup = (
            position_lookup(self.recorder) if position_lookup else (lambda _id, _v: None)
        )

    def save(self, *aggregates: Aggregate, **kwargs: Any) -> list[Recording[UUID]]:  # type: ignore[override]
        """``Application.save`` for aggregates, without its runtime Protocol checks.

        The library's ``ProcessingEvent.collect_events`` tests every object against
        ``typing.Protocol`` classes, which cost ~5% of a posting's CPU (measured with
        py-spy under bench/postings.py). Only aggregates are saved here, so collect
        their events directly; recording, snapshots and notification are unchanged.
        """
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for aggregate in aggregates:
            if not isinstance(aggregate, Aggregate):
                raise TypeError(f"Bank.save takes aggregates, not {type(aggregate).__name__}")
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        for hook in self.saved_hooks:
            hook()
        return recordings

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(CauseAsDict())
        transcoder.register(DateAsISO())

    # ------------------------------------------------------------------ customers

    def register_customer(
        self, details: dict[str, Any], cause: Cause, claim: Claim | None = None
    ) -> Outcome:
        def work() -> tuple[list[Aggregate], dict[str, Any]]:
            # Built afresh on every attempt: a failed save has taken its pending events.
            # Bad input raises ValidationFailed here, before anything is saved.
            customer = Customer.register(details, cause, today=self.clock().date())
            return [customer], customer_view(customer)

        return self._execute(work, cause, claim, touches=())

    def update_customer(
        self,
        customer_id: UUID,
        changes: dict[str, Any],
        cause: Cause,
        claim: Claim | None = None,
    ) -> Outcome:
        check_customer_fields(changes, today=self.clock().date())

        def work() -> tuple[list[Aggregate], dict[str, Any]]:
            customer = self._load(Customer, customer_id, "customer")
            changed = customer.change(changes, cause, today=self.clock().date())
            return ([customer] if changed else []), customer_view(customer)

        return self._execute(work, cause, claim, touches=(customer_id,))

    def get_customer(self, customer_id: UUID) -> dict[str, Any]:
        customer = self._read(Customer, customer_id, "customer")
        return self._with_position(customer, customer_view(customer))

    def customer_accounts(
        self, customer_id: UUID, min_position: int | None = None
    ) -> list[dict[str, Any]]:
        customer = self._read(Customer, customer_id, "customer")
        if self.views is None:
            return [self.get_account(account_id) for account_id in customer.account_ids]
        self._await_views(("accounts",), min_position)
        now = self.clock()
        return [account_row_view(row) for row in self.views.customer_accounts(customer_id, now)]

    # ------------------------------------------------------------------- accounts

    def open_account(
        self,
        customer_id: UUID,
        currency: str,
        cause: Cause,
        product: str = "current",
        overdraft_limit: str = "0",
        opened_at: datetime | None = None,
        claim: Claim | None = None,
    ) -> Outcome:
        check_currency(currency)
        limit = parse_amount(overdraft_limit, currency, ("overdraft_limit",))
        Account.check_product(product)
        if opened_at is not None and opened_at > self.clock():
            raise ValidationFailed.at(("opened_at",), "opened_at may not be in the future")

        def work() -> tuple[list[Aggregate], dict[str, Any]]:
            customer = self._load(Customer, customer_id, "customer")
            account = Account.open(customer.id, currency, cause, product, limit, opened_at)
            customer.add_account(account.id, cause)
            # The account's event last: the answer's position is the account's own.
            return [customer, account], account_view(account, self.clock())

        return self._execute(work, cause, claim, touches=(customer_id,))

    def get_account(self, account_id: UUID, min_position: int | None = None) -> dict[str, Any]:
        if self.views is None:
            account = self._read(Account, account_id, "account")
            return self._with_position(account, account_view(account, self.clock()))
        self._await_views(("accounts",), min_position)
        row = self.views.account(account_id, self.clock())
        if row is None:
            raise NotFound("account", account_id)
        return account_row_view(row)

    def balance(
        self,
        account_id: UUID,
        as_of: datetime | None = None,
        min_position: int | None = None,
    ) -> dict[str, Any]:
        """The account's balances counting every transaction booked at or before
        ``as_of`` (default: now), from the statements' index."""
        views = self._views()
        now = self.clock()
        if as_of is not None and as_of > now:
            raise ValidationFailed.at(("query", "as_of"), "as_of may not be in the future")
        moment = as_of or now
        self._await_views(("accounts", "statements"), min_position)
        account = views.account(account_id, now)
        if account is None:
            raise NotFound("account", account_id)
        found = views.balance_as_of(account_id, moment)
        available = found.ledger_balance - found.held_amount + found.overdraft_limit
        return {
            "account_id": str(account_id),
            "as_of": timestamp(moment),
            "ledger_balance": format_amount(found.ledger_balance, account.currency),
            "available_balance": format_amount(available, account.currency),
            "position": found.position,
        }

    def statement(
        self,
        account_id: UUID,
        start: date | None = None,
        end: date | None = None,
        cursor: str | None = None,
        limit: int = 100,
        min_position: int | None = None,
    ) -> dict[str, Any]:
        views = self._views()
        after = decode_cursor(cursor) if cursor else None
        lower, upper = range_bounds(start, end, self.business_tz)
        self._await_views(("accounts", "statements"), min_position)
        account = views.account(account_id, self.clock())
        if account is None:
            raise NotFound("account", account_id)
        page = views.statement(account_id, lower, upper, after, limit)
        today = self.clock().astimezone(self.business_tz).date()
        return statement_view(account, page, start, end, today, self.business_tz)

    def freeze_account(
        self, account_id: UUID, reason: str, cause: Cause, claim: Claim | None = None
    ) -> Outcome:
        check_reason(reason, required=True)
        return self._change_account(account_id, cause, claim, lambda a: a.freeze(reason, cause))

    def unfreeze_account(self, account_id: UUID, cause: Cause, claim: Claim | None = None) -> Outcome:
        return self._change_account(account_id, cause, claim, lambda a: a.unfreeze(cause))

    def close_account(self, account_id: UUID, cause: Cause, claim: Claim | None = None) -> Outcome:
        self.expire_lapsed_holds_of(account_id)  # a lapsed hold does not keep it open

        def close(account: Account) -> bool:
            account.close(cause, self.clock())
            return True

        return self._change_account(account_id, cause, claim, close)

    def set_overdraft_limit(
        self, account_id: UUID, overdraft_limit: str, cause: Cause, claim: Claim | None = None
    ) -> Outcome:
        check_money_text(overdraft_limit, ("overdraft_limit",))

        def change(account: Account) -> bool:
            limit = parse_amount(overdraft_limit, account.currency, ("overdraft_limit",))
            return account.set_overdraft_limit(limit, cause)

        return self._change_account(account_id, cause, claim, change)

    def _change_account(
        self,
        account_id: UUID,
        cause: Cause,
        claim: Claim | None,
        change: Callable[[Account], bool],
    ) -> Outcome:
        def work() -> tuple[list[Aggregate], dict[str, Any]]:
            account = self._load(Account, account_id, "account")
            changed = change(account)
            return ([account] if changed else []), account_view(account, self.clock())

        return self._execute(work, cause, claim, touches=(account_id,))

    # ------------------------------------------------------------ money movements

    def deposit(
        self,
        account_id: UUID,
        amount: str,
        currency: str,
        channel: str,
        cause: Cause,
        reference: str | None = None,
        conducted_by: UUID | None = None,
        counterparty: dict[str, Any] | None = None,
        claim: Claim | None = None,
    ) -> Outcome:
        return self._cash_movement(
            posting.deposit, account_id, amount, currency, channel, cause,
            reference, conducted_by, counterparty, claim,
        )

    def withdraw(
        self,
        account_id: UUID,
        amount: str,
        currency: str,
        channel: str,
        cause: Cause,
        reference: str | None = None,
        conducted_by: UUID | None = None,
        counterparty: dict[str, Any] | None = None,
        claim: Claim | None = None,
    ) -> Outcome:
        return self._cash_movement(
            posting.withdraw, account_id, amount, currency, channel, cause,
            reference, conducted_by, counterparty, claim,
        )

    def _cash_movement(
        self,
        move: Callable[..., Transaction],
        account_id: UUID,
        amount: str,
        currency: str,
        channel: str,
        cause: Cause,
        reference: str | None,
        conducted_by: UUID | None,
        counterparty: dict[str, Any] | None,
        claim: Claim | None,
    ) -> Outcome:
        moved = money(amount, currency)
        check_reference(reference)
        check_counterparty(counterparty)
        if channel not in ("cash", "cheque", "wire", "internal"):
            raise ValidationFailed.at(("channel",), "must be cash, cheque, wire or internal")

        def work() -> tuple[list[Aggregate], dict[str, Any]]:
            account = self._load(Account, account_id, "account")
            if conducted_by is not None:
                self._load(Customer, conducted_by, "customer", decides=False)
            txn = move(
                account, moved, channel, cause, self.clock(),
                reference=reference, conducted_by=conducted_by, counterparty=counterparty,
            )
            return [account, txn], transaction_view(txn)

        return self._execute(work, cause, claim, touches=(account_id,))

    def transfer(
        self,
        from_account_id: UUID,
        to_account_id: UUID,
        amount: str,
        currency: str,
        cause: Cause,
        reference: str | None = None,
        claim: Claim | None = None,
    ) -> Outcome:
        moved = money(amount, currency)
        check_reference(reference)
        posting.check_transfer_accounts(from_account_id, to_account_id)

        def work() -> tuple[list[Aggregate], dict[str, Any]]:
            source = self._load(Account, from_account_id, "account")
            destination = self._load(Account, to_account_id, "account")
            txn = posting.transfer(
                source, destination, moved, cause, self.clock(), reference=reference
            )
            # Both accounts and the record in one save(): one database transaction.
            return [source, destination, txn], transaction_view(txn)

        return self._execute(work, cause, claim, touches=(from_account_id, to_account_id))

    def get_transaction(
        self, transaction_id: UUID, min_position: int | None = None
    ) -> dict[str, Any]:
        if self.views is None:
            txn = self._read(Transaction, transaction_id, "transaction")
            return self._with_position(txn, transaction_view(txn))
        self._await_views(("transactions",), min_position)
        row = self.views.transaction(transaction_id)
        if row is None:
            raise NotFound("transaction", transaction_id)
        return {**row.body, "position": row.position}

    def reverse_transaction(
        self, transaction_id: UUID, reason: str, cause: Cause, claim: Claim | None = None
    ) -> Outcome:
        check_reason(reason, required=True)

        def work() -> tuple[list[Aggregate], dict[str, Any]]:
            original = self._load(Transaction, transaction_id, "transaction")
            accounts = {
                account_id: self._load(Account, account_id, "account")
                for account_id in original.customer_account_ids()
            }
            txn = posting.reverse(original, accounts, reason, cause)
            # The reversing transaction last: the answer's position is its own.
            return [*accounts.values(), original, txn], transaction_view(txn)

        return self._execute(work, cause, claim, touches=(transaction_id,))

    # --------------------------------------------------------------------- holds

    def place_hold(
        self,
        account_id: UUID,
        amount: str,
        currency: str,
        cause: Cause,
        reference: str | None = None,
        expires_at: datetime | None = None,
        claim: Claim | None = None,
    ) -> Outcome:
        moved = money(amount, currency)
        check_reference(reference)
        Hold.check_expiry(expires_at, self.clock())  # a 422 before any 404

        def work() -> tuple[list[Aggregate], dict[str, Any]]:
            account = self._load(Account, account_id, "account")
            now = self.clock()
            hold = posting.place_hold(account, moved, now, cause, reference, expires_at)
            return [account, hold], hold_view(hold, now)

        return self._execute(work, cause, claim, touches=(account_id,))

    def capture_hold(
        self,
        hold_id: UUID,
        cause: Cause,
        amount: str | None = None,
        to_account_id: UUID | None = None,
        claim: Claim | None = None,
    ) -> Outcome:
        if amount is not None:
            check_money_text(amount, ("amount",))
        self._expire_if_due(hold_id)  # a lapsed hold's expiry is recorded on its next touch

        def work() -> tuple[list[Aggregate], dict[str, Any]]:
            destination = (
                self._load(Account, to_account_id, "account") if to_account_id else None
            )
            hold, account = self._hold_and_account(hold_id)
            taken = None if amount is None else money(amount, hold.currency).amount
            txn = posting.capture(hold, account, destination, taken, self.clock(), cause)
            changed: list[Aggregate] = [hold, account, *([destination] if destination else [])]
            return [*changed, txn], transaction_view(txn)

        touches = (hold_id, *([to_account_id] if to_account_id else []))
        return self._execute(work, cause, claim, touches=touches)

    def release_hold(
        self, hold_id: UUID, cause: Cause, reason: str | None = None, claim: Claim | None = None
    ) -> Outcome:
        check_reason(reason, required=False)
        self._expire_if_due(hold_id)

        def work() -> tuple[list[Aggregate], dict[str, Any]]:
            hold, account = self._hold_and_account(hold_id)
            now = self.clock()
            posting.release(hold, account, reason, now, cause)
            return [account, hold], hold_view(hold, now)

        return self._execute(work, cause, claim, touches=(hold_id,))

    def expire_hold(self, hold_id: UUID) -> bool:
        """Record the expiry of a hold past its expires_at (booked at expires_at).

        False when there is nothing to record: unknown, not active, or not lapsed.
        """
        cause = Cause.system()

        def work() -> tuple[list[Aggregate], dict[str, Any]]:
            hold, account = self._hold_and_account(hold_id)
            now = self.clock()
            if not hold.is_lapsed(now):
                return [], {}
            posting.expire(hold, account, now, cause)
            return [account, hold], {}

        try:
            return self._execute(work, cause, None, touches=(hold_id,)).position is not None
        except NotFound:
            return False

    def _expire_if_due(self, hold_id: UUID) -> None:
        """Record a lapsed hold's expiry before acting on it. The cached copy says
        whether it can be due (its expires_at never changes, an ended hold never
        restarts), so a hold that is not due costs no query here."""
        try:
            cached = self._fetch(Hold, hold_id, "hold")
        except NotFound:
            return  # the command itself answers 404
        if cached.is_lapsed(self.clock()):
            self.expire_hold(hold_id)

    def expire_lapsed_holds_of(self, account_id: UUID) -> int:
        try:
            account = self._read(Account, account_id, "account")
        except NotFound:
            return 0
        return sum(self.expire_hold(h) for h in account.lapsed_hold_ids(self.clock()))

    def expire_lapsed_holds(self, limit: int = 500) -> int:
        """The sweeper's step: record the due expiries (at most ``limit``)."""
        now = self.clock()
        if self.views is not None:
            due = [row.hold_id for row in self.views.lapsed_holds(now, limit)]
        else:  # memory://: look through every hold placed
            due = [
                e.originator_id
                for e in self._events_of(Hold.Placed)
                if e.expires_at is not None
                and e.expires_at <= now
                and self._read(Hold, e.originator_id, "hold").is_lapsed(now)
            ][:limit]
        return sum(self.expire_hold(hold_id) for hold_id in due)

    def get_hold(self, hold_id: UUID, min_position: int | None = None) -> dict[str, Any]:
        """From the hold's own record, always current (``min_position`` is met)."""
        hold = self._read(Hold, hold_id, "hold")
        return self._with_position(hold, hold_view(hold, self.clock()))

    def account_holds(
        self, account_id: UUID, status: str | None = None, min_position: int | None = None
    ) -> list[dict[str, Any]]:
        if status is not None and status not in HOLD_STATUSES:
            raise ValidationFailed.at(("query", "status"), f"must be one of {HOLD_STATUSES}")
        now = self.clock()
        if self.views is None:
            account = self._read(Account, account_id, "account")
            holds = [
                self.get_hold(e.hold_id)
                for e in self.events.get(account.id)
                if isinstance(e, Account.FundsHeld)
            ]
        else:
            self._await_views(("accounts",), min_position)
            if self.views.account(account_id, now) is None:
                raise NotFound("account", account_id)
            holds = [hold_row_view(row, now) for row in self.views.account_holds(account_id)]
        return [h for h in holds if status is None or h["status"] == status]

    # ------------------------------------------------------------------- batches

    def post_batch(
        self,
        atomic: bool,
        items: list[dict[str, Any]],
        cause: Cause,
        claim: Claim | None = None,
    ) -> Outcome:
        """Apply the items in order against the running state, in one save.

        Atomic: all post or none (409 batch_rejected naming each failing item). Not
        atomic: a refused item is left out and the others post. Either way one
        database transaction carries the whole batch.
        """
        checked = check_items(items, self.clock())
        imports = [item for item in checked if item.booked_at is not None]
        if imports:
            cause = replace(cause, via="import")
        touches = tuple({i for item in checked for i in item.account_ids})

        def work() -> tuple[list[Aggregate], Any]:
            return self._apply_batch(atomic, checked, imports, cause)

        outcome = self._execute(work, cause, claim, touches=touches)
        if outcome.replayed or not outcome.positions:
            return outcome
        # Each transaction's position, now that the save has given them.
        for result in outcome.body["results"]:
            if "transaction" in result:
                txn = result["transaction"]
                txn["position"] = outcome.positions[UUID(txn["transaction_id"])]
        return outcome

    def _apply_batch(
        self, atomic: bool, items: list[BatchItem], imports: list[BatchItem], cause: Cause
    ) -> tuple[list[Aggregate], Any]:
        now = self.clock()
        calendar = self._calendar() if imports else None
        accounts: dict[UUID, Account] = {}
        results: list[dict[str, Any]] = []  # the answer: posted items show their transaction
        recorded: list[dict[str, Any]] = []  # the batch record: posted items name it
        changed: list[Aggregate] = []
        refused: list[dict[str, Any]] = []
        import_days: list[date] = []
        for item in items:
            try:
                for account_id in item.account_ids:
                    if account_id not in accounts:
                        accounts[account_id] = self._load(Account, account_id, "account")
                txn = self._apply_item(item, accounts, calendar, now, cause)
            except ValidationFailed:
                raise
            except BankError as error:  # this item's own refusal (404s included)
                refused.append({"index": item.index, "code": error.code, "detail": error.detail})
                results.append(rejection(item.index, error.code, error.detail))
                recorded.append(results[-1])
                continue
            changed.append(txn)
            if item.booked_at is not None:
                import_days.append(self._business_day(item.booked_at))
            posted = {"index": item.index, "status": "posted"}
            results.append({**posted, "transaction": transaction_view(txn)})
            recorded.append({**posted, "transaction_id": str(txn.id)})
        if atomic and refused:
            raise BatchRejected(refused)
        batch = Batch.record(atomic, recorded, cause)
        if calendar is not None and import_days:
            # Recorded on the calendar, so a close of these days races with this save.
            calendar.record_import(batch.id, min(import_days), max(import_days), cause)
            changed.append(calendar)
        body = {"batch_id": str(batch.id), "atomic": atomic, "results": results}
        # The batch record last: the answer's position is its own.
        return [*accounts.values(), *changed, batch], ResourceRef("batch", batch.id, body)

    def _apply_item(
        self,
        item: BatchItem,
        accounts: dict[UUID, Account],
        calendar: BusinessCalendar | None,
        now: datetime,
        cause: Cause,
    ) -> Transaction:
        details = dict(item.details)
        if item.booked_at is not None:
            assert calendar is not None
            calendar.check_open(self._business_day(item.booked_at))
            for account_id in item.account_ids:
                if item.booked_at < accounts[account_id].opened_on:
                    raise BookedBeforeOpening(account_id, timestamp(item.booked_at) or "")
            details["booked_at"] = item.booked_at
        if item.type == "transfer":
            assert item.from_account_id is not None and item.to_account_id is not None
            return posting.transfer(
                accounts[item.from_account_id], accounts[item.to_account_id], item.money,
                cause, now, **details,
            )
        assert item.account_id is not None
        if details.get("conducted_by") is not None:
            self._load(Customer, details["conducted_by"], "customer", decides=False)
        move = posting.deposit if item.type == "deposit" else posting.withdraw
        return move(accounts[item.account_id], item.money, item.channel, cause, now, **details)

    def get_batch(self, batch_id: UUID, *, as_posted: bool = False) -> dict[str, Any]:
        """The batch from the log, each transaction as it stands now, or ``as_posted``
        (an idempotent replay answers exactly what the POST answered)."""
        batch = self._read(Batch, batch_id, "batch")
        results = []
        for result in batch.results:
            shown = {k: v for k, v in result.items() if k != "transaction_id"}
            if "transaction_id" in result:
                txn_id = UUID(result["transaction_id"])
                if as_posted:
                    posted = next(iter(self.events.get(txn_id, lte=1)))
                    body = posted_transaction_view(posted)  # type: ignore[arg-type]
                    shown["transaction"] = {**body, "position": self._position_of(txn_id, 1)}
                else:
                    txn = self._read(Transaction, txn_id, "transaction")
                    shown["transaction"] = self._with_position(txn, transaction_view(txn))
            results.append(shown)
        body = {"batch_id": str(batch.id), "atomic": batch.atomic, "results": results}
        return self._with_position(batch, body)

    # ------------------------------------------------------------- business days

    def close_business_day(self, day: date, cause: Cause, claim: Claim | None = None) -> Outcome:
        """Make ``day`` and every day before it final (nothing more booked on them)."""

        def work() -> tuple[list[Aggregate], dict[str, Any]]:
            calendar = self._calendar()
            now = self.clock()
            changed = calendar.close(day, now, now.astimezone(self.business_tz).date(), cause)
            body = {"date": day.isoformat(), "closed_at": timestamp(calendar.closed_at)}
            return ([calendar] if changed else []), body

        return self._execute(work, cause, claim, touches=(CALENDAR_ID,))

    def closed_through(self) -> date | None:
        try:
            return self._read(BusinessCalendar, CALENDAR_ID, "calendar").closed_through
        except NotFound:
            return None

    def _calendar(self) -> BusinessCalendar:
        try:
            return self._load(BusinessCalendar, CALENDAR_ID, "calendar")
        except NotFound:
            return BusinessCalendar(cause=Cause.system())

    def _business_day(self, moment: datetime) -> date:
        return moment.astimezone(self.business_tz).date()

    # ----------------------------------------------------------------- API keys

    def create_api_key(self, name: str, role: str, cause: Cause) -> tuple[dict[str, Any], str]:
        """Returns the key's view and its secret, which is never stored or shown again."""
        secret = "bo_" + secrets.token_urlsafe(32)

        def work() -> tuple[list[Aggregate], dict[str, Any]]:
            key = ApiKey.issue(name, role, hash_secret(secret), cause)
            try:
                registry = self.repository.get(REGISTRY_ID)
            except AggregateNotFoundError:
                registry = ApiKeyRegistry(cause=cause)
            registry.list_key(key.id, cause)
            return [key, registry], api_key_view(key)

        outcome = self._execute(work, cause, None, touches=(REGISTRY_ID,))
        return outcome.response(), secret

    def list_api_keys(self) -> list[dict[str, Any]]:
        try:
            registry = self._read(ApiKeyRegistry, REGISTRY_ID, "key registry")
        except NotFound:
            return []
        return [api_key_view(self._read(ApiKey, key_id, "key")) for key_id in registry.key_ids]

    def revoke_api_key(self, key_id: UUID, cause: Cause, claim: Claim | None = None) -> Outcome:
        def work() -> tuple[list[Aggregate], dict[str, Any]]:
            key = self._load(ApiKey, key_id, "key")
            changed = key.revoke(cause)
            return ([key] if changed else []), api_key_view(key)

        outcome = self._execute(work, cause, claim, touches=(key_id,))
        self._principals.clear()  # this process stops honouring the key at once
        return outcome

    def authenticate(self, secret: str) -> Principal | None:
        """The key's principal, or None for an unknown or revoked key.

        Answers are remembered for ``AUTH_CACHE_SECONDS``: a revocation takes effect
        at once in the process that made it and within that time in the others.
        """
        digest = hash_secret(secret)
        now = time.monotonic()
        remembered = self._principals.get(digest)
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        try:
            key = self._read(ApiKey, ApiKey.create_id(digest), "key")
        except NotFound:
            return None
        principal = None
        if not key.is_revoked and secrets.compare_digest(key.secret_hash, digest):
            principal = Principal(key_id=str(key.id), role=key.role, name=key.name)
        if len(self._principals) > 10_000:
            self._principals.clear()
        self._principals[digest] = (principal, now + self.AUTH_CACHE_SECONDS)
        return principal

    # ------------------------------------------------------------------- reading

    def reconstruct(self, aggregate_id: UUID) -> Aggregate | None:
        """Replay one aggregate from the store, bypassing every cache."""
        return project_aggregate(None, self.events.get(aggregate_id))

    def internal_balances(self, min_position: int | None = None) -> dict[str, dict[str, Decimal]]:
        """Balances of ``cash`` and ``clearing`` per currency (credit-positive)."""
        if self.views is not None:
            self._await_views(("ledger",), min_position)
            found: dict[str, dict[str, Decimal]] = {}
            for row in self.views.ledger_balances():
                per_currency = found.setdefault(
                    row.currency, dict.fromkeys(INTERNAL_ACCOUNTS, Decimal(0))
                )
                per_currency[row.account] = row.balance
            return found
        return self.replayed_internal_balances()

    def replayed_internal_balances(self) -> dict[str, dict[str, Decimal]]:
        """The same, from a full scan of the log (no projection involved).

        A currency appears once an entry has moved one of its internal accounts, as in
        the ledger view.
        """
        balances: dict[str, dict[str, Decimal]] = {}
        for txn in self._posted_transactions():
            for row in txn.entries:
                entry = Entry.from_dict(row)
                if entry.is_internal:
                    per_currency = balances.setdefault(
                        txn.currency, dict.fromkeys(INTERNAL_ACCOUNTS, Decimal(0))
                    )
                    per_currency[entry.account] += entry.signed_amount
        return balances

    def _posted_transactions(self) -> Iterator[Transaction.Posted]:
        return self._events_of(Transaction.Posted)

    def last_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def projection_status(self) -> list[ProjectionStatus]:
        return [] if self.views is None else self.views.status()

    def _views(self) -> ViewReader:
        if self.views is None:
            raise ServiceUnavailable("this store keeps no projections (memory://)")
        return self.views

    def _await_views(self, projections: tuple[str, ...], min_position: int | None) -> None:
        """Hold a read until the projections have caught up with ``min_position``."""
        if min_position is None or self.views is None:
            return
        if not self.views.wait(projections, min_position, self.read_wait_seconds):
            raise ServiceUnavailable(
                f"the {' and '.join(projections)} view has not reached position "
                f"{min_position} within {int(self.read_wait_seconds * 1000)} ms; retry shortly"
            )

    # ------------------------------------------------------------------ plumbing

    def _execute(
        self, work: Work, cause: Cause, claim: Claim | None, touches: tuple[UUID, ...]
    ) -> Outcome:
        """Decide and save, retrying on conflicts; one command per aggregate at a time.

        Commands in this process that touch the same aggregates (or carry the same
        idempotency key) take turns, so threads here never conflict with each other
        and a retried request waits for the first one with its key, then replays it.
        Conflicts with other processes are retried.
        """
        keys = list(touches)
        if claim is not None:
            keys.append(IdempotencyRecord.create_id(claim.scope, claim.key))
        with self._turns.taking(keys):
            return self._decide_and_save(work, cause, claim)

    def _decide_and_save(self, work: Work, cause: Cause, claim: Claim | None) -> Outcome:
        for attempt in range(1, self.max_attempts + 1):
            # No lookup before the first attempt: callers (the HTTP pipeline) look
            # before validating, and a record saved since makes this save conflict on
            # it, so the retry below finds it and answers as it did.
            if claim is not None and attempt > 1:
                replay = self.replay(claim)
                if replay is not None:
                    return replay
            refusal: BankError | None = None
            body: Any = {}
            self._decision.loaded = []
            try:
                aggregates, body = work()
            except ValidationFailed:
                raise  # a form error is not an outcome: never remembered
            except BankError as error:
                refusal, aggregates = error, []
            finally:
                loaded, self._decision.loaded = self._decision.loaded, None
            # A copy that changes is checked by the save (a stale one conflicts). A copy
            # that only informed a refusal or a no-op is not: check it is current, or
            # another process's write could be ignored or a refusal wrongly remembered.
            consulted = loaded if refusal is not None else [a for a in loaded if not a.pending_events]
            if refusal is not None:
                # A refusal can come after some copies were changed (a batch's earlier
                # items): those changes are not saved, so the copies must go.
                self._evict([a for a in loaded if a.pending_events])
            if any(self._is_stale(a) for a in consulted):
                self._evict(loaded)
                continue
            if refusal is not None and claim is None:
                raise refusal
            ref = body if isinstance(body, ResourceRef) else None
            if ref is not None:
                body = ref.body
            pending: list[Aggregate] = list(aggregates)
            if claim is not None:
                remembered: dict[str, Any] = (
                    ({"ref": [ref.kind, str(ref.id)]} if ref is not None else {"body": body})
                    if refusal is None
                    else {"error": {"code": refusal.code, "detail": refusal.detail,
                                    "extra": refusal.extra()}}
                )
                changed = [a for a in aggregates if a.pending_events]
                if changed:
                    # The answer's position is its last event's (the resource's own, as
                    # a later GET shows it); a replay looks it up by id and version.
                    remembered["last_event"] = [str(changed[-1].id), changed[-1].version]
                # First, so the resource's event is the last one written.
                pending.insert(
                    0,
                    IdempotencyRecord(
                        scope=claim.scope,
                        key=claim.key,
                        fingerprint=claim.fingerprint,
                        outcome=remembered,
                        cause=cause,
                    ),
                )
            try:
                recordings = self.save(*pending) if pending else []
            except IntegrityError:
                # Someone changed one of these aggregates (or took this idempotency
                # key) first: forget our copies, back off a little, reload, decide again.
                self._evict(pending)
                # Full-jitter exponential back-off, capped: ~2 s in all before a 503.
                time.sleep(random.uniform(0, min(0.1, 0.001 * 2**attempt)))
                continue
            if refusal is not None:
                raise refusal
            # The idempotency record is bookkeeping, not the answer's effect: a request
            # that changed nothing answers position null.
            positions = {
                r.domain_event.originator_id: r.notification.id
                for r in recordings
                if not isinstance(r.domain_event, IdempotencyRecord.Recorded)
            }
            position = max(positions.values(), default=None)
            return Outcome(body=body, position=position, positions=positions)
        raise ServiceUnavailable("concurrent updates kept conflicting; retry the request")

    def replay(self, claim: Claim) -> Outcome | None:
        """The remembered outcome for this claim, if any (raises a remembered refusal)."""
        record_id = IdempotencyRecord.create_id(claim.scope, claim.key)
        record = project_aggregate(None, self.events.get(record_id))
        if record is None:
            return None
        if record.fingerprint != claim.fingerprint:
            raise IdempotencyKeyReused(claim.key)
        if "error" in record.outcome:
            stored = record.outcome["error"]
            raise ReplayedError(stored["code"], stored["detail"], stored["extra"])
        if "ref" in record.outcome:
            kind, ref_id = record.outcome["ref"]
            shown = dict(self._ref_readers[kind](UUID(ref_id)))
            position = shown.pop("position")
            return Outcome(body=shown, position=position, replayed=True)
        last = record.outcome.get("last_event")
        position = self._position_of(UUID(last[0]), last[1]) if last else None
        return Outcome(body=record.outcome["body"], position=position, replayed=True)

    def _fetch(self, kind: type[A], aggregate_id: UUID, name: str) -> A:
        try:
            aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(name, aggregate_id) from None
        if not isinstance(aggregate, kind):
            raise NotFound(name, aggregate_id)
        return aggregate

    def _is_stale(self, aggregate: Aggregate) -> bool:
        # The version the copy was loaded at: its unsaved events (a refused batch's
        # earlier items) are not in the store, so they must not hide newer ones there.
        loaded_at = aggregate.version - len(aggregate.pending_events)
        return bool(self.recorder.select_events(aggregate.id, gt=loaded_at, limit=1))

    def _load(self, kind: type[A], aggregate_id: UUID, name: str, *, decides: bool = True) -> A:
        """For a decision: the cached copy, trusted until a save conflicts.

        The cache is not fast-forwarded on every load (that costs a query per
        aggregate per command). A copy made stale by another process makes the save
        conflict, :meth:`_evict` drops it, and the retry loads it afresh; a copy that
        is consulted but not changed is checked in :meth:`_decide_and_save`. Pass
        ``decides=False`` for a lookup of existence only (nothing is ever deleted).
        """
        aggregate = self._fetch(kind, aggregate_id, name)
        loaded = getattr(self._decision, "loaded", None)
        if decides and loaded is not None:
            loaded.append(aggregate)
        return aggregate

    def _hold_and_account(self, hold_id: UUID) -> tuple[Hold, Account]:
        """A hold and its account for a decision, agreeing with each other.

        The two cached copies can disagree when another process changed one of them:
        an active hold its account does not list was placed (account copy stale) or
        ended (hold copy stale) elsewhere. Then both are brought up to date, so the
        decision never trips on the other's state; the save still checks versions.
        """
        hold = self._load(Hold, hold_id, "hold")
        account = self._load(Account, hold.account_id, "account")
        if hold.is_active_record and not account.knows_hold(hold.id):
            hold = self._refresh(hold, Hold, "hold")
            account = self._refresh(account, Account, "account")
        return hold, account

    def _refresh(self, copy: A, kind: type[A], name: str) -> A:
        """Replace a decision's copy with one brought up to date with the store."""
        fresh = self._read(kind, copy.id, name)
        loaded = getattr(self._decision, "loaded", None)
        if loaded is not None:
            loaded[loaded.index(copy)] = fresh
        return fresh

    def _read(self, kind: type[A], aggregate_id: UUID, name: str) -> A:
        """For an answer: the cached copy brought up to date with the store."""
        aggregate = self._fetch(kind, aggregate_id, name)
        newer = self.events.get(aggregate_id, gt=aggregate.version)
        return project_aggregate(aggregate, newer)

    def _evict(self, aggregates: list[Aggregate]) -> None:
        cache = self.repository.cache
        if cache is None:
            return
        for aggregate in aggregates:
            try:
                cache.get(aggregate.id, evict=True)
            except KeyError:
                pass

    def _with_position(self, aggregate: Aggregate, view: dict[str, Any]) -> dict[str, Any]:
        return {**view, "position": self._position_of(aggregate.id, aggregate.version)}

    @property
    def _ref_readers(self) -> dict[str, Callable[[UUID], dict[str, Any]]]:
        return {"batch": lambda batch_id: self.get_batch(batch_id, as_posted=True)}

    def _events_of(self, event_class: type) -> Iterator[Any]:
        topic = f"{event_class.__module__}:{event_class.__qualname__}"
        start = 1
        while True:
            page = self.recorder.select_notifications(start, 1000, topics=[topic])
            for notification in page:
                yield self.mapper.to_domain_event(notification)
            if len(page) < 1000:
                return
            start = page[-1].id + 1

