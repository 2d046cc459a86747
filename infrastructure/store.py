"""The event store chosen by BACKOFFICE_DATABASE_URL, as eventsourcing settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg

from infrastructure.settings import Settings


class UnsupportedDatabaseURL(ValueError):
    pass


@dataclass(frozen=True)
class StoreLocation:
    kind: str  # "sqlite", "postgres" or "memory"
    path: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    dbname: str | None = None
    schema: str | None = None


def parse_database_url(url: str) -> StoreLocation:
    if url.startswith("memory://"):
        return StoreLocation("memory")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise UnsupportedDatabaseURL("sqlite:/// needs a path")
        return StoreLocation("sqlite", path=path)
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        query = parse_qs(parts.query)
        return StoreLocation(
            "postgres",
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            dbname=parts.path.lstrip("/") or "postgres",
            schema=(query.get("schema") or [None])[0],
        )
    raise UnsupportedDatabaseURL(
        f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://..."
    )


def eventsourcing_env(settings: Settings) -> dict[str, str]:
    location = parse_database_url(settings.database_url)
    env = {
        "AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size),
        # Commands trust cached aggregates and reload only after a conflict (see
        # Bank._load); reads fast-forward explicitly (Bank._read).
        "AGGREGATE_CACHE_FASTFORWARD": "n",
    }
    if location.kind == "memory":
        env["PERSISTENCE_MODULE"] = "eventsourcing.popo"
    elif location.kind == "sqlite":
        assert location.path is not None
        Path(location.path).parent.mkdir(parents=True, exist_ok=True)
        env.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            SQLITE_DBNAME=location.path,
            SQLITE_LOCK_TIMEOUT="10",
        )
    else:
        env.update(
            PERSISTENCE_MODULE="eventsourcing.postgres",
            POSTGRES_HOST=location.host or "",
            POSTGRES_PORT=str(location.port),
            POSTGRES_USER=location.user or "",
            POSTGRES_PASSWORD=location.password or "",
            POSTGRES_DBNAME=location.dbname or "",
            POSTGRES_POOL_SIZE=str(settings.pg_pool_size),
            POSTGRES_MAX_OVERFLOW=str(settings.pg_max_overflow),
            POSTGRES_CONNECT_TIMEOUT=str(settings.pg_pool_timeout_s),
            POSTGRES_LOCK_TIMEOUT=str(settings.pg_lock_timeout_s),
            POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT="10",
            APPLICATION_RECORDER_TOPIC=(
                "infrastructure.recorders:PipelinedPostgresApplicationRecorder"
            ),
            # Never POSTGRES_ENABLE_DB_FUNCTIONS: it loses events under concurrency.
        )
        if location.schema:
            env["POSTGRES_SCHEMA"] = location.schema
    return env


def owns_event_table(settings: Settings, table: str) -> bool:
    """False when connecting as a PostgreSQL role that does not own an existing event
    table (the application role of README "Append-only on PostgreSQL"): such a role
    must not try to create the library's tables, which only their owner may touch."""
    location = parse_database_url(settings.database_url)
    if location.kind != "postgres":
        return True
    with psycopg.connect(
        host=location.host, port=location.port, user=location.user,
        password=location.password or None, dbname=location.dbname,
        connect_timeout=settings.pg_pool_timeout_s, autocommit=True,
    ) as conn:
        row = conn.execute(
            "SELECT pg_has_role(current_user, tableowner, 'USAGE') FROM pg_tables "
            "WHERE schemaname = %s AND tablename = %s",
            (location.schema or "public", table),
        ).fetchone()
    return row is None or bool(row[0])
