"""Report speed over a seeded bank: each report's generation time, and how long the
compliance projection (facts and AML alerts) takes to catch up with the log.

Run it from the repository root, once ``make test`` or ``make run`` has created the venv:

    .venv/bin/python bench/reports.py                                  # both stores, ~1M transactions
    .venv/bin/python bench/reports.py --store sqlite --customers 2000  # a quick look
    .venv/bin/python bench/reports.py --store sqlite --sqlite-file var/bank_1m.sqlite --reuse

1. **Seed.** ``backoffice demo seed`` (application.demo.seed_demo) books ``--customers``
   customers' history over ``--days`` days through the import path, with no view
   running; 20,000 customers over 365 days is about 1,000,000 transactions.
2. **Catch-up.** The accounts and statements views catch up first (timed), then the
   compliance projection alone (timed: facts and every alert rule, from position 0).
3. **Reports.** Each report ``--runs`` times through the application (what the HTTP
   endpoints and the CLI call), on a day and month in the middle of the history: the
   median and the slowest run. Aim: any daily report under 1 s, the monthly DMO under 5 s.

Stores are temporary unless ``--sqlite-file``/``--pg-schema`` name them (kept then).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import structlog
from replay import DEFAULT_PG_URL, postgres_store, say, sqlite_store  # bench/replay.py

from application.compliance.calendar import day_last_instant, day_start
from application.demo import seed_demo
from infrastructure.bootstrap import bootstrap, start_projections
from infrastructure.settings import Settings


def wait_for(bank: Any, names: list[str], timeout: float = 7200.0) -> float:
    started = time.perf_counter()
    head = bank.compliance.store.head()
    while not bank.views.reached(names, head):
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{names} did not reach {head}")
        time.sleep(0.2)
    return time.perf_counter() - started


def timed(runs: int, call: Any) -> dict[str, Any]:
    samples = []
    body = None
    for _ in range(runs):
        started = time.perf_counter()
        body = call()
        samples.append(time.perf_counter() - started)
    return {
        "median_s": round(statistics.median(samples), 3),
        "max_s": round(max(samples), 3),
        "digest": body["digest"][:12] if body else None,
        "size": _size(body),
    }


def _size(body: Any) -> Any:
    for key in ("ctrs", "operations", "alerts", "exposures", "accounts", "days", "lines"):
        if isinstance(body, dict) and key in body:
            return {key: len(body[key])}
    return None


def bench(url: str, args: argparse.Namespace) -> dict[str, Any]:
    # As `backoffice demo seed` does: room for every customer and account in the cache.
    settings = Settings(
        database_url=url, read_wait_ms=600_000,
        aggregate_cache_size=max(Settings().aggregate_cache_size, 3 * args.customers + 10_000),
    )
    result: dict[str, Any] = {}
    with bootstrap(settings) as bank:
        if not args.reuse:
            say(f"seeding {args.customers:,} customers over {args.days} days")
            started = time.perf_counter()
            planted = seed_demo(bank, args.customers, args.days, args.seed)
            seconds = time.perf_counter() - started
            transactions = planted["transactions"]
            result["seed"] = {
                "transactions": transactions,
                "seconds": round(seconds, 1),
                "transactions_per_second": round(transactions / seconds),
            }
            say(f"seeded {transactions:,} transactions in {seconds:.0f} s")
        result["events"] = bank.compliance.store.head()
        runners = start_projections(bank, settings, ["accounts", "statements"])
        try:
            result["views_catch_up_s"] = round(wait_for(bank, ["accounts", "statements"]), 1)
        finally:
            runners.stop()
        say(f"accounts and statements caught up in {result['views_catch_up_s']} s")
        runners = start_projections(bank, settings, ["compliance"])
        try:
            seconds = wait_for(bank, ["compliance"])
        finally:
            runners.stop()
        result["compliance_catch_up"] = {
            "seconds": round(seconds, 1),
            "events_per_second": round(result["events"] / seconds) if seconds else None,
        }
        say(f"compliance (facts and alerts) caught up in {seconds:.1f} s")
        c = bank.compliance
        today = bank.clock().astimezone(bank.business_tz).date()
        day = today - timedelta(days=max(args.days // 2, 1))
        month = date(day.year, day.month, 1)
        week = day - timedelta(days=29)
        day_window = (day_start(day, bank.business_tz), day_last_instant(day, bank.business_tz))
        currencies = ("USD", "EUR")
        reports = {
            **{
                f"trial_balance_{cur}": (lambda cur=cur: c.trial_balance(day, cur))
                for cur in currencies
            },
            "ctr": lambda: c.ctr(day),
            "dmo_month": lambda: c.dmo(month),
            "alerts_day": lambda: c.alerts(*day_window),
            "alerts_all": lambda: c.alerts(),
            "exposures": lambda: c.exposures(day, 20),
            "overdrafts": lambda: c.overdrafts(day),
            "liquidity_30_days": lambda: c.liquidity(week, day),
        }
        result["reports"] = {}
        for name, call in reports.items():
            result["reports"][name] = timed(args.runs, call)
            say(f"  {name}: {result['reports'][name]}")
        result["day"], result["month"] = day.isoformat(), month.strftime("%Y-%m")
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", dest="stores", action="append", choices=("sqlite", "postgres"))
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--pg-schema", metavar="NAME", help="keep the bank in this schema")
    parser.add_argument("--sqlite-file", metavar="PATH", help="keep the bank in this file")
    parser.add_argument("--reuse", action="store_true", help="the store is seeded already")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    parser.add_argument("--json", action="store_true", help="one JSON line per store")
    args = parser.parse_args(argv)
    args.stores = args.stores or ["sqlite", "postgres"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    stores = {"sqlite": sqlite_store, "postgres": postgres_store}
    for kind in args.stores:
        with stores[kind](args) as url:
            result = {"store": kind, **bench(url, args)}
        if args.json:
            print(json.dumps(result), flush=True)
            continue
        seed = result.get("seed")
        if seed:
            print(f"{kind:<8} seed: {seed['transactions']:,} transactions in {seed['seconds']} s "
                  f"({seed['transactions_per_second']:,}/s)", flush=True)
        catch = result["compliance_catch_up"]
        print(f"{kind:<8} log {result['events']:,} events; accounts+statements caught up in "
              f"{result['views_catch_up_s']} s; compliance in {catch['seconds']} s "
              f"({catch['events_per_second']:,} events/s)", flush=True)
        for name, figures in result["reports"].items():
            print(f"{kind:<8} {name:<22} median {figures['median_s']:.3f} s  max {figures['max_s']:.3f} s  "
                  f"{figures['size']}", flush=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
