"""Everything `demo seed` plants is found by the reports and alert rules, and nothing
else: the background is built to stay quiet (both stores)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from projection_helpers import catch_up, opened_bank, running_projections

from application.bank import Bank
from application.demo import seed_demo

CUSTOMERS, DAYS, SEED = 300, 120, 11


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Iterator[tuple[Bank, dict[str, Any]]]:
    """One seeded bank for the module (seeding is the slow part)."""
    configured = os.environ.get("BACKOFFICE_DATABASE_URL", "")
    schema = None
    if configured.startswith(("postgresql://", "postgres://")):
        base = configured.split("?", 1)[0]
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{base}?schema={schema}"
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('demo')}/demo.sqlite"
    try:
        with opened_bank(url, read_wait_ms=60_000) as bank:
            planted = seed_demo(bank, CUSTOMERS, DAYS, SEED)
            with running_projections(bank, url) as service:
                catch_up(bank, timeout=300, services=[service])
            yield bank, planted
    finally:
        if schema is not None:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def cases(planted: dict[str, Any], report: str) -> list[dict[str, Any]]:
    return [case for case in planted["planted"] if case["report"] == report]


def test_the_seed_posted_everything_it_planned(seeded):
    _, planted = seeded
    assert planted["rejected"] == 0 and planted["errors"] == []
    assert {c["pattern"] for c in planted["planted"]} >= {
        "structuring", "round_amounts", "pass_through", "dormant_reactivation",
        "large_outgoing", "dmo_operation", "dmo_split", "ctr_cash_in", "ctr_cash_out",
        "ctr_conductor",
    }


def test_every_planted_alert_is_raised_and_no_other(seeded):
    bank, planted = seeded
    found = {
        (a["rule"], a["customer_id"], a["trigger_transaction_id"])
        for a in bank.compliance.alerts()["alerts"]
    }
    expected = {
        (case["rule"], case["customer_ids"][0], case["trigger_transaction_id"])
        for case in cases(planted, "alerts")
    }
    assert found == expected


def test_the_ctrs_are_exactly_the_planted_ones(seeded):
    bank, planted = seeded
    first, last = date.fromisoformat(planted["first_day"]), date.fromisoformat(planted["last_day"])
    found = set()
    day = first
    while day <= last:
        for ctr in bank.compliance.ctr(day)["ctrs"]:
            found.add((day.isoformat(), ctr["customer_id"]))
        day += timedelta(days=1)
    expected = set()
    for case in cases(planted, "ctr"):
        # The person the CTR is for: the account's customer (the first named).
        expected.add((case["period"], case["customer_ids"][0]))
    assert found == expected


def test_the_dmo_lists_exactly_the_planted_operations_and_splits(seeded):
    bank, planted = seeded
    months = {case["period"] for case in cases(planted, "dmo")}
    first = date.fromisoformat(planted["first_day"]).replace(day=1)
    last = date.fromisoformat(planted["last_day"])
    found_operations, found_splits = set(), set()
    month = first
    while month <= last:
        report = bank.compliance.dmo(month)
        if month.strftime("%Y-%m") not in months:
            assert report["declaration"] == "negative", report
        found_operations |= {o["transaction_id"] for o in report["operations"]}
        found_splits |= {tuple(s["transaction_ids"]) for s in report["splits"]}
        month = (month + timedelta(days=32)).replace(day=1)
    # A planted operation's own transaction (the case lists its funding too).
    expected_operations = {
        case["trigger_transaction_id"] for case in cases(planted, "dmo")
        if case["rule"] == "dmo_operation"
    }
    expected_splits = {
        tuple(case["transaction_ids"]) for case in cases(planted, "dmo") if case["rule"] == "dmo_split"
    }
    assert found_operations == expected_operations
    assert found_splits == expected_splits


def test_the_trial_balance_balances_every_day(seeded):
    bank, planted = seeded
    last = date.fromisoformat(planted["last_day"])
    for currency in ("USD", "EUR"):
        report = bank.compliance.trial_balance(last, currency)
        assert report["exceptions"] == []
        totals = report["totals"]
        assert totals["closing_debit"] == totals["closing_credit"]
        assert totals["closing_debit"] != "0.00"
