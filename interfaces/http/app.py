"""The FastAPI application: thin routers over the Bank application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from application.bank import Bank
from domain.errors import BankError, ValidationFailed
from infrastructure.bootstrap import bootstrap, start_projections
from infrastructure.settings import Settings
from infrastructure.sweeper import HoldSweeper
from interfaces.http.pipeline import ReplayHit, respond
from interfaces.http.problems import UNAVAILABLE_ERRORS, problem
from interfaces.http.routes import (
    accounts,
    audit,
    batches,
    compliance,
    customers,
    holds,
    keys,
    movements,
    ops,
)
from interfaces.http.telemetry import RequestContext, Telemetry
from interfaces.logging import configure_logging

_LOCATIONS = ("body", "query", "path", "header")


def create_app(settings: Settings | None = None, bank: Bank | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Blocking use cases run in worker threads. A few are enough to keep the
        # database busy; many more only fight over the GIL (measured in bench/).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        owned = bank is None
        app.state.bank = bank if bank is not None else bootstrap(settings)
        app.state.projections = None
        if settings.run_projections and app.state.bank.views is not None:
            app.state.projections = start_projections(app.state.bank, settings)
        sweeper = (
            HoldSweeper(app.state.bank, settings.hold_sweep_seconds).start()
            if settings.hold_sweep_seconds > 0 and app.state.bank.views is not None
            else None
        )
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.stop()
            if app.state.projections is not None:
                app.state.projections.stop()
            if owned:
                app.state.bank.close()

    app = FastAPI(
        title="backoffice",
        version="1",
        summary="Event-sourced banking back office: the teller API (contract v1)",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.projections = None
    app.state.telemetry = Telemetry()
    if bank is not None:
        app.state.bank = bank
    for module in (customers, accounts, holds, movements, batches, keys, audit, ops):
        app.include_router(module.router)
    for router in compliance.routers:
        app.include_router(router)
    _install_error_handlers(app)
    app.add_middleware(RequestContext, telemetry=app.state.telemetry)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ReplayHit)
    async def replayed(request: Request, hit: ReplayHit) -> JSONResponse:
        route = request.scope.get("route")
        return respond(hit.outcome, getattr(route, "status_code", None) or 200)

    @app.exception_handler(BankError)
    async def refused(request: Request, error: BankError) -> JSONResponse:
        headers: dict[str, str] = {}
        if getattr(error, "replayed", False):
            headers["Idempotent-Replayed"] = "true"
        if error.code == "service_unavailable":
            headers["Retry-After"] = str(getattr(error, "retry_after", 1))
        extra = error.extra()
        if isinstance(error, ValidationFailed) or error.code == "validation_error":
            extra["errors"] = [
                {**e, "loc": e["loc"] if e["loc"] and e["loc"][0] in _LOCATIONS else ["body", *e["loc"]]}
                for e in extra.get("errors", [])
            ]
        return problem(error.code, error.detail, extra, headers or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()]
        return problem("validation_error", "the request is not valid", {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 405:
            return problem("method_not_allowed", f"{request.method} is not allowed here")
        return problem("not_found", f"no such resource: {request.url.path}")

    for kind in UNAVAILABLE_ERRORS:

        @app.exception_handler(kind)
        async def unavailable(request: Request, error: Exception) -> JSONResponse:
            return problem(
                "service_unavailable",
                "the database is unavailable; retry shortly",
                headers={"Retry-After": "1"},
            )
