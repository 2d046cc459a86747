"""The HTTP app over the suite's ``bank`` (SQLite or PostgreSQL), and an API key per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import e2e_helpers
import pytest
from fastapi.testclient import TestClient

from application.bank import Bank
from domain.cause import Cause
from infrastructure.settings import Settings
from interfaces.http.app import create_app


@pytest.fixture
def app(bank: Bank, database_url: str):
    # The projections run inside the app, as in `backoffice serve`.
    return create_app(Settings(database_url=database_url), bank=bank)


@pytest.fixture(autouse=True)
def _fresh_reads():
    """Each test's reads wait for the positions of its own writes (read-your-writes)."""
    e2e_helpers.LAST_POSITION[0] = None
    yield


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with e2e_helpers.ReadYourWritesClient(app) as test_client:
        yield test_client


@pytest.fixture
def make_key(bank: Bank) -> Callable[..., tuple[dict, str]]:
    """Create an API key with the CLI's cause: returns (its view, its secret)."""

    def make(role: str, name: str | None = None) -> tuple[dict, str]:
        return bank.create_api_key(name or f"{role}-key", role, Cause.cli())

    return make


@pytest.fixture
def teller(make_key) -> str:
    return make_key("teller", "branch-12")[1]


@pytest.fixture
def auditor(make_key) -> str:
    return make_key("auditor", "audit-firm")[1]


@pytest.fixture
def compliance(make_key) -> str:
    return make_key("compliance", "aml-desk")[1]


@pytest.fixture
def admin(make_key) -> str:
    return make_key("admin", "ops")[1]


@pytest.fixture
def keys(teller, auditor, compliance, admin) -> dict[str, str]:
    return {"teller": teller, "auditor": auditor, "compliance": compliance, "admin": admin}
