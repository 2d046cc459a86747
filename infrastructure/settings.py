"""Settings of the server and every CLI command, read from BACKOFFICE_* variables."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKOFFICE_", extra="ignore")

    # sqlite:///relative/path.sqlite, sqlite:////absolute/path.sqlite,
    # postgresql://user[:password]@host:port/dbname[?schema=name], or memory://
    database_url: str = "sqlite:///var/backoffice.sqlite"
    business_tz: str = "UTC"
    # A JSON file overriding report and alert settings (application/compliance/rules.py);
    # reports carry the version of the settings they were made with.
    rules_file: str | None = None
    read_wait_ms: int = 2000

    host: str = "127.0.0.1"
    port: int = 8000
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "info"
    # Worker threads per server process for the blocking use cases.
    threads: int = 4
    # Run the projection runners inside `backoffice serve`; turn off where they run as
    # their own process (`backoffice projections run`).
    run_projections: bool = True
    # How often `serve` records the expiry of holds past their expires_at (0: never;
    # a lapsed hold stops counting at once either way, and its next touch records it).
    hold_sweep_seconds: float = 5.0

    # How many times a write reloads and decides again after a concurrency conflict.
    max_attempts: int = 40
    aggregate_cache_size: int = 20000
    # PostgreSQL pool: waits are bounded so an overloaded database answers 503
    # rather than hanging a teller (the library's defaults wait 30 s and forever).
    pg_pool_size: int = 10
    pg_max_overflow: int = 10
    pg_pool_timeout_s: int = 5
    pg_lock_timeout_s: int = 5
