"""``backoffice audit ...``: the auditors' tools, with the server running or stopped.

Each prints its body as JSON with ``--json`` (the same body as the HTTP endpoint) and
shows a progress bar on standard error while it works.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from application.audit.service import Audit
from application.errors import ServiceUnavailable
from infrastructure.bootstrap import bootstrap
from infrastructure.settings import Settings
from interfaces.http.routes.audit import reconciliation_body
from interfaces.logging import configure_logging
from interfaces.progress import progress_bar

audit = typer.Typer(
    help="Verify the log's hash chain, seal it, reconcile the views, export the log.",
    no_args_is_help=True,
)
err = Console(stderr=True)


@contextmanager
def _audit() -> Iterator[Audit]:
    settings = Settings()
    configure_logging(settings.log_format, "warning")
    with bootstrap(settings) as bank:
        if bank.audit is None:
            err.print("[red]memory:// keeps no audit chain[/red]")
            raise typer.Exit(2)
        yield bank.audit


@contextmanager
def _bar(title: str, total: int | None) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on standard error; the callback takes (events done, position)."""
    bar = progress_bar(title, "position {task.fields[position]}", err)
    task = bar.add_task(title, total=total, position="-")
    with bar:
        yield lambda done, position: bar.update(task, completed=done, position=f"{position:,}")


def _head_events(chosen: Audit) -> int:
    with chosen.store.snapshot() as log:
        return log.count_events(log.head())


def _parse_root(text: str) -> tuple[int, str]:
    position, _, root = text.partition(":")
    if not position.isdigit() or len(root) != 64 or any(c not in "0123456789abcdefABCDEF" for c in root):
        raise typer.BadParameter("expected POSITION:ROOT (ROOT: 64 hex digits)")
    return int(position), root.lower()


@audit.command("verify")
def verify(
    expect_root: str = typer.Option(
        None, "--expect-root", metavar="POSITION:ROOT",
        help="A root kept outside the bank (from `audit seal`): the log must still lead to it",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON"),
) -> None:
    """Recompute the hash chain from the stored events and compare it with the chain's
    table, its seals and --expect-root. Exit status 0 only when all agree."""
    expected = _parse_root(expect_root) if expect_root else None
    with _audit() as chosen, _bar("verify", _head_events(chosen)) as progress:
        result = chosen.verify(expected, progress)
    body = result.as_dict()
    if as_json:
        print(json.dumps(body))
    elif result.ok:
        err.print(f"[green]ok[/green]: {result.events_checked:,} events, root {result.root} "
                  f"at position {result.last_position}")
    else:
        mismatch = result.first_mismatch
        assert mismatch is not None
        err.print(f"[red]NOT OK[/red]: {mismatch.reason} at position {mismatch.position} "
                  f"({result.events_checked:,} events verified before it)")
    raise typer.Exit(0 if result.ok else 1)


@audit.command("seal")
def seal(as_json: bool = typer.Option(False, "--json", help="Print the seal as JSON")) -> None:
    """Print the log's position and root now, to keep outside the bank (it is also
    recorded as a seal, which later verifications compare with)."""
    with _audit() as chosen:
        made = chosen.seal()
    body = {"position": made.position, "root": made.root}
    if as_json:
        print(json.dumps(body))
    else:
        print(f"{made.position}:{made.root}")


@audit.command("reconcile")
def reconcile(as_json: bool = typer.Option(False, "--json", help="Print the result as JSON")) -> None:
    """Replay the log into fresh views and compare every row with the live ones.
    Exit status 0 only when they agree."""
    with _audit() as chosen:
        try:
            with _bar("reconcile", None) as progress:
                result = chosen.reconcile(progress)
        except ServiceUnavailable as error:
            err.print(f"[red]refused:[/red] {error.detail}")
            raise typer.Exit(2) from None
    body = reconciliation_body(result)
    if as_json:
        print(json.dumps(body))
    else:
        status = "[green]ok[/green]" if body["ok"] else f"[red]{body['differences_total']} differences[/red]"
        err.print(f"{status}: {body['rows_compared']:,} rows compared at position "
                  f"{body['checked_at_position']}")
        for difference in body["differences"][:20]:
            err.print(difference)
    raise typer.Exit(0 if body["ok"] else 1)


@audit.command("export")
def export(
    start: int = typer.Option(None, "--from", min=1, help="First position (default: the first)"),
    end: int = typer.Option(None, "--to", min=1, help="Last position (default: the head)"),
    output: Path = typer.Option(..., "-o", "--output", help="The JSON Lines file to write"),
) -> None:
    """Write the log as JSON Lines with its hashes, for docs/audit/verify_export.py."""
    if start is not None and end is not None and end < start:
        raise typer.BadParameter("--to is before --from")
    with _audit() as chosen:
        with chosen.store.snapshot() as log:
            total = log.count_events(end or log.head()) - (log.count_events(start - 1) if start else 0)
        with output.open("w", encoding="utf-8") as out, _bar("export", total) as progress:
            trailer = chosen.export(lambda line: out.write(line + "\n"), start, end, progress)
    summary: dict[str, Any] = {"file": str(output), **{k: trailer[k] for k in ("events", "last_position", "root")}}
    print(json.dumps(summary))


