"""The one wiring function: settings in, a ready application out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from application.bank import Bank
from infrastructure.positions import position_lookup
from infrastructure.settings import Settings
from infrastructure.store import eventsourcing_env


def bootstrap(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    **overrides: Any,
) -> Bank:
    """Build the application; tests pass overrides (``database_url="memory://"``...)."""
    settings = (settings or Settings()).model_copy(update=overrides)
    kwargs: dict[str, Any] = {}
    if clock is not None:
        kwargs["clock"] = clock
    return Bank(
        env=eventsourcing_env(settings),
        position_lookup=position_lookup,
        max_attempts=settings.max_attempts,
        **kwargs,
    )
