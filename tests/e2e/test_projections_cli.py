"""``backoffice projections status|rebuild|run``, the real CLI in a subprocess, over the
store of the test (history written through the ``bank`` fixture, as the CLI would)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest

from application.bank import Bank
from domain.cause import Cause

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("accounts", "statements", "ledger", "transactions", "compliance")  # the rebuildable views
FOLLOWERS = (*NAMES, "chain")  # and the audit chain, which status shows too
SUMMARY_FIELDS = {"generations", "position", "events", "seconds", "events_per_second"}
PATIENCE_S = 60.0  # a bound on catching up and on stopping, not a speed test


def cli_env(database_url: str) -> dict[str, str]:
    return {**os.environ, "BACKOFFICE_DATABASE_URL": database_url,
            "BACKOFFICE_LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"}


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", *args], cwd=ROOT, env=cli_env(database_url),
        capture_output=True, text=True, timeout=180, check=False,
    )


def status_json(database_url: str) -> dict[str, dict]:
    done = cli(database_url, "projections", "status", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["projections"]
    return {row["projection"]: row for row in rows}


def rebuild_json(database_url: str, *names: str) -> dict:
    done = cli(database_url, "projections", "rebuild", *names, "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)  # standard output is the JSON alone


class History:
    """Customers, accounts and postings written with the CLI's cause."""

    def __init__(self, bank: Bank) -> None:
        self.bank = bank
        self.cause = Cause.cli()
        customer = bank.register_customer(
            {"name": "Grace Hopper", "kind": "person", "country": "US"}, self.cause
        ).response()
        self.customer_id = UUID(customer["customer_id"])
        self.a = self.open("EUR")
        self.b = self.open("EUR")
        self.transactions: list[dict] = []
        self.post(bank.deposit(self.a, "100.00", "EUR", "cash", self.cause, reference="r1"))
        self.post(bank.withdraw(self.a, "12.50", "EUR", "wire", self.cause))
        self.post(bank.transfer(self.a, self.b, "30.00", "EUR", self.cause))

    def open(self, currency: str) -> UUID:
        opened = self.bank.open_account(self.customer_id, currency, self.cause).response()
        return UUID(opened["account_id"])

    def post(self, outcome) -> dict:
        txn = outcome.response()
        self.transactions.append(txn)
        return txn

    def more(self, n: int = 3) -> None:
        for _ in range(n):
            self.post(self.bank.deposit(self.b, "1.00", "EUR", "cash", self.cause))


@pytest.fixture
def history(bank: Bank) -> History:
    return History(bank)


def assert_views_hold_the_history(bank: Bank, history: History) -> None:
    """Read through the views, as the API does, at the log's head."""
    head = bank.last_position()
    assert bank.get_account(history.a, min_position=head)["ledger_balance"] == "57.50"
    assert bank.get_account(history.b, min_position=head)["ledger_balance"] == str(
        30 + len(history.transactions) - 3) + ".00"
    statement = bank.statement(history.a, min_position=head)
    assert [e["balance_after"] for e in statement["entries"]] == ["100.00", "87.50", "57.50"]
    listed = bank.customer_accounts(history.customer_id, min_position=head)
    assert [a["account_id"] for a in listed] == [str(history.a), str(history.b)]
    for txn in history.transactions:
        read = bank.get_transaction(UUID(txn["transaction_id"]), min_position=head)
        assert {k: v for k, v in read.items() if k != "position"} == {
            k: v for k, v in txn.items() if k != "position"}


def wait_until_caught_up(bank: Bank, names=NAMES, process: subprocess.Popen | None = None
                         ) -> dict[str, object]:
    head = bank.last_position()
    deadline = time.monotonic() + PATIENCE_S
    while True:
        found = {s.name: s for s in bank.projection_status()}
        if all(found[n].lag_events == 0 for n in names):
            return found
        if process is not None and process.poll() is not None:
            pytest.fail(f"the runner exited with {process.returncode}: "
                        f"{process.stderr.read() if process.stderr else ''}")
        assert time.monotonic() < deadline, f"not caught up with {head}: {found}"
        time.sleep(0.05)


def stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=PATIENCE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"`projections run` did not stop on SIGTERM: {err}")
    return process.returncode, err


def start_runner(database_url: str, *names: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "interfaces.cli", "projections", "run", *names], cwd=ROOT,
        env=cli_env(database_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


# ------------------------------------------------------------------------ rebuild


def test_rebuild_all_prints_a_summary_and_moves_to_new_generations(bank, history,
                                                                  database_url):
    before = status_json(database_url)
    assert set(before) == set(FOLLOWERS)
    head = bank.last_position()
    assert all(before[n]["head"] == head and before[n]["lag_events"] > 0 for n in FOLLOWERS)

    summary = rebuild_json(database_url, "--all")
    assert set(summary) >= SUMMARY_FIELDS  # more is welcome (e.g. "processes")
    assert summary["generations"] == {n: before[n]["generation"] + 1 for n in NAMES}
    assert summary["position"] == head
    assert isinstance(summary["events"], int) and 0 < summary["events"] <= head
    assert isinstance(summary["seconds"], (int, float)) and summary["seconds"] >= 0
    assert isinstance(summary["events_per_second"], (int, float))
    assert summary["events_per_second"] >= 0

    after = status_json(database_url)
    for name in NAMES:
        assert after[name]["generation"] == summary["generations"][name]
        assert after[name]["position"] == after[name]["head"] == head, after[name]
        assert after[name]["lag_events"] == 0
    assert_views_hold_the_history(bank, history)

    # Again: the next generation, the same answers.
    again = rebuild_json(database_url, "--all")
    assert again["generations"] == {n: before[n]["generation"] + 2 for n in NAMES}
    assert again["position"] == head
    assert_views_hold_the_history(bank, history)


def test_rebuild_takes_in_what_was_written_since_the_last_one(bank, history, database_url):
    first = rebuild_json(database_url, "--all")
    history.more(4)
    assert {s.name: s.lag_events for s in bank.projection_status()}["statements"] == 4
    second = rebuild_json(database_url, "--all")
    assert second["position"] == bank.last_position() > first["position"]
    assert second["generations"] == {n: first["generations"][n] + 1 for n in NAMES}
    assert all(row["lag_events"] == 0 for name, row in status_json(database_url).items() if name in NAMES)
    assert_views_hold_the_history(bank, history)


def test_rebuild_named_projections_only(bank, history, database_url):
    before = status_json(database_url)
    summary = rebuild_json(database_url, "statements", "transactions")
    assert summary["generations"] == {
        "statements": before["statements"]["generation"] + 1,
        "transactions": before["transactions"]["generation"] + 1,
    }
    after = status_json(database_url)
    for name in ("accounts", "ledger"):
        assert after[name]["generation"] == before[name]["generation"]
        assert after[name]["position"] == before[name]["position"]
        assert after[name]["lag_events"] == before[name]["lag_events"] > 0
    for name in ("statements", "transactions"):
        assert (after[name]["position"], after[name]["lag_events"]) == (
            bank.last_position(), 0)


def test_rebuild_without_json_reports_on_standard_error(bank, history, database_url):
    done = cli(database_url, "projections", "rebuild", "--all")
    assert done.returncode == 0, done.stderr
    assert "rebuilt" in done.stderr and str(bank.last_position()) in done.stderr
    assert all(row["lag_events"] == 0 for name, row in status_json(database_url).items() if name in NAMES)


def test_rebuild_an_unknown_projection_exits_2_and_rebuilds_nothing(bank, history,
                                                                   database_url):
    before = status_json(database_url)
    for args in (["nosuch"], ["accounts", "nosuch"], ["nosuch", "--json"]):
        done = cli(database_url, "projections", "rebuild", *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "nosuch" in done.stderr
        assert done.stdout.strip() == ""
        assert "Traceback" not in done.stderr
    assert status_json(database_url) == before


def test_rebuild_needs_names_or_all(bank, history, database_url):
    before = status_json(database_url)
    for args in ([], ["--json"]):
        done = cli(database_url, "projections", "rebuild", *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stdout.strip() == ""
    assert status_json(database_url) == before


# ------------------------------------------------------------------------- status


def test_status_as_a_table(bank, history, database_url):
    done = cli(database_url, "projections", "status")
    assert done.returncode == 0, done.stderr
    for name in NAMES:
        assert name in done.stdout
    assert str(bank.last_position()) in done.stdout


def test_status_reports_the_lag_of_each_projection(bank, history, database_url):
    found = status_json(database_url)
    head = bank.last_position()
    for name in NAMES:
        row = found[name]
        assert set(row) == {"projection", "generation", "position", "head", "lag_events"}
        assert (row["position"], row["head"]) == (0, head)
    # Three postings; the accounts view also has two openings to take in.
    assert found["statements"]["lag_events"] == 3
    assert found["transactions"]["lag_events"] == 3
    assert found["accounts"]["lag_events"] >= 5


# ---------------------------------------------------------------------------- run


def test_run_catches_up_follows_the_log_and_stops_on_sigterm(bank, history, database_url):
    runner = start_runner(database_url)
    try:
        wait_until_caught_up(bank, process=runner)
        assert_views_hold_the_history(bank, history)
        # Live: what is written now is taken in too (reads wait for it across processes).
        for _ in range(5):
            history.more(1)
            head = bank.last_position()
            statement = bank.statement(history.b, min_position=head)
            assert statement["entries"][-1]["transaction_id"] == (
                history.transactions[-1]["transaction_id"])
        wait_until_caught_up(bank, process=runner)
        assert_views_hold_the_history(bank, history)
    finally:
        code, err = stop(runner)
    assert code == 0, err
    assert "Traceback" not in err


def test_run_named_projections_only(bank, history, database_url):
    runner = start_runner(database_url, "accounts", "transactions")
    try:
        found = wait_until_caught_up(bank, ("accounts", "transactions"), process=runner)
        assert found["statements"].lag_events == 3
        assert found["ledger"].lag_events > 0
        assert found["statements"].position == 0
    finally:
        code, err = stop(runner)
    assert code == 0, err


def test_a_rebuild_beside_a_running_runner(bank, history, database_url):
    runner = start_runner(database_url)
    try:
        wait_until_caught_up(bank, process=runner)
        before = {s.name: s.generation for s in bank.projection_status()}
        summary = rebuild_json(database_url, "--all")
        assert summary["generations"] == {n: before[n] + 1 for n in NAMES}
        history.more(3)
        found = wait_until_caught_up(bank, process=runner)
        assert {n: found[n].generation for n in NAMES} == summary["generations"]
        assert_views_hold_the_history(bank, history)
    finally:
        code, err = stop(runner)
    assert code == 0, err


def test_run_an_unknown_projection_exits_2(database_url):
    done = cli(database_url, "projections", "run", "nosuch")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "nosuch" in done.stderr
