"""Refusals that belong to the application rather than to one aggregate."""

from __future__ import annotations

from typing import Any

from domain.errors import BankError


class IdempotencyKeyReused(BankError):
    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(
            "this Idempotency-Key was already used with a different request",
            idempotency_key=key,
        )


class ServiceUnavailable(BankError):
    code = "service_unavailable"

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class RulesChanged(ServiceUnavailable):
    """The compliance view was built under other rule settings than this process's:
    its alerts would mix two versions, so nothing more is applied or read until it is
    rebuilt under the new ones."""

    def __init__(self, built_with: str, configured: str) -> None:
        super().__init__(
            f"the compliance view was built with rules {built_with}; these settings are "
            f"rules {configured}: run `backoffice projections rebuild compliance`",
            retry_after=60,
        )
        self.built_with = built_with
        self.configured = configured


class ReplayedError(BankError):
    """A refusal remembered with an Idempotency-Key, answered again as it was."""

    replayed = True

    def __init__(self, code: str, detail: str, extra: dict[str, Any]) -> None:
        super().__init__(detail)
        self.code = code  # type: ignore[misc]
        self._extra = extra

    def extra(self) -> dict[str, Any]:
        return dict(self._extra)
