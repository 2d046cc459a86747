"""``backoffice demo seed``: a synthetic history with planted AML/report patterns.

The history is imported through the Bank's use cases (application/demo.py), so the
server's projections pick it up like any other import. It is meant for a fresh store.
"""

from __future__ import annotations

import json
import time
from typing import Any

import typer
from rich.console import Console

from application.demo import MIN_DAYS, DemoPlan, seed_demo
from infrastructure.bootstrap import bootstrap
from infrastructure.settings import Settings
from interfaces.logging import configure_logging
from interfaces.progress import progress_bar

demo = typer.Typer(
    help="Demonstration data: a realistic history with planted AML and report patterns.",
    no_args_is_help=True,
)
err = Console(stderr=True)


@demo.command("seed")
def seed(
    customers: int = typer.Option(
        1000, "--customers", min=1,
        help="Background customers (the planted ones, about 13 per 500, come on top)",
    ),
    days: int = typer.Option(
        120, "--days", min=MIN_DAYS, help="Business days of history, ending yesterday",
    ),
    seed_value: int = typer.Option(
        1, "--seed", help="The same seed, customers, days and start date give the same history",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Import a synthetic history of CUSTOMERS over DAYS past business days, with
    structuring, round amounts, pass-through, dormant reactivation, large outgoing,
    DMO (designated territories) and CTR cases planted; print what was planted.
    Exit status 1 when an item was refused (never expected on a fresh store)."""
    settings = Settings()
    configure_logging(settings.log_format, "warning")
    # Room in the aggregate cache for every account (and the customers): a batch then
    # loads nothing from the store.
    cache_size = max(settings.aggregate_cache_size, 3 * customers + 10_000)
    with bootstrap(settings, aggregate_cache_size=cache_size) as bank:
        existing = bank.last_position()
        if existing:
            err.print(f"[yellow]the store already holds {existing:,} events: the demo adds to "
                      "them, and reports will count both[/yellow]")
        bar = progress_bar("demo seed", "{task.description} {task.fields[rate]}", err)
        tasks: dict[str, Any] = {}
        started: dict[str, float] = {}

        def planned(plan: DemoPlan) -> None:
            bar.update(tasks["planning"], total=1, completed=1)
            for phase, total in (("customers", len(plan.customers)),
                                 ("accounts", len(plan.accounts)),
                                 ("transactions", len(plan.transactions))):
                tasks[phase] = bar.add_task(phase, total=total, rate="")

        def progressed(phase: str, done: int, total: int) -> None:
            now = time.monotonic()
            began = started.setdefault(phase, now)
            rate = f"{done / (now - began):,.0f}/s" if now > began else ""
            bar.update(tasks[phase], completed=done, rate=rate)

        try:
            with bar:
                tasks["planning"] = bar.add_task("planning", total=None, rate="")
                report = seed_demo(bank, customers, days, seed_value,
                                   on_progress=progressed, on_planned=planned)
        except ValueError as error:
            err.print(f"[red]refused:[/red] {error}")
            raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    if report["rejected"]:
        err.print(f"[red]{report['rejected']} items were refused[/red] (see errors)")
        raise typer.Exit(1)


def _print(report: dict[str, Any]) -> None:
    out = Console(highlight=False, soft_wrap=True)
    for case in report["planted"]:
        out.print(f"[bold]{case['pattern']}[/bold]  {case['report']}: {case['rule']}  "
                  f"{case['period']}")
        out.print(f"  customers: {', '.join(case['customer_ids'])}")
        out.print(f"  accounts:  {', '.join(case['account_ids'])}")
        for txn_id, at, amount in zip(case["transaction_ids"], case["booked_at"],
                                      case["amounts"], strict=True):
            mark = "  <- trigger" if txn_id == case["trigger_transaction_id"] else ""
            out.print(f"    {txn_id}  {at}  {amount:>10}{mark}")
        if case["details"]:
            out.print("  " + ", ".join(f"{k}: {v}" for k, v in case["details"].items()))
    out.print(
        f"{report['customers']:,} customers ({report['planted_customers']:,} planted), "
        f"{report['accounts']:,} accounts, {report['transactions']:,} transactions in "
        f"{report['batches']:,} batches over {report['days']} days "
        f"({report['first_day']} to {report['last_day']}, {report['business_tz']}), "
        f"seed {report['seed']}; {report['rejected']} refused; "
        f"{report['transactions_per_second'] or 0:,} transactions/s; "
        f"plan {report['plan_digest'][:16]}"
    )
