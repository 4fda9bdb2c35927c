"""The HTTP surface: the route table, its forwarder, model lists and health checks."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import Route

from relay.edge import send_error
from relay.errors import ProxyError
from relay.runtime import Runtime

from .forward import Forward
from .health import health_routes
from .models import Models
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


def route_table(rt: Runtime) -> list[Route]:
    routes = [
        DialectRoute(row.path, (Models if row.endpoint == "models" else Forward)(row, rt), methods=[row.method])
        for row in ROWS
    ]
    return routes + health_routes(rt, DialectRoute)


async def not_found(scope, receive, send) -> None:
    """The router's answer when no route matches the path, in the client's dialect."""
    err = ProxyError(404, f"Unknown path: {scope['method']} {scope['path']}", code="unknown_path")
    await send_error(scope, send, err, [])


__all__ = ["canonical_path", "not_found", "route_table"]
