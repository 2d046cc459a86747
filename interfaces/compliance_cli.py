"""``backoffice report|alerts|risk ...``: the compliance reports from the command line.

Each command first brings the views it reads up to the log's head (running their
projections here if no server does; a progress bar on standard error shows the
catch-up), then writes the same document the HTTP endpoint answers: to standard
output, or to ``-o FILE``. The digest goes to standard error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from application.compliance.calendar import day_last_instant, day_start
from application.compliance.service import VIEWS, Compliance
from application.errors import ServiceUnavailable
from domain.errors import ValidationFailed
from infrastructure.bootstrap import bootstrap, start_projections
from infrastructure.settings import Settings
from infrastructure.views.reader import SqlViewReader
from interfaces.logging import configure_logging
from interfaces.progress import progress_bar
from interfaces.report_formats import ctr_csv, ctr_xml, dmo_csv

report = typer.Typer(help="Regulatory reports: trial balance, US CTR, Spanish DMO.", no_args_is_help=True)
risk = typer.Typer(help="Risk views: exposures, overdrafts, liquidity.", no_args_is_help=True)
err = Console(stderr=True)

AS_OF = typer.Option(None, "--as-of-position", help="Answer as the log stood at this position")
OUTPUT = typer.Option(None, "-o", "--output", help="Write to this file instead of standard output")


@contextmanager
def _compliance() -> Iterator[tuple[Compliance, Any]]:
    settings = Settings()
    configure_logging(settings.log_format, "warning")
    with bootstrap(settings) as bank:
        if bank.compliance is None:
            err.print("[red]memory:// keeps no compliance views[/red]")
            raise typer.Exit(2)
        runners = start_projections(bank, settings, VIEWS)
        try:
            _catch_up(bank.compliance, bank.views)
            yield bank.compliance, bank
        finally:
            runners.stop()


def _catch_up(compliance: Compliance, views: Any) -> None:
    """Wait, with a progress bar, until the views have reached the log's head."""
    assert isinstance(views, SqlViewReader)
    head = compliance.store.head()
    if views.reached(VIEWS, head):
        return
    def done() -> int:
        return min(views.store.positions()[name][1] for name in VIEWS)

    start = done()
    bar = progress_bar("catching up the views", "position {task.fields[position]}", err)
    task = bar.add_task("catch-up", total=max(head - start, 1), position="-")
    with bar:
        while not views.reached(VIEWS, head):
            now = done()
            bar.update(task, completed=now - start, position=f"{now:,}")
            time.sleep(0.2)
        bar.update(task, completed=head - start, position=f"{head:,}")


def _run(make: Callable[[Compliance, Any], tuple[dict[str, Any], str | bytes]], output: Path | None) -> None:
    try:
        with _compliance() as (compliance, bank):
            body, text = make(compliance, bank)
    except ValidationFailed as error:
        for loc, message in error.errors:
            err.print(f"[red]{'.'.join(str(p) for p in loc)}: {message}[/red]")
        raise typer.Exit(2) from None
    except ServiceUnavailable as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(3) from None
    data = text.encode("utf-8") if isinstance(text, str) else text
    if output is None:
        typer.echo(data.decode("utf-8"), nl=False)
    else:
        output.write_bytes(data)
    err.print(
        f"digest {body['digest']}  as_of_position {body['as_of_position']}  "
        f"rules {body['rules_version']}  final {str(body['final']).lower()}"
    )


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def _format(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise typer.BadParameter(f"one of {', '.join(allowed)}", param_hint="--format")
    return value


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("a date, YYYY-MM-DD", param_hint=name) from None


@report.command("trial-balance")
def trial_balance(
    day: str = typer.Option(..., "--date", help="Business day, YYYY-MM-DD"),
    currency: str = typer.Option(..., "--currency"),
    detail: bool = typer.Option(False, "--detail", help="A line per customer account too"),
    as_of_position: int | None = AS_OF,
    output: Path | None = OUTPUT,
) -> None:
    """The trial balance of one business day in one currency."""
    when = _day(day, "--date")
    _run(
        lambda c, _: _both(c.trial_balance(when, currency, detail=detail, as_of_position=as_of_position)),
        output,
    )


@report.command("ctr")
def ctr(
    day: str = typer.Option(..., "--date", help="Business day, YYYY-MM-DD"),
    form: str = typer.Option("json", "--format", help="json, csv or xml (FinCEN CTRX batch)"),
    filing_date: str | None = typer.Option(None, "--filing-date", help="Default: the day after"),
    as_of_position: int | None = AS_OF,
    output: Path | None = OUTPUT,
) -> None:
    """US Currency Transaction Reports for one business day."""
    when = _day(day, "--date")
    kind = _format(form, ("json", "csv", "xml"))
    filing = _day(filing_date, "--filing-date") if filing_date else when + timedelta(days=1)

    def make(c: Compliance, bank: Any) -> tuple[dict[str, Any], str | bytes]:
        body = c.ctr(when, as_of_position=as_of_position)
        if kind == "csv":
            return body, ctr_csv(body)
        if kind == "xml":
            return body, ctr_xml(body, bank.rules.institution, filing, ("format",))
        return body, _json(body)

    _run(make, output)


@report.command("dmo")
def dmo(
    month: str = typer.Option(..., "--month", help="Calendar month, YYYY-MM"),
    form: str = typer.Option("json", "--format", help="json or csv"),
    as_of_position: int | None = AS_OF,
    output: Path | None = OUTPUT,
) -> None:
    """Spain's monthly systematic report (DMO), positive or negative."""
    first = _day(month + "-01", "--month") if len(month) == 7 else _day("x", "--month")
    kind = _format(form, ("json", "csv"))

    def make(c: Compliance, _: Any) -> tuple[dict[str, Any], str]:
        body = c.dmo(first, as_of_position=as_of_position)
        return body, dmo_csv(body) if kind == "csv" else _json(body)

    _run(make, output)


def alerts(
    start: str | None = typer.Option(None, "--from", help="RFC 3339 timestamp or date"),
    end: str | None = typer.Option(None, "--to", help="RFC 3339 timestamp or date (inclusive)"),
    rule: str | None = typer.Option(None, "--rule"),
    customer_id: str | None = typer.Option(None, "--customer-id"),
    as_of_position: int | None = AS_OF,
    output: Path | None = OUTPUT,
) -> None:
    """AML alerts triggered in a window (default: all)."""

    def make(c: Compliance, bank: Any) -> tuple[dict[str, Any], str]:
        return _both(
            c.alerts(
                _moment(start, bank, end=False), _moment(end, bank, end=True), rule, customer_id,
                as_of_position=as_of_position,
            )
        )

    _run(make, output)


def _moment(text: str | None, bank: Any, *, end: bool) -> datetime | None:
    if not text:
        return None
    if len(text) == 10:
        day = _day(text, "--to" if end else "--from")
        return (day_last_instant if end else day_start)(day, bank.business_tz)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise typer.BadParameter("an RFC 3339 timestamp with its offset, or a date")
    return moment


@risk.command("exposures")
def exposures(
    day: str = typer.Option(..., "--date"),
    top: int = typer.Option(20, "--top"),
    as_of_position: int | None = AS_OF,
    output: Path | None = OUTPUT,
) -> None:
    """Exposures per customer or group against Tier 1 capital."""
    when = _day(day, "--date")
    _run(lambda c, _: _both(c.exposures(when, top, as_of_position=as_of_position)), output)


@risk.command("overdrafts")
def overdrafts(
    day: str = typer.Option(..., "--date"),
    as_of_position: int | None = AS_OF,
    output: Path | None = OUTPUT,
) -> None:
    """Accounts overdrawn at the end of a day, with ageing."""
    when = _day(day, "--date")
    _run(lambda c, _: _both(c.overdrafts(when, as_of_position=as_of_position)), output)


@risk.command("liquidity")
def liquidity(
    first: str = typer.Option(..., "--from"),
    last: str = typer.Option(..., "--to"),
    as_of_position: int | None = AS_OF,
    output: Path | None = OUTPUT,
) -> None:
    """Cash in and out and the deposit base per business day."""
    start, end = _day(first, "--from"), _day(last, "--to")
    _run(lambda c, _: _both(c.liquidity(start, end, as_of_position=as_of_position)), output)


def _both(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    return body, _json(body)
