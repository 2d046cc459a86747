"""The projections' views against the event log, on this run's store.

SQLite by default; PostgreSQL with BACKOFFICE_DATABASE_URL=postgresql://... (each test,
and each hypothesis example, in a schema of its own). Every check compares the rows of
the views with what the log says, worked out independently of the projections (see
``projection_helpers.check_views``): each account's row against the account replayed
from its events, each statement entry and running balance against the posted
transactions sorted by (booked_at, position, seq), the ledger balances against the
internal entries, each transaction's body against the replayed record's contract view.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, Phase, given, note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from projection_helpers import (
    CAUSE,
    CHANNELS,
    CURRENCIES,
    NAMES,
    History,
    Stores,
    bulk_transfers,
    catch_up,
    check_views,
    dump_views,
    opened_bank,
    random_operations,
    run_projections_process,
    running_projections,
    tracked_positions,
    wait_for,
)

from application.bank import Bank
from application.errors import ServiceUnavailable
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
operations = st.one_of(
    st.tuples(st.just("customer"), st.sampled_from(["ES", "JP", "BH"])),
    st.tuples(
        st.just("open"),
        index,
        st.sampled_from(CURRENCIES),
        st.sampled_from([0, 0, 500, 20_000]),
        st.sampled_from(["current", "savings"]),
        st.sampled_from([0, 0, 0, 2]),
    ),
    *[
        st.tuples(
            st.just("deposit"), index, st.integers(1, 60_000), st.sampled_from(CHANNELS)
        )
    ]
    * 3,
    *[
        st.tuples(
            st.just("withdraw"),
            index,
            st.integers(1, 60_000),
            st.sampled_from(CHANNELS),
        )
    ]
    * 2,
    *[
        st.tuples(
            st.just("transfer"), index, index, st.integers(1, 60_000), st.booleans()
        )
    ]
    * 3,
    st.tuples(st.just("freeze"), index),
    st.tuples(st.just("unfreeze"), index),
    st.tuples(st.just("limit"), index, st.sampled_from([0, 1, 1000, 50_000])),
    st.tuples(st.just("close"), index),
    st.tuples(st.just("empty_and_close"), index),
    # booked up to two hours in the past (0: "now", which still sorts by position)
    *[
        st.tuples(
            st.just("import"),
            index,
            st.integers(1, 60_000),
            st.booleans(),
            st.sampled_from([0, 1, 60, 3600, 7200]),
        )
    ]
    * 2,
)

PROPERTY_SETTINGS = hypothesis_settings(
    # a fresh store per example: modest, and fewer if the loaded profile asks for fewer
    max_examples=min(25, hypothesis_settings().max_examples),
    deadline=None,
    # shrinking on a real store takes minutes; the failing history is printed instead
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY_SETTINGS
@given(history=st.lists(operations, min_size=1, max_size=40), start=st.integers(0, 40))
def test_every_view_row_is_what_the_aggregates_say(
    stores: Stores, history: list[tuple], start: int
) -> None:
    """A random history (three currencies: 2, 0 and 3 decimals; refusals included);
    runners start after ``start`` operations, so some events are a backlog and some
    arrive live. Then every row of every view must match the aggregates."""
    with stores.fresh() as url, opened_bank(url) as bank:
        applied = History(bank)
        applied.prelude()
        applied.apply_all(history[:start])
        with running_projections(bank, url) as service:
            applied.apply_all(history[start:])
            note(
                f"refused: {dict(applied.refused)}; last position {applied.last_position}"
            )
            catch_up(bank, applied.last_position, services=[service])
            assert applied.last_position == bank.last_position()
            check_views(bank)


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
    switch's transaction); each time every row equals the live row before it."""
    in_processes(monkeypatch, processes)
    with stores.fresh() as url, opened_bank(url) as bank:
        settings = Settings(database_url=url)
        store = bank.views.store  # type: ignore[union-attr]
        applied = History(bank)
        with running_projections(bank, url) as service:
            applied.prelude()
            applied.apply_all(random_operations(random.Random(2), 150))
            for number, page_size in enumerate((7, 40, 5000)):
                catch_up(bank, services=[service])
                check_views(bank)
                live = dump_views(bank)
                before = store.generations()
                head = bank.last_position()

                result = rebuild_projections(
                    settings, NAMES, page_size=page_size, processes=processes
                ).run()

                assert result.processes == processes
                assert result.generations == {n: before[n] + 1 for n in NAMES}
                assert store.generations() == result.generations
                assert result.position == head
                status = {s.name: s.generation for s in bank.projection_status()}
                assert status == result.generations
                catch_up(bank, services=[service])
                assert dump_views(bank) == live, (
                    f"rebuild {number} differs from the live views"
                )

                # the live runners carry on in the new generation ...
                applied.apply_all(random_operations(random.Random(3 + number), 30))
                catch_up(bank, services=[service])
                assert store.generations() == result.generations
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
    """A backlog of ~9,000 events (3,000 transfers appended 500 per save, plus history),
    worked by ``backoffice projections run`` in a process of its own that is killed
    (SIGKILL) as soon as a projection is part-way, twice, then finished here.

    After each kill every view must be exactly the log's prefix up to its tracking
    record (rows and tracking commit together), and at the end exactly the log.
    """
    log = tmp_path / "runner.log"
    with stores.fresh() as url, opened_bank(url) as bank:
        customer = new_customer(bank)
        accounts = new_accounts(bank, customer, 12)
        for account in accounts:
            bank.deposit(account, "1000.00", "EUR", "cash", CAUSE)
        bank.freeze_account(accounts[0], "review", CAUSE)  # still takes credits
        bank.set_overdraft_limit(accounts[1], "50.00", CAUSE)
        bulk_transfers(bank, accounts[1:], 3000)
        applied = History(
            bank, customers=[customer], accounts=[(a, "EUR") for a in accounts]
        )
        applied.apply_all(random_operations(random.Random(5), 30))
        head = bank.last_position()

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


@pytest.mark.parametrize("processes", [1, 2])
def test_events_recorded_while_a_rebuild_runs_are_not_lost(
    stores: Stores, monkeypatch: pytest.MonkeyPatch, processes: int
) -> None:
    in_processes(monkeypatch, processes)
    with stores.fresh() as url, opened_bank(url) as bank:
        settings = Settings(database_url=url)
        customer = new_customer(bank)
        backlog = new_accounts(bank, customer, 6)
        busy = new_accounts(bank, customer, 4) + new_accounts(bank, customer, 2, "JPY")
        for account in backlog + busy[:4]:
            bank.deposit(account, "1000.00", "EUR", "cash", CAUSE)
        bulk_transfers(bank, backlog, 1500)  # ~4,500 events: ~90 pages of 50

        with running_projections(bank, url) as service:
            catch_up(bank, timeout=30, services=[service])
            rebuilding = threading.Event()
            stop = threading.Event()
            outcomes: list[tuple[int, UUID, bool]] = []  # position, transaction, during
            failures: list[BaseException] = []

            def post() -> None:
                rnd = random.Random(7)
                try:
                    while not stop.is_set():
                        account = rnd.choice(busy)
                        currency = "JPY" if account in busy[4:] else "EUR"
                        if rnd.random() < 0.5 or currency == "JPY":
                            outcome = bank.deposit(
                                account,
                                "5" if currency == "JPY" else "1.25",
                                currency,
                                rnd.choice(CHANNELS),
                                CAUSE,
                            )
                        else:
                            target = rnd.choice([a for a in busy[:4] if a != account])
                            outcome = bank.transfer(
                                account, target, "0.50", "EUR", CAUSE
                            )
                        outcomes.append(
                            (
                                outcome.position,
                                UUID(outcome.body["transaction_id"]),
                                rebuilding.is_set(),
                            )
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
            during = [o for o in outcomes if o[2]]
            assert during, "nothing was posted while the rebuild ran: make it longer"
            assert len(progress) > 10, "the rebuild took too few pages"
            print(
                f"{len(during)} postings during the rebuild, which ended at {result.position}"
            )

            last = max(position for position, _, _ in outcomes)
            catch_up(bank, last, timeout=30, services=[service])
            for _, transaction_id, _ in outcomes:
                assert bank.get_transaction(transaction_id)["transaction_id"] == str(
                    transaction_id
                )
            for account in busy + backlog:
                rebuilt = bank.reconstruct(account)
                assert bank.get_account(account)["version"] == rebuilt.version  # type: ignore[union-attr]
            check_views(bank, api=False)


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
