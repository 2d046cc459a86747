"""``backoffice projections run|rebuild|status``."""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from infrastructure.bootstrap import (
    bootstrap,
    projection_names,
    rebuild_projections,
    start_projections,
)
from infrastructure.settings import Settings
from infrastructure.views.rebuild import Progress as RebuildProgress
from infrastructure.views.rebuild import RebuildFailed, RebuildRefused
from interfaces.logging import configure_logging
from interfaces.progress import progress_bar

projections = typer.Typer(
    help="Run, rebuild and inspect the projections (balances, statements...).",
    no_args_is_help=True,
)
err = Console(stderr=True)


def _names(names: list[str] | None, *, rebuildable: bool = False) -> list[str]:
    try:
        return projection_names(names or [], rebuildable=rebuildable)
    except ValueError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None


@projections.command("run")
def run(names: list[str] = typer.Argument(None, help="Projections to run (default: all)")) -> None:
    """Run the live runners in this process until interrupted (SIGINT/SIGTERM).

    A projection whose lock another runner holds is waited for, not run twice.
    """
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    chosen = _names(names)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with bootstrap(settings) as bank:
        service = start_projections(bank, settings, chosen)
        try:
            while not stopping.wait(1.0):
                if service.failed() and len(service.failed()) == len(chosen):
                    break
        finally:
            service.stop()
    if service.failed():
        err.print(f"[red]failed:[/red] {', '.join(service.failed())}")
        raise typer.Exit(1)


@projections.command("rebuild")
def rebuild(
    names: list[str] = typer.Argument(None, help="Projections to rebuild"),
    all_: bool = typer.Option(False, "--all", help="Rebuild every projection"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON"),
    processes: int = typer.Option(
        None, min=1, help="Worker processes for a long log (default: up to 2, one per core)"
    ),
) -> None:
    """Replay the whole log into fresh views, then switch readers to them at once."""
    if not names and not all_:
        err.print("[red]name a projection or pass --all[/red]")
        raise typer.Exit(2)
    chosen = _names([] if all_ else names, rebuildable=True)
    settings = Settings()
    configure_logging(settings.log_format, "warning")
    bar = progress_bar("rebuild " + ", ".join(chosen), "{task.fields[rate]} events/s", err)
    task = bar.add_task("rebuild", total=None, rate="-")

    def show(progress: RebuildProgress) -> None:
        rate = progress.events / progress.seconds if progress.seconds > 0 else 0
        bar.update(task, completed=progress.position, total=progress.head, rate=f"{rate:,.0f}")

    try:
        with bar:
            result = rebuild_projections(
                settings, chosen, processes=processes, on_progress=show
            ).run()
    except (RebuildRefused, RebuildFailed) as error:
        err.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from None
    summary: dict[str, Any] = {
        "generations": result.generations,
        "position": result.position,
        "events": result.events,
        "seconds": round(result.seconds, 3),
        "events_per_second": round(result.events_per_second),
        "processes": result.processes,
    }
    if as_json:
        print(json.dumps(summary))
    else:
        err.print(
            f"rebuilt {', '.join(chosen)} up to position {result.position}: "
            f"{result.events:,} events in {result.seconds:.1f} s "
            f"({result.events_per_second:,.0f} events/s)"
        )


@projections.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Each projection's generation, position and lag behind the log."""
    with bootstrap() as bank:
        found = bank.projection_status()
    rows = [
        {
            "projection": s.name,
            "generation": s.generation,
            "position": s.position,
            "head": s.head,
            "lag_events": s.lag_events,
        }
        for s in found
    ]
    if as_json:
        print(json.dumps({"projections": rows}, indent=2))
        return
    table = Table("projection", "generation", "position", "log head", "lag (events)")
    for row in rows:
        table.add_row(*(str(row[k]) for k in ("projection", "generation", "position", "head", "lag_events")))
    Console().print(table)
