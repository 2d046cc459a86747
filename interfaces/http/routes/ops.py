"""Operations endpoints, without auth: liveness, readiness and metrics."""

from __future__ import annotations

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
    try:
        position = bank_of(request).last_position()
    except UNAVAILABLE_ERRORS as error:
        return JSONResponse(
            {"status": "unavailable", "database": f"unreachable: {type(error).__name__}"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    # Projections arrive with issue 3; until then reads come from the aggregates.
    return JSONResponse({"status": "ready", "database": "ok", "position": position, "projections": {}})


@router.get("/metrics")
def metrics(request: Request) -> Response:
    telemetry = request.app.state.telemetry
    try:
        telemetry.log_position.set(bank_of(request).last_position())
    except UNAVAILABLE_ERRORS:
        telemetry.database_up.set(0)
    else:
        telemetry.database_up.set(1)
    return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)
