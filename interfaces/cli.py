"""The ``backoffice`` command: serve the API, manage API keys, run the projections.

Every command reads the same settings as the server (BACKOFFICE_DATABASE_URL...), so a
command run beside ``make run`` works on the same data.
"""

from __future__ import annotations

import json
import os
import sys
from uuid import UUID

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from domain.cause import Cause
from domain.errors import BankError
from infrastructure.bootstrap import bootstrap
from infrastructure.settings import Settings
from interfaces.audit_cli import audit
from interfaces.compliance_cli import alerts, report, risk
from interfaces.db_cli import db
from interfaces.demo_cli import demo
from interfaces.projections_cli import projections

app = typer.Typer(help="backoffice: the event-sourced banking back office.", no_args_is_help=True)
keys = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys, name="keys")
app.add_typer(projections, name="projections")
app.add_typer(audit, name="audit")
app.add_typer(db, name="db")
app.add_typer(demo, name="demo")
app.add_typer(report, name="report")
app.add_typer(risk, name="risk")
app.command("alerts")(alerts)
err = Console(stderr=True)


@app.command()
def serve(
    host: str = typer.Option(None, help="Default: BACKOFFICE_HOST or 127.0.0.1"),
    port: int = typer.Option(None, help="Default: BACKOFFICE_PORT or 8000"),
    workers: int = typer.Option(1, help="Worker processes (each keeps its own caches)"),
    run_projections: bool = typer.Option(
        None, "--projections/--no-projections",
        help="Run the projection runners in the server (default: BACKOFFICE_RUN_PROJECTIONS, on)",
    ),
) -> None:
    """Serve the HTTP API (and, by default, keep the projections up to date)."""
    if run_projections is not None:
        # The app factory reads its settings from the environment, in every worker.
        os.environ["BACKOFFICE_RUN_PROJECTIONS"] = "true" if run_projections else "false"
    settings = Settings()
    uvicorn.run(
        "interfaces.http.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        access_log=False,
        log_config=None,
        server_header=False,
    )


@keys.command("create")
def keys_create(
    role: str = typer.Option(..., help="teller, auditor, compliance or admin"),
    name: str = typer.Option(..., help="Who holds the key, e.g. branch-12"),
) -> None:
    """Create a key; its secret is printed once, alone on the last line."""
    with bootstrap() as bank:
        try:
            view, secret = bank.create_api_key(name, role, Cause.cli())
        except BankError as error:
            err.print(f"[red]refused:[/red] {error.detail}")
            raise typer.Exit(2) from None
    print(f"key_id: {view['key_id']}")
    print(f"role: {view['role']}")
    print(f"name: {view['name']}")
    print("secret (shown once; only its hash is stored):", file=sys.stderr)
    print(secret)


@keys.command("list")
def keys_list(as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """List keys (never their secrets)."""
    with bootstrap() as bank:
        listed = bank.list_api_keys()
    if as_json:
        print(json.dumps({"keys": listed}, indent=2))
        return
    table = Table("key_id", "name", "role", "created_at", "revoked_at")
    for key in listed:
        table.add_row(key["key_id"], key["name"], key["role"], key["created_at"], key["revoked_at"] or "")
    Console().print(table)


@keys.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: it stops working at once."""
    try:
        parsed = UUID(key_id)
    except ValueError:
        err.print(f"[red]not a key id:[/red] {key_id}")
        raise typer.Exit(2) from None
    with bootstrap() as bank:
        try:
            outcome = bank.revoke_api_key(parsed, Cause.cli())
        except BankError as error:
            err.print(f"[red]refused:[/red] {error.detail}")
            raise typer.Exit(1) from None
    print(json.dumps(outcome.response()))


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
