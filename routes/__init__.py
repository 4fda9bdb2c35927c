"""The HTTP surface: the route table, its forwarder, model lists, health checks, the billing
endpoints apps read and the operator's admin API."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import Route, Router

from relay.edge import send_error
from relay.errors import ProxyError
from relay.runtime import Runtime

from .admin import admin_routes
from .billing import billing_routes
from .forward import Forward
from .health import health_routes
from .models import Models
from .responses import KeptResponses
from .table import ROWS, canonical_path


class _ModelName(Convertor):
    """A model name in a path: anything up to the next `/` or Gemini's `:method`."""

    regex = "[^/:]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("model", _ModelName())


class DialectRoute(Route):
    """A route whose 405 (a known path, another method) is in the client's dialect."""

    async def handle(self, scope, receive, send) -> None:
        if self.methods and scope["method"] not in self.methods:
            message = f"Method {scope['method']} is not allowed on {scope['path']}"
            await send_error(scope, send, ProxyError(405, message, code="method_not_allowed"),
                              [(b"allow", ", ".join(sorted(self.methods)).encode())])
        else:
            await self.app(scope, receive, send)


class Dispatch:
    """The route table's fixed paths by one dict lookup, straight to their handler.

    Paths with a model in them, the lifespan, and 404/405 answers go through Starlette's router,
    which tries each route's pattern in turn, three coroutine frames deep.
    """

    def __init__(self, router: Router) -> None:
        self.router = router
        self._exact = {
            (method, route.path): route.app
            for route in router.routes
            if isinstance(route, Route) and not route.param_convertors
            for method in route.methods or ()
        }

    def handler(self, scope):
        """The app that serves this HTTP request: a fixed path's own, else the router."""
        app = self._exact.get((scope["method"], scope["path"]))
        if app is None:
            return self.router
        scope["path_params"] = {}
        return app

    async def __call__(self, scope, receive, send) -> None:
        app = self.handler(scope) if scope["type"] == "http" else self.router
        await app(scope, receive, send)


# Rows served by a handler of their own (lists and kept answers); the rest are forwarded.
_HANDLERS = {("GET", "models"): Models, ("GET", "responses"): KeptResponses}


def route_table(rt: Runtime) -> list[Route]:
    routes = [
        DialectRoute(row.path, _HANDLERS.get((row.method, row.endpoint), Forward)(row, rt), methods=[row.method])
        for row in ROWS
    ]
    return routes + health_routes(rt, DialectRoute) + billing_routes(rt, DialectRoute) + admin_routes(rt)


async def not_found(scope, receive, send) -> None:
    """The router's answer when no route matches the path, in the client's dialect."""
    err = ProxyError(404, f"Unknown path: {scope['method']} {scope['path']}", code="unknown_path")
    await send_error(scope, send, err, [])


__all__ = ["Dispatch", "canonical_path", "not_found", "route_table"]
