"""The progress bar every long CLI command shows on standard error."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(title: str, detail: str, console: Console) -> Progress:
    """``detail`` is a rich template over the task's fields (``{task.fields[rate]}``)."""
    return Progress(
        TextColumn(f"[bold]{title}[/bold]"), BarColumn(), TaskProgressColumn(),
        MofNCompleteColumn(), TextColumn(detail), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    )
