"""Operations endpoints, without auth: liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import JSONResponse, Response

from interfaces.http.pipeline import bank_of
from interfaces.http.problems import UNAVAILABLE_ERRORS

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers and no projection runner here has failed.

    Lag is reported, not judged: reads that need a position wait for it themselves.
    """
    bank = bank_of(request)
    try:
        position = bank.last_position()
        statuses = bank.projection_status()
    except UNAVAILABLE_ERRORS as error:
        return JSONResponse(
            {"status": "unavailable", "database": f"unreachable: {type(error).__name__}"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    service = request.app.state.projections
    runners = service.states() if service is not None else {}
    projections: dict[str, Any] = {
        s.name: {
            "generation": s.generation,
            "position": s.position,
            "lag_events": s.lag_events,
            "runner": runners.get(s.name, {"state": "not in this process"}),
        }
        for s in statuses
    }
    failed = service.failed() if service is not None else []
    body = {
        "status": "unavailable" if failed else "ready",
        "database": "ok",
        "position": position,
        "projections": projections,
    }
    if failed:
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse(body)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    telemetry = request.app.state.telemetry
    bank = bank_of(request)
    try:
        telemetry.log_position.set(bank.last_position())
        for status in bank.projection_status():
            telemetry.projection_position.labels(status.name).set(status.position)
            telemetry.projection_lag.labels(status.name).set(status.lag_events)
            telemetry.projection_generation.labels(status.name).set(status.generation)
    except UNAVAILABLE_ERRORS:
        telemetry.database_up.set(0)
    else:
        telemetry.database_up.set(1)
    return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)
