"""``backoffice db ...``: set up the database for an application role (PostgreSQL)."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from infrastructure.audit.guards import guarded_tables
from infrastructure.audit.roles import UnknownRole, grant_app_role
from infrastructure.bootstrap import bootstrap
from infrastructure.settings import Settings
from infrastructure.views.store import ViewStore
from interfaces.logging import configure_logging

db = typer.Typer(help="Create the tables and append-only guards; grant an application role.",
                 no_args_is_help=True)
err = Console(stderr=True)


@db.command("setup")
def setup(
    app_role: str = typer.Option(
        None, "--app-role",
        help="PostgreSQL: the role the application will connect as (it must exist)",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what was done as JSON"),
) -> None:
    """Run as the tables' owner: creates every table and the append-only triggers, and
    with --app-role grants that role what the application needs, and no more."""
    settings = Settings()
    configure_logging(settings.log_format, "warning")
    with bootstrap(settings) as bank:
        store = ViewStore(bank.factory.datastore)  # type: ignore[attr-defined]
        body: dict[str, object] = {"guarded": guarded_tables(store, bank.recorder), "granted": []}
        if app_role:
            try:
                body["granted"] = grant_app_role(store, bank.recorder, app_role)
            except (UnknownRole, ValueError) as error:
                err.print(f"[red]refused:[/red] {error}")
                raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(body))
    else:
        err.print(f"append-only guards on: {', '.join(body['guarded'])}")  # type: ignore[arg-type]
        for statement in body["granted"]:  # type: ignore[attr-defined]
            print(statement)
