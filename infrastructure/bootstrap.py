"""The wiring: settings in, a ready application (and its projection runners) out."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from application.audit.ports import Reconciliation
from application.audit.service import Audit
from application.bank import Bank
from application.compliance.rules import Rules
from application.compliance.service import Compliance
from application.followers import FOLLOWERS
from application.projections import PROJECTIONS
from infrastructure.audit.guards import install_guards
from infrastructure.audit.reconcile import Reconciler
from infrastructure.audit.store import SqlAuditStore
from infrastructure.compliance_store import SqlComplianceStore
from infrastructure.positions import position_lookup
from infrastructure.settings import Settings
from infrastructure.store import (
    StoreLocation,
    eventsourcing_env,
    owns_event_table,
    parse_database_url,
)
from infrastructure.views.reader import SqlViewReader
from infrastructure.views.rebuild import Progress, Rebuild
from infrastructure.views.runner import ProjectionService, ProjectionWorker
from infrastructure.views.store import ViewStore
from infrastructure.views.subscriptions import Doorbell


def bootstrap(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    with_views: bool = True,
    create_tables: bool = True,
    **overrides: Any,
) -> Bank:
    """Build the application; tests pass overrides (``database_url="memory://"``...).

    ``with_views=False`` leaves the views out, so reads come from the aggregates: for
    tests of the write side alone.
    """
    settings = (settings or Settings()).model_copy(update=overrides)
    kwargs: dict[str, Any] = {}
    if clock is not None:
        kwargs["clock"] = clock
    env = eventsourcing_env(settings)
    if create_tables and not owns_event_table(settings, f"{Bank.name.lower()}_events"):
        create_tables = False  # an application role: `backoffice db setup` made the tables
    if not create_tables:
        env["CREATE_TABLE"] = "no"  # the tables exist; DDL from many processes at once races
    bank = Bank(
        env=env,
        position_lookup=position_lookup,
        max_attempts=settings.max_attempts,
        read_wait_seconds=settings.read_wait_ms / 1000,
        business_tz=settings.business_tz,
        rules=load_rules(settings.rules_file),
        **kwargs,
    )
    if with_views and parse_database_url(settings.database_url).kind != "memory":
        store = ViewStore(bank.factory.datastore)  # type: ignore[attr-defined]
        store.ensure_schema(list(FOLLOWERS))
        if create_tables:
            install_guards(store, bank.recorder)
        bank.views = SqlViewReader(store, bank.recorder)
        reconciler = functools.partial(_reconcile, settings)
        bank.audit = Audit(bank, SqlAuditStore(store, bank.recorder, reconciler))
        bank.compliance = Compliance(bank, SqlComplianceStore(store, bank.recorder))
    return bank


def load_rules(path: str | None) -> Rules:
    """The report and alert settings: the contract's defaults, or a JSON file's."""
    if not path:
        return Rules()
    with open(path, encoding="utf-8") as file:
        return Rules.from_mapping(json.load(file))


def _reconcile(settings: Settings, on_progress: Callable[[int, int], None]) -> Reconciliation:
    return Reconciler(
        functools.partial(open_log_source, settings), _location(settings)
    ).run(on_progress)


def projection_names(names: Sequence[str] = (), *, rebuildable: bool = False) -> list[str]:
    """The chosen followers of the log (default: all); ``rebuildable`` leaves out the
    audit chain, which is a record of the log and never replayed into a new generation."""
    known = PROJECTIONS if rebuildable else FOLLOWERS
    if rebuildable and "chain" in names:
        raise ValueError("the audit chain is never rebuilt: it records the log as it was")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown projection(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return list(names) or list(known)


def _location(settings: Settings) -> StoreLocation:
    location = parse_database_url(settings.database_url)
    if location.kind == "memory":
        raise ValueError("memory:// keeps no projections")
    return location


def _source(settings: Settings, connections: int, *, create_tables: bool = False) -> Bank:
    """A Bank of its own for reading the log, with a pool sized for the runners.

    One connection is kept open; the rest open when needed, so an idle server holds
    few of PostgreSQL's (by default 100) connections.
    """
    return bootstrap(
        settings, with_views=False, create_tables=create_tables,
        pg_pool_size=1, pg_max_overflow=connections,
    )


def start_projections(
    bank: Bank, settings: Settings | None = None, names: Sequence[str] = ()
) -> ProjectionService:
    """Start live runners in this process, for ``names`` (default: all)."""
    settings = settings or Settings()
    location = _location(settings)
    chosen = projection_names(names)
    # Each runner holds a LISTEN connection, pulls pages and writes batches.
    source = _source(settings, 3 * len(chosen) + 1)
    store = ViewStore(source.factory.datastore)  # type: ignore[attr-defined]
    doorbell = Doorbell()
    bank.saved_hooks.append(doorbell.ring)
    notify = bank.views.notify if isinstance(bank.views, SqlViewReader) else (lambda *_: None)
    workers = [
        ProjectionWorker(name, source, store, location, on_commit=notify, doorbell=doorbell)
        for name in chosen
    ]
    service = ProjectionService(workers, source)
    service.start()
    return service


def rebuild_projections(
    settings: Settings | None = None,
    names: Sequence[str] = (),
    *,
    page_size: int = 10000,
    processes: int | None = None,
    on_progress: Callable[[Progress], None] = lambda progress: None,
) -> Rebuild:
    """A rebuild of ``names`` (default: all); ``processes=1`` keeps it in this process."""
    settings = settings or Settings()
    return Rebuild(
        projection_names(names, rebuildable=True),
        functools.partial(open_log_source, settings, create_tables=True),
        _location(settings),
        worker_source=functools.partial(open_log_source, settings),
        page_size=page_size, processes=processes, on_progress=on_progress,
    )


def open_log_source(settings: Settings, *, create_tables: bool = False) -> tuple[Bank, ViewStore]:
    """A Bank to read the log and a store for its views (also in rebuild workers,
    which leave creating tables to the process that started them)."""
    source = _source(settings, 4, create_tables=create_tables)
    return source, ViewStore(source.factory.datastore)  # type: ignore[attr-defined]
