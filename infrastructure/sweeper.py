"""Records the expiry of holds past their expires_at, so history shows them.

A lapsed hold already stops counting the moment it lapses (reads compute it); this
only writes the ``Expired`` events, booked at each hold's expires_at.
"""

from __future__ import annotations

import threading

import structlog
from eventsourcing.persistence import OperationalError

from application.bank import Bank

log = structlog.get_logger(__name__)


class HoldSweeper:
    def __init__(self, bank: Bank, interval_s: float) -> None:
        self.bank = bank
        self.interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hold-sweeper", daemon=True)

    def start(self) -> HoldSweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval_s):
            try:
                expired = self.bank.expire_lapsed_holds()
            except OperationalError as error:  # the database is away: try next time
                log.warning("hold_sweep_failed", error=str(error))
                continue
            if expired:
                log.info("holds_expired", count=expired)
