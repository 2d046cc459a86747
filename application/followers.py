"""Everything that follows the log with a live runner: the projections (views that a
rebuild may replace) and the audit hash chain (a record, appended to and never rebuilt)."""

from __future__ import annotations

from typing import Any

from application.audit.chain import ChainProjection
from application.projections import PROJECTIONS

FOLLOWERS: dict[str, type[Any]] = {**PROJECTIONS, ChainProjection.name: ChainProjection}
