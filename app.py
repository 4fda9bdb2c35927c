"""AuraX Edge Proxy, the ASGI app: `uvicorn app:app` (any ASGI host will do).

This module only assembles: it loads the config, builds the runtime and the route table, and
wraps them in the middleware every request passes. The request path lives in `routes/` and
`relay/`.
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from relay import logs
from relay.config import Config, ConfigError, load
from relay.edge import RequestEdge
from relay.lifecycle import drain_on_sigterm
from relay.runtime import Runtime
from routes import ERROR_HANDLERS, canonical_path, route_table


def build_app(config: Config, transport: httpx.AsyncBaseTransport | None = None, usage_out=None):
    """The proxy for `config`. Tests pass a mock `transport` and collect usage lines."""
    rt = Runtime(config, transport, usage_out)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        drain_on_sigterm(rt)
        rt.upstream.start()
        yield
        await rt.aclose()

    cors = config.proxy.cors_origins
    starlette = Starlette(
        routes=route_table(rt),
        middleware=[
            Middleware(CORSMiddleware, allow_origins=list(cors), allow_methods=["*"],
                       allow_headers=["*"], expose_headers=["x-request-id"], max_age=86400),
        ],
        exception_handlers=ERROR_HANDLERS,
        lifespan=lifespan,
    )
    starlette.state.runtime = rt
    return RequestEdge(starlette, canonical_path)


def _load() -> Config:
    try:
        config = load()
    except ConfigError as exc:
        print(f"aurax: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for warning in config.warnings:
        print(f"aurax: warning: {warning}", file=sys.stderr)
    return config


logs.install()
app = build_app(_load())
