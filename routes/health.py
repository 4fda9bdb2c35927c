"""Liveness, readiness and metrics for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.runtime import Runtime


def health_routes(rt: Runtime, route: type[Route] = Route) -> list[Route]:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        if rt.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        return JSONResponse({"status": "ready", "channels": len(rt.config.channels),
                             "passthrough": sorted(rt.config.passthrough)})

    async def metrics(request: Request) -> Response:
        return Response(rt.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return [
        route("/healthz", healthz, methods=["GET"]),
        route("/readyz", readyz, methods=["GET"]),
        route("/metrics", metrics, methods=["GET"]),
    ]
