"""The HTTP surface: the route table, its forwarder, model lists and health checks."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.edge import guess_dialect, header_map
from relay.errors import ProxyError, render
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


def route_table(rt: Runtime) -> list[Route]:
    routes = [
        Route(row.path, (Models if row.endpoint == "models" else Forward)(row, rt), methods=[row.method])
        for row in ROWS
    ]
    return routes + health_routes(rt)


def _error_answer(status: int, message: str, code: str):
    async def handler(request: Request, exc: Exception) -> Response:
        dialect = guess_dialect(request.url.path, header_map(request.scope["headers"]),
                                request.scope["query_string"])
        text = message.format(method=request.method, path=request.url.path)
        return Response(render(dialect, ProxyError(status, text, code=code)), status,
                        media_type="application/json")

    return handler


ERROR_HANDLERS = {
    404: _error_answer(404, "Unknown path: {method} {path}", "unknown_path"),
    405: _error_answer(405, "Method {method} is not allowed on {path}", "method_not_allowed"),
    500: _error_answer(500, "Internal error in the proxy; the request id names it in the logs",
                       "internal_error"),
}

__all__ = ["ERROR_HANDLERS", "canonical_path", "route_table"]
