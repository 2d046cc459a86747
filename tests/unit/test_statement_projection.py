"""The statements projection on its own, against an in-memory view.

Postings are booked when recorded, so they usually arrive in booking order; an import
books in the past, and its entry must go before the later ones, whose balances then
move by its amount. No use case books in the past yet, so these tests feed the
projection hand-made ``Transaction.Posted`` events (``Transaction.post(...,
booked_at=...)``) and compare every entry with a model: each account's entries sorted by
(booked_at, position, seq), with the running sum of their signed amounts.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError, Tracking
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from application.projections.statements import (
    StatementEntry,
    StatementHead,
    StatementsProjection,
    StatementsView,
)
from domain.cause import Cause
from domain.ledger import CREDIT, Entry
from domain.transaction import Transaction

CAUSE = Cause.cli()
NAME = "statements.g1"
# An hour ago: postings booked when recorded ("now") fall among the bookings below.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


class MemoryStatementsView(StatementsView):
    """What the SQL view does, in a dict: entries by (account, key), one tracking record
    that only moves forward (a repeat or a step back is refused, as in the store)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[Any, tuple], StatementEntry] = {}
        self.tracking: int | None = None
        self.recorded: list[int] = []

    def _of(self, account_id: Any) -> list[StatementEntry]:
        found = [e for (a, _), e in self.entries.items() if a == account_id]
        return sorted(found, key=lambda e: e.key)

    def load_heads(self, account_ids: Iterable[Any]) -> dict[Any, StatementHead]:
        heads = {}
        for account_id in account_ids:
            entries = self._of(account_id)
            if entries:
                heads[account_id] = StatementHead(
                    entries[-1].key, entries[-1].balance_after
                )
        return heads

    def balance_before(self, account_id: Any, key: tuple) -> Decimal:
        before = [e for e in self._of(account_id) if e.key < key]
        return before[-1].balance_after if before else Decimal(0)

    def entries_after(self, account_id: Any, key: tuple) -> list[StatementEntry]:
        return [e for e in self._of(account_id) if e.key > key]

    def save_entries(
        self, entries: Sequence[StatementEntry], tracking: Tracking, *, only_new: bool = False
    ) -> None:
        if only_new:  # the projection promises these are not stored yet
            assert not any((e.account_id, e.key) in self.entries for e in entries)
        self.insert_tracking(tracking)
        for entry in entries:
            self.entries[(entry.account_id, entry.key)] = entry

    def insert_tracking(self, tracking: Tracking) -> None:
        assert tracking.application_name == NAME
        if self.tracking is not None and tracking.notification_id <= self.tracking:
            raise IntegrityError(
                f"tracking {tracking.notification_id} after {self.tracking}"
            )
        self.tracking = tracking.notification_id
        self.recorded.append(tracking.notification_id)

    def max_tracking_id(self, application_name: str = "") -> int | None:
        return self.tracking


def posted(
    credit: UUID | None,
    debit: UUID | None,
    amount: str,
    booked_at: datetime | None = None,
) -> Any:
    """A deposit (credit only), withdrawal (debit only) or transfer, as its event."""
    value = Decimal(amount)
    entries = []
    if debit is not None:
        entries.append(Entry.debit(debit, value))
    if credit is not None:
        entries.append(Entry.credit(credit, value))
    if credit is None or debit is None:
        entries.append((Entry.credit if credit is None else Entry.debit)("cash", value))
    kind = "transfer" if credit and debit else ("deposit" if credit else "withdrawal")
    txn = Transaction.post(
        kind=kind,
        amount=value,
        currency="EUR",
        channel="cash",
        entries=entries,
        cause=CAUSE,
        booked_at=booked_at,
    )
    (event,) = txn.collect_events()
    return event


def model(events: Sequence[tuple[Any, int]]) -> dict[str, list[tuple]]:
    """Each account's entries in (booked_at, position, seq) order, with running sums."""
    rows: dict[str, list[tuple]] = {}
    for event, position in events:
        booked_at = event.booked_at or event.timestamp
        for seq, row in enumerate(event.entries):
            if row["account"] in ("cash", "clearing"):
                continue
            signed = row["amount"] if row["direction"] == CREDIT else -row["amount"]
            rows.setdefault(str(row["account"]), []).append(
                (
                    booked_at,
                    position,
                    seq,
                    str(event.originator_id),
                    row["direction"],
                    signed,
                )
            )
    summed: dict[str, list[tuple]] = {}
    for account, found in rows.items():
        balance = Decimal(0)
        summed[account] = []
        for booked_at, position, seq, txn, direction, signed in sorted(found):
            balance += signed
            summed[account].append(
                (booked_at, position, seq, txn, direction, abs(signed), balance)
            )
    return summed


def stored(view: MemoryStatementsView) -> dict[str, list[tuple]]:
    found: dict[str, list[tuple]] = {}
    for account in {str(a) for a, _ in view.entries}:
        found[account] = [
            (
                e.booked_at,
                e.position,
                e.seq,
                str(e.transaction_id),
                e.direction,
                Decimal(e.amount),
                Decimal(e.balance_after),
            )
            for e in view._of(next(a for a, _ in view.entries if str(a) == account))
        ]
    return found


def feed(
    view: MemoryStatementsView, projection: StatementsProjection, batch: list
) -> None:
    projection.process_batch(batch, Tracking(NAME, batch[-1][1]))
    assert view.tracking == batch[-1][1], "the batch's tracking record was not written"


def test_an_import_in_the_past_moves_the_later_balances() -> None:
    a, b = uuid4(), uuid4()
    view = MemoryStatementsView()
    projection = StatementsProjection(view)
    first = posted(a, None, "100.00", T0)
    second = posted(a, None, "50.00", T0 + timedelta(hours=2))
    third = posted(None, a, "30.00", T0 + timedelta(hours=3))
    feed(view, projection, [(first, 10), (second, 20)])
    feed(view, projection, [(third, 30)])
    balances = [e[-1] for e in stored(view)[str(a)]]
    assert balances == [Decimal("100.00"), Decimal("150.00"), Decimal("120.00")]

    # booked between the first and the second entry, recorded last
    imported = posted(a, None, "7.00", T0 + timedelta(hours=1))
    # and a transfer out of a, booked before everything, to b (which has no entries yet)
    earliest = posted(b, a, "1.00", T0 - timedelta(days=1))
    # then an ordinary posting, in the same batch, after both
    later = posted(a, None, "0.50", T0 + timedelta(hours=4))
    feed(view, projection, [(imported, 40), (earliest, 41), (later, 45)])

    entries = stored(view)[str(a)]
    assert [(e[1], e[-1]) for e in entries] == [
        (41, Decimal("-1.00")),
        (10, Decimal("99.00")),
        (40, Decimal("106.00")),
        (20, Decimal("156.00")),
        (30, Decimal("126.00")),
        (45, Decimal("126.50")),
    ]
    assert [(e[1], e[-1]) for e in stored(view)[str(b)]] == [(41, Decimal("1.00"))]
    assert stored(view) == model(
        [
            (first, 10),
            (second, 20),
            (third, 30),
            (imported, 40),
            (earliest, 41),
            (later, 45),
        ]
    )
    assert view.recorded == sorted(set(view.recorded))


def test_entries_booked_at_one_time_follow_the_log_order() -> None:
    a = uuid4()
    view = MemoryStatementsView()
    projection = StatementsProjection(view)
    one = posted(a, None, "1.00", T0)
    two = posted(a, None, "2.00", T0)
    three = posted(None, a, "0.25", T0 - timedelta(microseconds=1))
    feed(view, projection, [(one, 5), (two, 6)])
    feed(view, projection, [(three, 9)])
    # the later position sorts after an equal time; the earlier time before both
    assert [(e[1], e[-1]) for e in stored(view)[str(a)]] == [
        (9, Decimal("-0.25")),
        (5, Decimal("0.75")),
        (6, Decimal("2.75")),
    ]


# ---------------------------------------------------------------- the property


accounts = st.integers(0, 3)
bookings = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "withdrawal", "transfer"]),
        accounts,
        accounts,
        st.integers(1, 10_000),  # cents
        # None: booked when recorded; otherwise minutes from T0, past and future, with ties
        st.one_of(
            st.none(), st.none(), st.sampled_from([-600, -60, -1, 0, 0, 1, 30, 24 * 60])
        ),
        st.integers(
            1, 3
        ),  # gap to the next position (other projections' events between)
    ),
    min_size=1,
    max_size=40,
)


@hypothesis_settings(deadline=None)  # examples: the profile's (tests/conftest.py)
@given(
    bookings=bookings,
    cuts=st.lists(st.integers(0, 40), max_size=8),
    restart=st.integers(0, 40),
)
def test_every_running_balance_is_the_sum_in_booking_order(
    bookings: list[tuple], cuts: list[int], restart: int
) -> None:
    """Any mix of postings and bookings in the past, in any batches, with a restart
    (a new projection on the same view: nothing remembered) somewhere."""
    ids = [uuid4() for _ in range(4)]
    events: list[tuple[Any, int]] = []
    position = 0
    for kind, i, j, cents, minutes, gap in bookings:
        position += gap
        amount = str(Decimal(cents).scaleb(-2))
        booked_at = None if minutes is None else T0 + timedelta(minutes=minutes)
        if kind == "deposit":
            event = posted(ids[i], None, amount, booked_at)
        elif kind == "withdrawal":
            event = posted(None, ids[i], amount, booked_at)
        else:
            event = posted(ids[i], ids[(i + 1 + j % 3) % 4], amount, booked_at)
        events.append((event, position))

    view = MemoryStatementsView()
    projection = StatementsProjection(view)
    bounds = sorted(
        {
            0,
            len(events),
            *(c for c in cuts if c < len(events)),
            min(restart, len(events)),
        }
    )
    for start, end in itertools.pairwise(bounds):
        if start == min(restart, len(events)) and start > 0:
            projection = StatementsProjection(view)  # a runner restarted on the view
        feed(view, projection, events[start:end])

    assert stored(view) == model(events)
    assert view.recorded == sorted(set(view.recorded)), "a tracking record went back"
    # what the projection remembers between batches is what the view holds: one more
    # posting per account, after everything, lands on the right balance
    last = [
        (posted(account, None, "0.01", T0 + timedelta(days=30)), position + 1 + n)
        for n, account in enumerate(ids)
    ]
    feed(view, projection, last)
    assert stored(view) == model(events + last)
