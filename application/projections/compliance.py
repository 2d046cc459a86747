"""The compliance facts and the AML alerts, kept up to date from the log.

Every posted transaction becomes movements (one per customer account it touches) and
ledger lines (the bank's own cash and clearing accounts); customers are kept version
by version and accounts with their opening. All of it carries the position that
recorded it, so a report as of position P reads the facts at or before P.

Alerts are evaluated in the same transaction as the facts they come from: for each
person a batch touches, the rules run over that person's recent movements from the
earliest moment the batch changed, and the alerts found are compared with the ones
stored from that moment on. An alert that is no longer found (a same-day reversal,
an import in the past) is retracted at the position that caused it, never deleted, so
the alerts as of any earlier position can still be read.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any, Protocol

from eventsourcing.persistence import Tracking, TrackingRecorder

from application.compliance import alerts as rules_engine
from application.compliance.facts import (
    IN,
    OUT,
    AccountFacts,
    Activity,
    Alert,
    CustomerFacts,
    Movement,
)
from application.compliance.rules import Rules
from application.projections.base import BatchProjection, Item, RowCache, topic_of
from domain.account import Account
from domain.customer import Customer
from domain.hold import Hold
from domain.ledger import CREDIT, INTERNAL_ACCOUNTS
from domain.transaction import Transaction

# Activity that counts as the customer's own (dormancy): deposits into the account,
# withdrawals and transfers out of it, with openings and holds kept beside them.
_ACTIVE = {("deposit", IN), ("withdrawal", OUT), ("transfer", OUT)}


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """An entry on one of the bank's own accounts (``cash``, ``clearing``)."""

    account: str
    currency: str
    booked_at: datetime
    position: int
    seq: int
    transaction_id: str
    kind: str
    channel: str
    direction: str
    amount: Decimal


@dataclass
class ComplianceChanges:
    accounts: list[AccountFacts] = field(default_factory=list)
    customers: list[CustomerFacts] = field(default_factory=list)
    movements: list[Movement] = field(default_factory=list)
    ledger: list[LedgerLine] = field(default_factory=list)
    activities: list[tuple[Activity, str | None]] = field(default_factory=list)
    # Transactions reversed on the day they were booked: their activity no longer counts.
    voided: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    alert: Alert
    position: int


@dataclass
class AlertChanges:
    raised: list[StoredAlert] = field(default_factory=list)
    retracted: list[tuple[str, int, int]] = field(default_factory=list)  # id, raised at, by


class AlertFacts(Protocol):
    """Reads of the facts inside the transaction that writes a batch's facts."""

    def movements_of_many(self, since: dict[str, datetime]) -> dict[str, list[Movement]]:
        """For each person: the movements on their accounts and the cash deposits they
        conducted on others' accounts, booked at or after their ``since``, in order."""

    def reversals_of(self, transaction_ids: Sequence[str]) -> list[Movement]: ...

    def movements_of_transactions(self, transaction_ids: Sequence[str]) -> list[Movement]: ...

    def present_alerts_many(self, since: dict[str, datetime]) -> dict[str, list[StoredAlert]]:
        """Each person's alerts not retracted, triggered at or after their ``since``."""

    def last_activity(self, account_id: str, before: datetime) -> datetime | None: ...

    def opened_at(self, account_ids: Iterable[str]) -> dict[str, datetime]: ...


class ComplianceView(TrackingRecorder, ABC):
    business_tz: tzinfo
    rules: Rules

    @abstractmethod
    def load_accounts(self, account_ids: Iterable[str]) -> dict[str, AccountFacts]: ...

    @abstractmethod
    def load_customers(self, customer_ids: Iterable[str]) -> dict[str, CustomerFacts]:
        """Each customer's latest version."""

    @abstractmethod
    def save(
        self,
        changes: ComplianceChanges,
        alerts: Callable[[AlertFacts], AlertChanges],
        tracking: Tracking,
    ) -> None:
        """Write the facts, then (in the same transaction, reading what it wrote) the
        alert changes ``alerts`` works out, and the tracking record."""


@dataclass(frozen=True, slots=True)
class _Window:
    """A person's movements booked from ``start`` on (all of them), in order."""

    start: datetime
    movements: list[Movement]


@dataclass
class _Touched:
    since: datetime
    cause: int


class ComplianceProjection(BatchProjection[ComplianceView]):
    name = "compliance"
    topics = (
        topic_of(Transaction.Posted),
        topic_of(Account.Opened),
        topic_of(Customer.Registered),
        topic_of(Customer.DetailsChanged),
        topic_of(Hold.Placed),
    )

    def __init__(self, view: ComplianceView) -> None:
        super().__init__(view)
        self._accounts: RowCache[str, AccountFacts] = RowCache()
        self._customers: RowCache[str, CustomerFacts] = RowCache(20_000)
        self._windows: RowCache[str, _Window] = RowCache(20_000)

    def forget(self) -> None:
        self._accounts.clear()
        self._customers.clear()
        self._windows.clear()

    def process_batch(self, items: Sequence[Item], tracking: Tracking) -> None:
        with self.forgetting():
            self._process(items, tracking)

    def _process(self, items: Sequence[Item], tracking: Tracking) -> None:
        changes = ComplianceChanges()
        accounts = self._load_accounts(items)
        customers = self._load_customers(items)
        touched: dict[str, _Touched] = {}
        # Reversals whose originals may have been reversed on their own day: decided
        # inside the transaction, where the originals can be read.
        reversals: list[Movement] = []

        def touch(person: str, since: datetime, cause: int) -> None:
            seen = touched.get(person)
            if seen is None:
                touched[person] = _Touched(since, cause)
            else:
                seen.since = min(seen.since, since)
                seen.cause = min(seen.cause, cause)

        for event, position in items:
            kind = type(event)
            if kind is Account.Opened:
                facts = AccountFacts(
                    str(event.originator_id), str(event.customer_id), event.currency,  # type: ignore[attr-defined]
                    event.opened_at or event.timestamp, position,  # type: ignore[attr-defined]
                )
                accounts[facts.account_id] = facts
                changes.accounts.append(facts)
                activity = Activity(facts.account_id, facts.customer_id, facts.opened_at, position, "opened")
                changes.activities.append((activity, None))
                touch(facts.customer_id, facts.opened_at, position)
            elif kind is Customer.Registered or kind is Customer.DetailsChanged:
                customer_id = str(event.originator_id)
                before = customers.get(customer_id)
                details = (
                    event.details  # type: ignore[attr-defined]
                    if kind is Customer.Registered
                    else {**(before.details() if before else {}), **event.changes}  # type: ignore[attr-defined]
                )
                version = _customer(customer_id, position, event.timestamp, details)
                customers[customer_id] = version
                changes.customers.append(version)
            elif kind is Hold.Placed:
                account = accounts[str(event.account_id)]  # type: ignore[attr-defined]
                activity = Activity(account.account_id, account.customer_id, event.timestamp, position, "hold")
                changes.activities.append((activity, None))
                touch(account.customer_id, event.timestamp, position)
            elif kind is Transaction.Posted:
                for movement in _movements(event, position, accounts, changes.ledger):
                    changes.movements.append(movement)
                    if movement.kind == "reversal":
                        reversals.append(movement)
                        continue
                    touch(movement.customer_id, movement.booked_at, position)
                    if _counts_for_conductor(movement):
                        touch(movement.conducted_by, movement.booked_at, position)  # type: ignore[arg-type]
                    if (movement.kind, movement.flow) in _ACTIVE:
                        activity = Activity(
                            movement.account_id, movement.customer_id, movement.booked_at,
                            position, movement.kind,
                        )
                        changes.activities.append((activity, movement.transaction_id))
        self._accounts.update({a.account_id: a for a in changes.accounts})
        self._customers.update({c.customer_id: c for c in changes.customers})
        tz = self.view.business_tz
        in_batch = {}
        for movement in changes.movements:
            in_batch.setdefault(movement.transaction_id, []).append(movement)

        def alert_changes(facts: AlertFacts) -> AlertChanges:
            originals = {r.reverses for r in reversals if r.reverses}
            stored = facts.movements_of_transactions([t for t in originals if t not in in_batch])
            by_transaction: dict[str, list[Movement]] = {}
            for movement in [*stored, *(m for ms in in_batch.values() for m in ms)]:
                by_transaction.setdefault(movement.transaction_id, []).append(movement)
            for reversal in reversals:
                original = by_transaction.get(reversal.reverses or "", [])
                if original and _day(original[0].booked_at, tz) == _day(reversal.booked_at, tz):
                    if original[0].transaction_id not in changes.voided:
                        changes.voided.append(original[0].transaction_id)
                    for movement in original:
                        touch(movement.customer_id, movement.booked_at, reversal.position)
                        if _counts_for_conductor(movement):
                            touch(movement.conducted_by, movement.booked_at, reversal.position)  # type: ignore[arg-type]
            result = AlertChanges()
            self._evaluate(facts, touched, changes.movements, result)
            return result

        self.view.save(changes, alert_changes, tracking)

    def _evaluate(
        self,
        facts: AlertFacts,
        touched: dict[str, _Touched],
        new: Sequence[Movement],
        result: AlertChanges,
    ) -> None:
        """Work out each touched person's alerts from their ``since`` and record what
        changed. A person's recent movements are kept between batches (only this
        runner writes the view), so a busy customer's history is not read again for
        every batch; the rest are read for all persons at once."""
        rules, tz = self.view.rules, self.view.business_tz
        lookback = rules_engine.lookback(rules)
        longest = max(rules_engine.rule_window(rule, rules) for rule in rules_engine.RULES)
        needed = {p: seen.since - lookback for p, seen in touched.items()}
        cached, _ = self._windows.get_many(needed)
        windows: dict[str, _Window] = {}
        for person, window in cached.items():
            if window.start <= needed[person]:
                mine = [m for m in new if _belongs(m, person)]
                windows[person] = _Window(window.start, sorted(
                    [*window.movements, *mine], key=rules_engine.order_key
                ))
        loaded = facts.movements_of_many({p: n for p, n in needed.items() if p not in windows})
        windows.update({p: _Window(needed[p], ms) for p, ms in loaded.items()})
        # A reversal on the customer's own account is among their movements; one of a
        # cash deposit they conducted on another's account has to be looked up.
        conducted = sorted({
            m.transaction_id for p, w in windows.items() for m in w.movements
            if m.customer_id != p and m.kind != "reversal"
        })
        reversals: dict[str, list[Movement]] = {}
        for reversal in facts.reversals_of(conducted):
            reversals.setdefault(reversal.reverses or "", []).append(reversal)
        stored_alerts = facts.present_alerts_many(
            {p: seen.since - longest for p, seen in touched.items()}
        )
        opened = facts.opened_at(
            {m.account_id for p, w in windows.items() for m in w.movements if m.customer_id == p}
        )
        for person, seen in sorted(touched.items()):
            since = seen.since
            window = windows[person]
            extra = [r for m in window.movements for r in reversals.get(m.transaction_id, ())]
            effective = [
                m for m in rules_engine.effective(
                    [m for m in window.movements if m.booked_at >= needed[person]] + extra, tz
                )
                if _belongs(m, person)
            ]
            stored = stored_alerts.get(person, [])
            previous = [a.alert for a in stored if a.alert.trigger_booked_at < since]
            current = {a.alert.alert_id: a for a in stored if a.alert.trigger_booked_at >= since}
            found = rules_engine.evaluate_person(
                person, effective, since, previous, facts.last_activity, opened, rules
            )
            positions = {m.transaction_id: m.position for m in effective}
            for alert in found:
                old = current.pop(alert.alert_id, None)
                if old is not None and old.alert == alert:
                    continue
                at = max([seen.cause, *(positions.get(t, 0) for t in alert.transaction_ids)])
                if old is not None:
                    result.retracted.append((alert.alert_id, old.position, at))
                result.raised.append(StoredAlert(alert, at))
            for gone in current.values():
                result.retracted.append((gone.alert.alert_id, gone.position, seen.cause))
        # Keep what the next batch (booked later, as postings are) will need.
        kept: dict[str, _Window] = {}
        for person, window in windows.items():
            if not window.movements:
                kept[person] = window
                continue
            start = max(window.start, window.movements[-1].booked_at - lookback)
            kept[person] = _Window(start, [m for m in window.movements if m.booked_at >= start])
        self._windows.update(kept)

    def _load_accounts(self, items: Sequence[Item]) -> dict[str, AccountFacts]:
        wanted: set[str] = set()
        for event, _ in items:
            kind = type(event)
            if kind is Transaction.Posted:
                wanted.update(
                    row["account"] for row in event.entries  # type: ignore[attr-defined]
                    if row["account"] not in INTERNAL_ACCOUNTS
                )
            elif kind is Hold.Placed:
                wanted.add(str(event.account_id))  # type: ignore[attr-defined]
        found, missing = self._accounts.get_many(wanted)
        if missing:
            found.update(self.view.load_accounts(missing))
        return found

    def _load_customers(self, items: Sequence[Item]) -> dict[str, CustomerFacts]:
        wanted = {
            str(event.originator_id) for event, _ in items
            if type(event) is Customer.DetailsChanged
        }
        found, missing = self._customers.get_many(wanted)
        if missing:
            found.update(self.view.load_customers(missing))
        return found


def _belongs(movement: Movement, person: str) -> bool:
    """Whether a movement is among the person's: on their account, or a cash deposit
    they conducted on another's."""
    return movement.customer_id == person or (
        movement.conducted_by == person and _counts_for_conductor(movement)
    )


def _counts_for_conductor(movement: Movement) -> bool:
    """A cash deposit counts for whoever conducted it too (as in the CTR)."""
    return (
        movement.kind == "deposit" and movement.channel == "cash"
        and movement.conducted_by is not None and movement.conducted_by != movement.customer_id
    )


def _day(moment: datetime, tz: tzinfo) -> Any:
    return moment.astimezone(tz).date()


def _movements(
    event: Any, position: int, accounts: dict[str, AccountFacts], ledger: list[LedgerLine]
) -> Iterable[Movement]:
    booked_at = event.booked_at or event.timestamp
    transaction_id = str(event.originator_id)
    counterparty = event.counterparty or {}
    conducted_by = str(event.conducted_by) if event.conducted_by else None
    reverses = str(event.reverses) if event.reverses else None
    for seq, row in enumerate(event.entries):
        account = row["account"]
        if account in INTERNAL_ACCOUNTS:
            ledger.append(
                LedgerLine(
                    account, event.currency, booked_at, position, seq, transaction_id,
                    event.kind, event.channel, row["direction"], row["amount"],
                )
            )
            continue
        facts = accounts[account]
        yield Movement(
            transaction_id=transaction_id,
            position=position,
            seq=seq,
            booked_at=booked_at,
            kind=event.kind,
            channel=event.channel,
            currency=event.currency,
            amount=row["amount"],
            account_id=account,
            customer_id=facts.customer_id,
            flow=IN if row["direction"] == CREDIT else OUT,
            conducted_by=conducted_by,
            counterparty_country=counterparty.get("country"),
            reverses=reverses,
        )


def _customer(customer_id: str, position: int, at: datetime, details: dict[str, Any]) -> CustomerFacts:
    return CustomerFacts(
        customer_id=customer_id,
        position=position,
        recorded_at=at,
        name=details.get("name") or "",
        kind=details.get("kind") or "person",
        country=details.get("country") or "",
        date_of_birth=details.get("date_of_birth"),
        identification=details.get("identification"),
        address=details.get("address"),
        occupation=details.get("occupation"),
        group_id=details.get("group_id"),
    )
