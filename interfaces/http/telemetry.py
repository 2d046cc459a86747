"""Request context: X-Request-ID, one log line per request, and Prometheus metrics."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interfaces.http.problems import problem

log = structlog.get_logger("backoffice.http")


class Telemetry:
    def __init__(self) -> None:
        # A registry per application, so tests can build many apps in one process.
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "backoffice_http_requests", "HTTP requests", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "backoffice_http_request_duration_seconds", "HTTP request latency",
            ["method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.log_position = Gauge(
            "backoffice_event_log_position", "Last position in the event log",
            registry=self.registry,
        )
        self.database_up = Gauge(
            "backoffice_database_up", "1 when the database answered", registry=self.registry
        )
        self.projection_position = Gauge(
            "backoffice_projection_position", "Last log position a projection has processed",
            ["projection"], registry=self.registry,
        )
        self.projection_lag = Gauge(
            "backoffice_projection_lag_events",
            "Events of a projection's own not yet processed", ["projection"],
            registry=self.registry,
        )
        self.projection_generation = Gauge(
            "backoffice_projection_generation", "The generation of tables readers see",
            ["projection"], registry=self.registry,
        )


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if 1 <= len(text) <= 128 and all(" " < ch <= "~" for ch in text):
                return text
            break
    return str(uuid.uuid4())


class RequestContext:
    """Pure ASGI middleware (no BaseHTTPMiddleware overhead on the hot path)."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"], (b"x-request-id", request_id.encode("latin-1"))
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Logged in full with its stack; the caller gets a problem without one.
            log.exception("unhandled_error", method=scope["method"], path=scope["path"])
            if response_started:
                raise
            response = problem("internal_error", "an internal error occurred; it was logged",
                               {"request_id": request_id})
            await response(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            self.telemetry.requests.labels(scope["method"], route, str(status)).inc()
            self.telemetry.latency.labels(scope["method"], route).observe(duration)
            actor = state.get("actor")
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round(duration * 1000, 2),
                actor_key_id=getattr(actor, "key_id", None),
                actor_role=getattr(actor, "role", None),
            )
            structlog.contextvars.clear_contextvars()
