"""Stores for the suite.

``make test`` runs on SQLite (a fresh file per test). With
``BACKOFFICE_DATABASE_URL=postgresql://...`` the same tests run on PostgreSQL, each in
a schema of its own that is dropped afterwards. Tests marked ``postgres`` always need
PostgreSQL: skipped when it is unreachable, failed when BACKOFFICE_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, settings

from application.bank import Bank
from domain.cause import Cause
from infrastructure.bootstrap import bootstrap

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=40,
    derandomize=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def configured_url() -> str:
    return os.environ.get("BACKOFFICE_DATABASE_URL", "")


def store_kind() -> str:
    return "postgres" if configured_url().startswith(("postgresql://", "postgres://")) else "sqlite"


def postgres_required() -> bool:
    return os.environ.get("BACKOFFICE_REQUIRE_POSTGRES", "") in ("1", "true", "yes")


def _with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def _base(url: str) -> str:
    return url.split("?", 1)[0]


def _postgres_schema(url: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(_base(url), autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as error:
        if postgres_required():
            pytest.fail(f"PostgreSQL is required but unreachable: {error}")
        pytest.skip(f"PostgreSQL unreachable: {error}")
    try:
        yield _with_schema(url, schema)
    finally:
        with psycopg.connect(_base(url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def database_url(tmp_path) -> Iterator[str]:
    """A fresh, empty store of the kind this run is for."""
    if store_kind() == "postgres":
        yield from _postgres_schema(configured_url())
    else:
        yield f"sqlite:///{tmp_path}/bank.sqlite"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema, whatever store this run is for."""
    url = configured_url() if store_kind() == "postgres" else DEFAULT_POSTGRES_URL
    yield from _postgres_schema(os.environ.get("BACKOFFICE_TEST_POSTGRES_URL", url))


@pytest.fixture
def bank(database_url: str) -> Iterator[Bank]:
    app = bootstrap(database_url=database_url)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def memory_bank() -> Iterator[Bank]:
    app = bootstrap(database_url="memory://")
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def cli_cause() -> Cause:
    return Cause.cli()
