"""Audit speed: verification of the hash chain over a large log, and balances as of a
past moment for an account with a long history.

Run it from the repository root, once ``make test`` or ``make run`` has created the venv:

    .venv/bin/python bench/audit.py                          # both stores, 1,000,000 events
    .venv/bin/python bench/audit.py --store sqlite --events 100000
    .venv/bin/python bench/audit.py --pg-schema replay_1m --sqlite-file var/replay_1m.sqlite --reuse

1. **Verify.** A log of ``--events`` events (built as ``bench/replay.py`` builds it, or
   one kept by it, with ``--reuse``). The chain's live runner (the one ``backoffice
   serve`` runs) chains it from zero: its rate is reported. Then ``Audit.verify`` (what
   ``POST /v1/audit/verify`` and ``backoffice audit verify`` run) recomputes the whole
   chain and compares it with the chain's table: events/s. Aim: 100,000 events/s.
2. **As of.** A fresh store with one account that takes ``--account-events`` deposits
   (batches of 1,000), with every view caught up. Then ``--queries`` reads of
   ``GET /v1/accounts/{id}/balance?as_of=T`` through the ASGI app, T drawn uniformly
   over the account's history: p50, p99 and max latency. Aim: under 50 ms. The same
   for ``Bank.balance`` directly (no HTTP), and one ``GET /v1/audit/balances``.

Stores are temporary unless ``--sqlite-file``/``--pg-schema`` name them (kept then).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import structlog
from replay import (  # bench/replay.py
    DEFAULT_PG_URL,
    build_log,
    postgres_store,
    say,
    sqlite_store,
)

from domain.cause import Cause
from infrastructure.bootstrap import bootstrap, start_projections
from infrastructure.settings import Settings

CAUSE = Cause.cli()


def wait_for(bank: Any, names: list[str], timeout: float = 3600.0) -> float:
    started = time.perf_counter()
    while True:
        status = {s.name: s for s in bank.projection_status()}
        if all(status[n].position >= status[n].head or status[n].lag_events == 0 for n in names):
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{names} did not catch up: {status}")
        time.sleep(0.2)


def bench_verify(url: str, events: int) -> dict[str, Any]:
    settings = Settings(database_url=url)
    with bootstrap(settings) as bank:
        assert bank.audit is not None
        head = bank.last_position()
        say(f"chaining {head:,} positions with the live runner")
        service = start_projections(bank, settings, ["chain"])
        try:
            chain_seconds = wait_for(bank, ["chain"])
        finally:
            service.stop()
        say(f"chained in {chain_seconds:.1f} s; verifying")
        runs = []
        for _ in range(2):
            started = time.perf_counter()
            result = bank.audit.verify()
            runs.append(time.perf_counter() - started)
            if not result.ok:
                raise RuntimeError(f"verify failed on an honest log: {result.as_dict()}")
        seconds = min(runs)
        return {
            "events": result.events_checked,
            "chain_seconds": round(chain_seconds, 2),
            "chain_events_per_second": round(result.events_checked / chain_seconds),
            "verify_seconds": [round(s, 2) for s in runs],
            "verify_events_per_second": round(result.events_checked / seconds),
            "root": result.root,
        }


def bench_as_of(url: str, account_events: int, queries: int, seed: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from interfaces.http.app import create_app

    settings = Settings(database_url=url, run_projections=True, hold_sweep_seconds=0)
    rnd = random.Random(seed)
    with bootstrap(settings) as bank:
        customer = UUID(bank.register_customer(
            {"name": "Bench", "kind": "person", "country": "GB"}, CAUSE).body["customer_id"])
        account = UUID(bank.open_account(customer, "EUR", CAUSE).body["account_id"])
        first = bank.clock()
        say(f"posting {account_events:,} deposits to one account")
        started = time.perf_counter()
        for done in range(0, account_events, 1000):
            items = [
                {"type": "deposit", "account_id": account, "amount": f"{rnd.randint(1, 99999) / 100:.2f}",
                 "currency": "EUR", "channel": "cash"}
                for _ in range(min(1000, account_events - done))
            ]
            bank.post_batch(True, items, CAUSE)
        post_seconds = time.perf_counter() - started
        last = bank.clock()
        service = start_projections(bank, settings, ["accounts", "statements"])
        try:
            catch_up = wait_for(bank, ["accounts", "statements"])
        finally:
            service.stop()
        say(f"posted in {post_seconds:.1f} s, views caught up in {catch_up:.1f} s")
        span = (last - first).total_seconds()
        moments = [first + timedelta(seconds=rnd.uniform(0, span)) for _ in range(queries)]

        direct = []
        for moment in moments:
            started = time.perf_counter()
            bank.balance(account, as_of=moment)
            direct.append((time.perf_counter() - started) * 1000)

        key = bank.create_api_key("bench", "auditor", CAUSE)[1]
        app = create_app(Settings(database_url=url, run_projections=False, hold_sweep_seconds=0,
                                  log_level="warning"), bank=bank)
        http = []
        with TestClient(app) as client:
            headers = {"Authorization": f"Bearer {key}"}
            for moment in moments:
                started = time.perf_counter()
                response = client.get(
                    f"/v1/accounts/{account}/balance", params={"as_of": moment.isoformat()}, headers=headers
                )
                http.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            started = time.perf_counter()
            client.get("/v1/audit/balances", params={"as_of": last.isoformat()}, headers=headers).raise_for_status()
            all_accounts = (time.perf_counter() - started) * 1000
        return {
            "account_events": bank.repository.get(account).version,
            "http_ms": _summary(http),
            "direct_ms": _summary(direct),
            "audit_balances_ms": round(all_accounts, 2),
        }


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max": round(ordered[-1], 2),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the verified log")
    parser.add_argument("--account-events", type=int, default=100_000,
                        help="deposits to the one account read as of past moments")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--skip", choices=("verify", "as-of"), help="leave out one part")
    parser.add_argument("--sqlite-file", metavar="PATH", help="the verified log's SQLite file (kept)")
    parser.add_argument("--pg-schema", metavar="NAME", help="the verified log's schema (kept)")
    parser.add_argument("--reuse", action="store_true", help="verify the log already there")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG_URL))
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    args = parser.parse_args(argv)
    args.stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    args.sample, args.analyze = 20, True  # what bench/replay.py's log builder reads
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    stores = {"sqlite": sqlite_store, "postgres": postgres_store}
    for kind in args.stores:
        result: dict[str, Any] = {"store": kind}
        if args.skip != "verify":
            with stores[kind](args) as url:
                if not args.reuse:
                    say(f"{kind}: building {args.events:,} events")
                    build_log([url], args)
                result["verify"] = bench_verify(url, args.events)
        if args.skip != "as-of":
            fresh = argparse.Namespace(**{**vars(args), "sqlite_file": None, "pg_schema": None, "keep": False})
            with stores[kind](fresh) as url:
                result["as_of"] = bench_as_of(url, args.account_events, args.queries, args.seed)
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            verify = result.get("verify")
            as_of = result.get("as_of")
            if verify:
                print(f"{kind:<8} verify: {verify['events']:,} events, {verify['verify_events_per_second']:,} events/s "
                      f"(runs {verify['verify_seconds']} s); chain built at {verify['chain_events_per_second']:,} events/s",
                      flush=True)
            if as_of:
                print(f"{kind:<8} as_of: account of {as_of['account_events']:,} events, HTTP {as_of['http_ms']} ms, "
                      f"direct {as_of['direct_ms']} ms; all accounts {as_of['audit_balances_ms']} ms", flush=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
