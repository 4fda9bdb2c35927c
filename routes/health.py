"""Liveness, readiness and metrics for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.auth import bearer_matches, key_digests
from relay.dialects import OPENAI
from relay.errors import ProxyError
from relay.runtime import Runtime

_NEEDS_KEY = ProxyError(401, "/metrics needs 'Authorization: Bearer <key>' with the [admin] key or metrics_key",
                        code="invalid_admin_key")


def health_routes(rt: Runtime, route: type[Route] = Route) -> list[Route]:
    admin = rt.config.admin
    allowed = key_digests(admin.key, admin.metrics_key)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        if rt.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        if rt.fleet.closed_and_down:
            # on_outage = "closed" and the store is down: every token request would get a 503,
            # so the load balancer should send traffic to a replica that still reaches it.
            return JSONResponse({"status": "state store unavailable"}, status_code=503)
        return JSONResponse({"status": "ready", "channels": len(rt.config.channels),
                             "passthrough": sorted(rt.config.passthrough)})

    async def metrics(request: Request) -> Response:
        """Open when the config sets no key (SPEC §9); else only for a bearer of one."""
        if allowed and not bearer_matches(request.headers.get("authorization"), allowed):
            return Response(OPENAI.render_error(_NEEDS_KEY), status_code=401, media_type="application/json",
                            headers={"www-authenticate": "Bearer"})
        return Response(rt.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return [
        route("/healthz", healthz, methods=["GET"]),
        route("/readyz", readyz, methods=["GET"]),
        route("/metrics", metrics, methods=["GET"]),
    ]
