"""The projections' views against the event log, on this run's store.

SQLite by default; PostgreSQL with BACKOFFICE_DATABASE_URL=postgresql://... (each test,
and each hypothesis example, in a schema of its own). Every check compares the rows of
the views with what the log says, worked out independently of the projections (see
``projection_helpers.check_views``): each account's row against the account replayed
from its events, each statement entry and running balance against the posted
transactions sorted by (booked_at, position, seq), the ledger balances against the
internal entries, each transaction's body (reversed or not) against the replayed
record's contract view, each hold against its own events, what each account holds over
time against its own record of its holds; and balances as of past moments against a
brute-force sum over the log.
"""

from __future__ import annotations

import itertools
import random
import signal
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, Phase, event, given, note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from projection_helpers import (
    CAUSE,
    CHANNELS,
    CLOCK_STEPS,
    CURRENCIES,
    HOLD_EXPIRIES,
    HOLD_STORY,
    HOLDS_PRELUDE,
    IMPORT_AGES,
    NAMES,
    REFUSALS,
    STORY_COVERAGE,
    History,
    Stores,
    bulk_transfers,
    catch_up,
    check_balances_as_of,
    check_views,
    covered,
    dump_views,
    opened_bank,
    random_operations,
    read_log,
    run_projections_process,
    running_projections,
    story_then,
    tracked_positions,
    wait_for,
    without_account_snapshots,
)

from application.bank import Bank
from application.errors import ServiceUnavailable
from application.views import account_view, transaction_view
from infrastructure.bootstrap import rebuild_projections
from infrastructure.settings import Settings
from infrastructure.views import rebuild as rebuild_module
from infrastructure.views.rebuild import Progress


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    return Stores(tmp_path_factory.mktemp("projection-stores"))


def new_customer(bank: Bank, name: str = "Ada") -> UUID:
    body = bank.register_customer(
        {"name": name, "kind": "person", "country": "GB"}, CAUSE
    ).body
    return UUID(body["customer_id"])


def new_accounts(
    bank: Bank, customer: UUID, count: int, currency: str = "EUR"
) -> list[UUID]:
    return [
        UUID(bank.open_account(customer, currency, CAUSE).body["account_id"])
        for _ in range(count)
    ]


# ------------------------------------------------------------ 1. the property


index = st.integers(0, 63)
booked = st.one_of(st.none(), st.sampled_from(IMPORT_AGES))  # None: booked now
batch_items = st.one_of(
    st.tuples(
        st.sampled_from(["deposit", "withdrawal"]),
        index,
        st.integers(1, 30_000),
        st.sampled_from(CHANNELS),
        booked,
    ),
    st.tuples(st.just("transfer"), index, index, st.integers(1, 30_000), booked),
)
# One strategy per kind of operation, drawn with these weights (st.one_of would
# drop repeated strategies, so repeating one there does not weight it).
OPERATIONS: dict[str, tuple[int, st.SearchStrategy[tuple]]] = {
    "customer": (
        1,
        st.tuples(st.just("customer"), st.sampled_from(["ES", "JP", "BH"])),
    ),
    "open": (
        1,
        st.tuples(
            st.just("open"),
            index,
            st.sampled_from(CURRENCIES),
            st.sampled_from([0, 0, 500, 20_000]),
            st.sampled_from(["current", "savings"]),
            st.sampled_from([0, 0, 0, 2]),
        ),
    ),
    "deposit": (
        4,
        st.tuples(
            st.just("deposit"), index, st.integers(1, 60_000), st.sampled_from(CHANNELS)
        ),
    ),
    "withdraw": (
        2,
        st.tuples(
            st.just("withdraw"),
            index,
            st.integers(1, 60_000),
            st.sampled_from(CHANNELS),
        ),
    ),
    "transfer": (
        3,
        st.tuples(
            st.just("transfer"), index, index, st.integers(1, 60_000), st.booleans()
        ),
    ),
    "freeze": (1, st.tuples(st.just("freeze"), index)),
    "unfreeze": (1, st.tuples(st.just("unfreeze"), index)),
    "limit": (
        1,
        st.tuples(st.just("limit"), index, st.sampled_from([0, 1, 1000, 50_000])),
    ),
    "close": (1, st.tuples(st.just("close"), index)),
    "empty_and_close": (1, st.tuples(st.just("empty_and_close"), index)),
    # booked in the past, up to two days (0: "now", which still sorts by position),
    # in a batch of one; some items are refused for predating the account or its day
    "import": (
        2,
        st.tuples(
            st.just("import"),
            index,
            st.integers(1, 60_000),
            st.booleans(),
            st.sampled_from(IMPORT_AGES),
        ),
    ),
    "batch": (
        2,
        st.tuples(
            st.just("batch"),
            st.booleans(),  # atomic
            st.lists(batch_items, min_size=1, max_size=4).map(tuple),
        ),
    ),
    "close_day": (1, st.tuples(st.just("close_day"), st.sampled_from([1, 2]))),
    # holds: placed (with or without an expiry), captured (all that is left, or a
    # part, possibly more than is left; to clearing, -1, or to another account),
    # released, expired on a touch or by the sweeper once the clock has moved on
    "hold": (
        5,
        st.tuples(
            st.just("hold"),
            index,
            st.integers(1, 30_000),
            st.sampled_from(HOLD_EXPIRIES),
        ),
    ),
    "capture": (
        4,
        st.tuples(
            st.just("capture"),
            index,
            st.sampled_from([0, 0, 1, 500, 5_000, 40_000]),
            st.sampled_from([-1, -1, 0, 1, 2, 5]),
        ),
    ),
    "release": (2, st.tuples(st.just("release"), index)),
    "expire": (1, st.tuples(st.just("expire"), index)),
    "sweep": (2, st.tuples(st.just("sweep"))),
    "advance": (2, st.tuples(st.just("advance"), st.sampled_from(CLOCK_STEPS))),
    "reverse": (3, st.tuples(st.just("reverse"), index)),
}
operations = st.sampled_from(
    [kind for kind, (weight, _) in OPERATIONS.items() for _ in range(weight)]
).flatmap(lambda kind: OPERATIONS[kind][1])

PROPERTY_SETTINGS = hypothesis_settings(
    # a fresh store per example: modest, and fewer if the loaded profile asks for fewer
    max_examples=min(25, hypothesis_settings().max_examples),
    deadline=None,
    # shrinking on a real store takes minutes; the failing history is printed instead
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY_SETTINGS
@given(history=st.lists(operations, min_size=10, max_size=50), start=st.integers(0, 50))
def test_every_view_row_is_what_the_aggregates_say(
    stores: Stores, history: list[tuple], start: int
) -> None:
    """A random history (three currencies: 2, 0 and 3 decimals; holds, reversals,
    batches and imports; the bank's clock moved on so holds lapse; refusals
    included) after a hold on each account; runners start after ``start`` operations, so some events are a backlog
    and some arrive live. Then every row of every view must match the aggregates,
    and balances as of moments drawn from the history the log's brute-force sum."""
    with stores.fresh() as url, opened_bank(url) as bank:
        applied = History(bank)
        applied.prelude()
        applied.apply_all(HOLDS_PRELUDE)
        applied.apply_all(history[:start])
        with running_projections(bank, url) as service:
            applied.live = True
            applied.apply_all(history[start:])
            note(
                f"refused: {dict(applied.refused)}; applied: {dict(applied.applied)}; "
                f"last position {applied.last_position}"
            )
            catch_up(bank, applied.last_position, services=[service])
            assert applied.last_position == bank.last_position()
            facts = check_views(bank)
            check_balances_as_of(
                bank, facts, random.Random(len(history) * 41 + start), per_account=12
            )
            for kind in sorted(covered(facts) & STORY_COVERAGE):
                event(kind)  # how often each was met: --hypothesis-show-statistics


def test_internal_balances_from_the_view_equal_the_replayed_ones(
    stores: Stores,
) -> None:
    """Also for a currency whose money only ever moved between customers (no entry on
    cash or clearing): both answers must name the same currencies."""
    with stores.fresh() as url, opened_bank(url) as bank:
        customer = new_customer(bank)
        (eur,) = new_accounts(bank, customer, 1)
        bank.deposit(eur, "5.00", "EUR", "cash", CAUSE)
        overdrawn = UUID(
            bank.open_account(customer, "USD", CAUSE, overdraft_limit="100.00").body[
                "account_id"
            ]
        )
        (target,) = new_accounts(bank, customer, 1, "USD")
        moved = bank.transfer(overdrawn, target, "10.00", "USD", CAUSE)
        with running_projections(bank, url) as service:
            catch_up(bank, moved.position, services=[service])
            check_views(bank, api=False)
            assert bank.internal_balances(min_position=moved.position) == (
                bank.replayed_internal_balances()
            )


# ------------------------------------------------- balances as of past moments


def at(text: str, shift_us: int = 0) -> datetime:
    return datetime.fromisoformat(text) + timedelta(microseconds=shift_us)


def test_balances_as_of_every_moment_of_a_history_with_holds(stores: Stores) -> None:
    """The story of holds (lapsing as the bank's clock moves on, captured in parts,
    released, expired on a touch and by the sweeper), reversals, limit changes and
    imports, then more of the same at random: ``balance(as_of=T)`` for every moment
    around every change of every account equals the brute-force sum over the log."""
    with stores.fresh() as url, opened_bank(url) as bank:
        applied = History(bank)
        with running_projections(bank, url) as service:
            applied.live = True
            applied.prelude()
            applied.apply_all(story_then(random.Random(21), 40))
            catch_up(bank, services=[service])
            facts = check_views(bank)
            compared = check_balances_as_of(bank, facts)
            assert compared > 200, compared
            assert covered(facts) >= STORY_COVERAGE, STORY_COVERAGE - covered(facts)

            # And one by hand: the story's hold 2 (400.00 on account 3, never
            # captured) counts until its expires_at, not from it on.
            account = applied.accounts[3][0]
            (hold,) = [
                h for h in bank.account_holds(account) if h["reference"] == "hold 2"
            ]
            assert hold["status"] == "expired" and hold["amount"] == "400.00"
            before = bank.balance(account, as_of=at(hold["expires_at"], -1))
            after = bank.balance(account, as_of=at(hold["expires_at"]))
            assert before["ledger_balance"] == after["ledger_balance"]
            assert Decimal(after["available_balance"]) - Decimal(
                before["available_balance"]
            ) == Decimal("400.00")


def test_reads_leave_a_hold_out_from_its_expires_at_on(stores: Stores) -> None:
    """A microsecond before its expires_at a hold counts, at its expires_at it does
    not, before any expiry is recorded: the account's read, its holds, its
    customer's accounts and its balance now, as the account replayed says."""
    with stores.fresh() as url, opened_bank(url) as bank:
        customer = new_customer(bank)
        account, other = new_accounts(bank, customer, 2)
        bank.deposit(account, "100.00", "EUR", "cash", CAUSE)
        bank.deposit(other, "5.00", "EUR", "cash", CAUSE)
        expires_at = bank.clock() + timedelta(minutes=10)
        lapsing = bank.place_hold(account, "30.00", "EUR", CAUSE, expires_at=expires_at)
        bank.place_hold(account, "20.00", "EUR", CAUSE)  # no expiry
        with running_projections(bank, url) as service:
            catch_up(bank, services=[service])
            replayed = bank.reconstruct(account)
            for moment, held, status in (
                (expires_at - timedelta(microseconds=1), "50.00", "active"),
                (expires_at, "20.00", "expired"),
            ):
                bank.clock = lambda moment=moment: moment
                read = bank.get_account(account)
                assert read == {
                    **account_view(replayed, moment),  # type: ignore[arg-type]
                    "position": read["position"],
                }
                assert read["held_amount"] == held, moment
                assert bank.customer_accounts(customer)[0] == read
                now = bank.balance(account)
                assert now["available_balance"] == read["available_balance"]
                shown = {h["hold_id"]: h for h in bank.account_holds(account)}
                assert shown[lapsing.body["hold_id"]]["status"] == status


def test_balance_as_of_a_captures_booking_counts_the_captured_amount_once(
    stores: Stores,
) -> None:
    """As of the capture's booked_at the ledger is debited and the hold holds that
    much less, together (the account records the end of the hold a little later)."""
    with stores.fresh() as url, opened_bank(url) as bank:
        customer = new_customer(bank)
        (account,) = new_accounts(bank, customer, 1)
        bank.deposit(account, "100.00", "EUR", "cash", CAUSE)
        hold = bank.place_hold(account, "40.00", "EUR", CAUSE)
        capture = bank.capture_hold(UUID(hold.body["hold_id"]), CAUSE, amount="10.00")
        with running_projections(bank, url) as service:
            catch_up(bank, services=[service])
            now = bank.balance(account)
            assert (now["ledger_balance"], now["available_balance"]) == (
                "90.00",
                "60.00",
            )
            booked = bank.balance(account, as_of=at(capture.body["booked_at"]))
        # 90.00 booked, 30.00 still held: not 90.00 - 40.00
        assert (booked["ledger_balance"], booked["available_balance"]) == (
            "90.00",
            "60.00",
        )


def test_balance_as_of_a_holds_placed_at_counts_it(stores: Stores) -> None:
    """From the hold's placed_at on (the account records it a little later)."""
    with stores.fresh() as url, opened_bank(url) as bank:
        customer = new_customer(bank)
        (account,) = new_accounts(bank, customer, 1)
        bank.deposit(account, "100.00", "EUR", "cash", CAUSE)
        hold = bank.place_hold(account, "40.00", "EUR", CAUSE)
        with running_projections(bank, url) as service:
            catch_up(bank, services=[service])
            now = bank.balance(account)
            assert now["available_balance"] == "60.00"
            placed = bank.balance(account, as_of=at(hold.body["placed_at"]))
        assert placed["available_balance"] == "60.00"


# ------------------------------------------------------ 2. rebuild == live views


def in_processes(monkeypatch: pytest.MonkeyPatch, processes: int) -> None:
    """A rebuild uses worker processes only for long logs: these logs are short."""
    if processes > 1:
        monkeypatch.setattr(rebuild_module, "PARALLEL_FROM_EVENTS", 0)


@pytest.mark.parametrize("processes", [1, 2])
def test_a_rebuild_equals_the_live_views(
    stores: Stores, monkeypatch: pytest.MonkeyPatch, processes: int
) -> None:
    """Rebuilt three times over live runners: with pages of 7 events (many pages, and
    bookings in the past met across pages), of 40, and of 5,000 (all of it inside the
    switch's transaction); each time every row equals the live row before it.

    The history has every kind of hold event (placed, captured in parts, released,
    lapsed and expired by a touch and by the sweeper), reversals, batches and imports.
    """
    in_processes(monkeypatch, processes)
    with stores.fresh() as url, opened_bank(url) as bank:
        without_account_snapshots(bank)
        settings = Settings(database_url=url)
        store = bank.views.store  # type: ignore[union-attr]
        applied = History(bank)
        with running_projections(bank, url) as service:
            applied.live = True
            applied.prelude()
            applied.apply_all(story_then(random.Random(2), 150))
            assert applied.applied["sweep"], "the sweeper recorded no expiry"
            for number, page_size in enumerate((7, 40, 5000)):
                catch_up(bank, services=[service])
                facts = check_views(bank)
                assert covered(facts) >= STORY_COVERAGE, STORY_COVERAGE - covered(facts)
                live = dump_views(bank)
                assert live["holds"] and live["hold_changes"]
                before = store.generations()
                head = bank.last_position()

                result = rebuild_projections(
                    settings, NAMES, page_size=page_size, processes=processes
                ).run()

                assert result.processes == processes
                assert result.generations == {n: before[n] + 1 for n in NAMES}
                # The audit chain is never rebuilt: it stays at its first generation.
                assert store.generations() == {**result.generations, "chain": 1}
                assert result.position == head
                status = {s.name: s.generation for s in bank.projection_status()}
                assert status == {**result.generations, "chain": 1}
                catch_up(bank, services=[service])
                assert dump_views(bank) == live, (
                    f"rebuild {number} differs from the live views"
                )

                # the live runners carry on in the new generation ...
                applied.apply_all(random_operations(random.Random(3 + number), 30))
                catch_up(bank, services=[service])
                assert store.generations() == {**result.generations, "chain": 1}
                check_views(bank)
                # ... and drop the replaced tables once they have moved on
                wait_for(
                    lambda: all(
                        store.existing_generations(n) == [result.generations[n]]  # noqa: B023
                        for n in NAMES
                    ),
                    10,
                    "the replaced generations to be dropped",
                )
            assert not service.failed(), service.states()


# ------------------------------------------------ 3. a runner killed mid-stream


def test_a_runner_killed_mid_stream_resumes_exactly_where_it_stopped(
    stores: Stores, tmp_path: Path
) -> None:
    """A backlog of ~9,000 events (3,000 transfers appended 500 per save, plus history
    with every kind of hold event, reversals, batches and imports), worked by
    ``backoffice projections run`` in a process of its own that is killed (SIGKILL)
    as soon as a projection is part-way, twice, then finished here.

    After each kill every view must be exactly the log's prefix up to its tracking
    record (rows and tracking commit together), and at the end exactly the log.
    """
    log = tmp_path / "runner.log"
    with stores.fresh() as url, opened_bank(url) as bank:
        without_account_snapshots(bank)
        story = History(bank)  # holds, reversals and imports, part of the backlog
        story.prelude()
        story.apply_all(HOLD_STORY)
        customer = new_customer(bank)
        accounts = new_accounts(bank, customer, 12)
        for account in accounts:
            bank.deposit(account, "1000.00", "EUR", "cash", CAUSE)
        bank.freeze_account(accounts[0], "review", CAUSE)  # still takes credits
        bank.set_overdraft_limit(accounts[1], "50.00", CAUSE)
        bulk_transfers(bank, accounts[1:], 3000)
        applied = History(
            bank,
            customers=[customer],
            accounts=[(a, "EUR") for a in accounts],
            clock=story.clock,
        )
        applied.apply_all(random_operations(random.Random(5), 30))
        story.apply_all(random_operations(random.Random(8), 30))
        head = bank.last_position()
        missing = STORY_COVERAGE - covered(read_log(bank))
        assert not missing, f"the backlog has no {sorted(missing)}"

        def reached() -> dict[str, bool]:
            return {n: bank.views.reached([n], head) for n in NAMES}  # type: ignore[union-attr]

        caught_midway: list[list[str]] = []
        for _ in range(2):
            started_at = tracked_positions(bank)
            runner = run_projections_process(url, log=log)
            try:

                def part_way(
                    started_at: dict[str, int] = started_at, runner: Any = runner
                ) -> bool:
                    if runner.poll() is not None:
                        pytest.fail(f"the runner exited: {log.read_text()[-2000:]}")
                    now = tracked_positions(bank)
                    done = reached()
                    return any(now[n] > started_at[n] and not done[n] for n in NAMES)

                wait_for(part_way, 60, "the runner to commit a batch", every=0.002)
                runner.send_signal(signal.SIGKILL)
                runner.wait(10)
            finally:
                if runner.poll() is None:
                    runner.kill()
                    runner.wait(10)
            assert runner.returncode == -signal.SIGKILL
            upto = tracked_positions(bank)
            done = reached()
            caught_midway.append([n for n in NAMES if 0 < upto[n] and not done[n]])
            # what the killed runner committed is a prefix of the log, nothing more or less
            check_views(bank, upto=upto)

        assert all(caught_midway), (
            f"a kill did not land part-way ({caught_midway}): make the backlog bigger"
        )
        with running_projections(bank, url) as service:
            catch_up(bank, head, timeout=30, services=[service])
            check_views(bank, api=False)
            # and the runner that took over carries on live
            applied.live = True
            applied.apply_all(random_operations(random.Random(6), 20))
            catch_up(bank, services=[service])
            check_views(bank, api=False)


def test_runners_started_while_postings_arrive_miss_none_of_them(
    stores: Stores,
) -> None:
    """Runners (re)started again and again while deposits are being recorded: each
    time, every deposit must reach every view without a further write to wake them."""
    with stores.fresh() as url, opened_bank(url) as bank:
        customer = new_customer(bank)
        account = new_accounts(bank, customer, 1)[0]
        for attempt in range(20):
            with running_projections(bank, url) as service:
                for _ in range(4):  # while the runners subscribe
                    last = bank.deposit(account, "1.00", "EUR", "cash", CAUSE)
                reached = bank.views.wait(NAMES, last.position, 5)  # type: ignore[union-attr]
                assert reached, (
                    f"attempt {attempt}: not reached {last.position} with no write after it: "
                    f"{[(s.name, s.position) for s in bank.projection_status()]}, "
                    f"runners {service.states()}"
                )
        check_views(bank)


# --------------------------------------- 4. events recorded during a rebuild


POSTER_CYCLE = (
    "hold",
    "deposit",
    "hold",
    "capture",
    "transfer",
    "hold",
    "release",
    "reverse",
    "sweep",
)


@pytest.mark.parametrize("processes", [1, 2])
def test_events_recorded_while_a_rebuild_runs_are_not_lost(
    stores: Stores, monkeypatch: pytest.MonkeyPatch, processes: int
) -> None:
    """A rebuild of a backlog with holds, reversals and imports while a poster keeps
    depositing, transferring, placing, capturing and releasing holds, reversing,
    moving the bank's clock on and sweeping lapsed holds: every view ends up as the
    log says, with nothing lost at the switch."""
    in_processes(monkeypatch, processes)
    with stores.fresh() as url, opened_bank(url) as bank:
        without_account_snapshots(bank)
        settings = Settings(database_url=url)
        story = History(bank)
        story.prelude()
        story.apply_all(HOLD_STORY)
        clock = story.clock
        customer = new_customer(bank)
        backlog = new_accounts(bank, customer, 6)
        busy = new_accounts(bank, customer, 4) + new_accounts(bank, customer, 2, "JPY")
        holding = new_accounts(bank, customer, 3)
        for account in backlog + busy[:4] + holding:
            bank.deposit(account, "1000.00", "EUR", "cash", CAUSE)
        bulk_transfers(bank, backlog, 1500)  # ~4,500 events: ~90 pages of 50

        with running_projections(bank, url) as service:
            catch_up(bank, timeout=30, services=[service])
            rebuilding = threading.Event()
            stop = threading.Event()
            # position, what was written (the operation), its id, during the rebuild
            outcomes: list[tuple[int, str, UUID, bool]] = []
            failures: list[BaseException] = []
            refused: Counter = Counter()
            swept: list[int] = []
            open_holds: list[UUID] = []  # placed without expiry, not yet ended
            reversible: list[UUID] = []
            lifetimes = itertools.cycle([None, None, 900])
            amounts = itertools.cycle(["0.75", None])  # None: all that is left

            def write(operation: str, n: int) -> Any:
                """The poster's operations, in a fixed cycle (so any two turns of it
                write every kind); amounts and accounts vary with ``n``."""
                if operation == "deposit":
                    account = busy[n % len(busy)]
                    jpy = account in busy[4:]
                    return bank.deposit(
                        account,
                        "5" if jpy else "1.25",
                        "JPY" if jpy else "EUR",
                        CHANNELS[n % len(CHANNELS)],
                        CAUSE,
                    )
                if operation == "transfer":
                    source, target = busy[n % 4], busy[(n + 1) % 4]
                    return bank.transfer(source, target, "0.50", "EUR", CAUSE)
                if operation == "hold":
                    lifetime = next(lifetimes)
                    outcome = bank.place_hold(
                        holding[n % len(holding)],
                        "2.00",
                        "EUR",
                        CAUSE,
                        reference=f"poster {n}",
                        expires_at=clock() + timedelta(seconds=lifetime)
                        if lifetime
                        else None,
                    )
                    if lifetime is None:
                        open_holds.append(UUID(outcome.body["hold_id"]))
                    return outcome
                if operation == "capture" and open_holds:
                    amount = next(amounts)
                    hold_id = open_holds[0]
                    outcome = bank.capture_hold(
                        hold_id,
                        CAUSE,
                        amount=amount,
                        to_account_id=busy[0] if n % 2 else None,
                    )
                    if amount is None:
                        open_holds.remove(hold_id)
                    return outcome
                if operation == "release" and open_holds:
                    return bank.release_hold(open_holds.pop(), CAUSE)
                if operation == "reverse" and reversible:
                    return bank.reverse_transaction(
                        reversible.pop(0), "entered in error", CAUSE
                    )
                if operation == "sweep":  # lapsed holds: due once the clock moves on
                    clock.advance(600)
                    swept.append(bank.expire_lapsed_holds())
                return None

            def post() -> None:
                try:
                    for n, operation in enumerate(itertools.cycle(POSTER_CYCLE)):
                        if stop.is_set():
                            return
                        try:
                            outcome = write(operation, n)
                        except REFUSALS as error:
                            refused[type(error).__name__] += 1
                            continue
                        if outcome is None:
                            continue
                        body = outcome.body
                        if "transaction_id" in body:
                            written = UUID(body["transaction_id"])
                            if operation != "reverse":
                                reversible.append(written)
                        else:
                            written = UUID(body["hold_id"])
                        outcomes.append(
                            (outcome.position, operation, written, rebuilding.is_set())
                        )
                except BaseException as error:  # noqa: BLE001 (reported below)
                    failures.append(error)

            progress: list[Progress] = []
            poster = threading.Thread(target=post, name="poster")
            poster.start()
            try:
                wait_for(
                    lambda: len(outcomes) >= 5 or failures, 10, "the first postings"
                )
                assert not failures, failures
                rebuilding.set()
                result = rebuild_projections(
                    settings,
                    NAMES,
                    page_size=50,
                    processes=processes,
                    on_progress=progress.append,
                ).run()
                assert result.processes == processes
                rebuilding.clear()
                time.sleep(0.2)  # and some more after the switch
            finally:
                stop.set()
                poster.join(30)
            assert not failures, failures
            during = [o for o in outcomes if o[3]]
            assert len(during) >= 2 * len(POSTER_CYCLE), (
                f"{len(during)} writes while the rebuild ran: make it longer"
            )
            assert len(progress) > 10, "the rebuild took too few pages"
            kinds = Counter(o[1] for o in during)
            assert set(kinds) == set(POSTER_CYCLE) - {"sweep"}, kinds
            print(
                f"{len(during)} writes during the rebuild, which ended at "
                f"{result.position}: {dict(kinds)}; refused {dict(refused)}; "
                f"{sum(swept)} holds expired by {len(swept)} sweeps"
            )

            catch_up(bank, timeout=30, services=[service])
            for _, operation, written_id, _ in outcomes:
                if operation in ("hold", "release"):
                    shown = bank.get_hold(written_id)
                    listed = bank.account_holds(UUID(shown["account_id"]))
                    assert shown in listed, shown
                else:
                    body = bank.get_transaction(written_id)
                    assert body == {
                        **transaction_view(bank.reconstruct(written_id)),  # type: ignore[arg-type]
                        "position": body["position"],
                    }
            for account in busy + backlog + holding:
                rebuilt = bank.reconstruct(account)
                assert bank.get_account(account)["version"] == rebuilt.version  # type: ignore[union-attr]
            facts = check_views(bank, api=False)
            missing = STORY_COVERAGE - covered(facts)
            assert not missing, f"no {sorted(missing)}"
            # the poster's holds came to every end a hold can have
            statuses = Counter(
                h["status"] for a in holding for h in bank.account_holds(a)
            )
            assert set(statuses) == {"active", "captured", "released", "expired"}, (
                statuses
            )


# --------------------------------------------------- 5. two runners, one view


def test_a_second_runner_waits_and_takes_over(stores: Stores) -> None:
    with stores.fresh() as url, opened_bank(url) as bank:
        applied = History(bank)
        with running_projections(bank, url) as first:
            wait_for(
                lambda: all(w.state == "running" for w in first.workers),
                10,
                "the first runners to take their locks",
            )
            with running_projections(bank, url) as second:
                wait_for(
                    lambda: all(
                        w.state == "waiting for the lock" for w in second.workers
                    ),
                    10,
                    "the second runners to wait",
                )
                applied.live = True
                applied.prelude()
                applied.apply_all(random_operations(random.Random(11), 60))
                catch_up(bank, services=[first, second])
                for name in NAMES:
                    states = sorted(s.states()[name]["state"] for s in (first, second))
                    assert states == ["running", "waiting for the lock"], (name, states)
                check_views(bank)

                first.stop()
                wait_for(
                    lambda: all(w.state == "running" for w in second.workers),
                    10,
                    "the second runners to take over",
                )
                applied.apply_all(random_operations(random.Random(12), 60))
                catch_up(bank, services=[second])
                check_views(bank)


# ------------------------------------------------------ 6. min_position


def test_reached_waits_only_for_a_projections_own_events(stores: Stores) -> None:
    with stores.fresh() as url, opened_bank(url, read_wait_ms=200) as bank:
        views = bank.views
        assert views is not None
        customer = new_customer(bank)
        first, second = new_accounts(bank, customer, 2)
        deposit = bank.deposit(first, "10.00", "EUR", "cash", CAUSE)
        deposited = UUID(deposit.body["transaction_id"])

        # No runner at all: reads that name a position answer 503 after read_wait_ms.
        for read in (
            lambda p: bank.get_account(first, min_position=p),
            lambda p: bank.get_transaction(deposited, min_position=p),
            lambda p: bank.statement(first, min_position=p),
            lambda p: bank.customer_accounts(customer, min_position=p),
            lambda p: bank.internal_balances(min_position=p),
        ):
            with pytest.raises(ServiceUnavailable):
                read(deposit.position)
        assert not views.reached(NAMES, deposit.position)

        with running_projections(bank, url, ["transactions"]) as service:
            assert views.wait(["transactions"], deposit.position, 10)
            frozen = bank.freeze_account(
                first, "review", CAUSE
            )  # an Account event only
            assert frozen.position > deposit.position
            tracked = tracked_positions(bank)["transactions"]
            assert tracked < frozen.position
            # transactions has nothing of its own up to the freeze: it has reached it
            assert views.reached(["transactions"], frozen.position)
            assert (
                bank.get_transaction(deposited, min_position=frozen.position)["status"]
                == "posted"
            )
            # accounts has (the freeze itself) and no runner
            assert not views.reached(["accounts"], frozen.position)
            assert not views.reached(["accounts", "transactions"], frozen.position)
            with pytest.raises(ServiceUnavailable):
                bank.get_account(first, min_position=frozen.position)

            # A position beyond the log's head is reached by nobody: an event of its
            # own may still come there.
            beyond = bank.last_position() + 1
            assert not views.reached(["transactions"], beyond)
            assert not views.wait(["transactions"], beyond, 0.3)
            with pytest.raises(ServiceUnavailable):
                bank.get_transaction(deposited, min_position=beyond)
            # Once it is in the log and is not a transaction, it is reached at once.
            bank.freeze_account(second, "review", CAUSE)
            assert bank.last_position() == beyond
            assert views.reached(["transactions"], beyond)
            assert tracked_positions(bank)["transactions"] == tracked
            # ... and a transaction there must be waited for
            later = bank.deposit(second, "1.00", "EUR", "wire", CAUSE)
            assert views.wait(["transactions"], later.position, 10)
            assert tracked_positions(bank)["transactions"] == later.position
            assert not service.failed()

        with running_projections(bank, url) as service:
            answer = bank.get_account(first, min_position=frozen.position)
            assert (answer["status"], answer["ledger_balance"]) == ("frozen", "10.00")
            catch_up(bank, services=[service])
            check_views(bank)


def test_an_own_event_behind_the_position_is_waited_for(stores: Stores) -> None:
    """reached(N) looks at every own event up to N, not only at the last one."""
    with stores.fresh() as url, opened_bank(url, read_wait_ms=200) as bank:
        views = bank.views
        assert views is not None
        customer = new_customer(bank)
        account, other = new_accounts(bank, customer, 2)
        with running_projections(bank, url, ["ledger"]):
            one = bank.deposit(account, "3.00", "EUR", "cash", CAUSE)
            assert views.wait(["ledger"], one.position, 10)
        two = bank.deposit(account, "4.00", "EUR", "cash", CAUSE)  # no runner now
        frozen = bank.freeze_account(other, "review", CAUSE)
        assert views.reached(["ledger"], one.position)
        assert not views.reached(["ledger"], two.position)
        assert not views.reached(
            ["ledger"], frozen.position
        )  # the deposit is behind it
        with pytest.raises(ServiceUnavailable):
            bank.internal_balances(min_position=frozen.position)
        with running_projections(bank, url, ["ledger"]):
            assert (
                bank.internal_balances(min_position=frozen.position)["EUR"]["cash"]
                == -7
            )
