"""What every request passes through first: an id, the canonical path, CORS, and who is asking.

`RequestEdge` is the one middleware, plain ASGI with no per-request task or body copy: it names
the request, refuses oversized headers, answers CORS preflights (browsers: NextChat, LobeChat),
maps the many base-URL spellings clients use onto the route table's paths, puts `x-request-id`
(and the CORS headers) on every answer, and turns a bug into a 500 in the client's dialect.
Starlette's own CORS and error middleware did the same at several coroutine hops per message.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import os
from typing import Callable

from .config import Proxy
from .dialects import guess
from .errors import ProxyError
from .logs import AccessLog

log = logging.getLogger("uvicorn.error")

# What Cloudflare accepts in front of us; the server itself would buffer any amount.
MAX_HEADER_BYTES = 32 * 1024
_PREFLIGHT_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"


class RequestEdge:
    """`app` serves what passes the edge. When it can also name a request's handler without a
    coroutine of its own (`handler(scope)`, as routes.Dispatch does), the edge calls that handler
    itself: a request's coroutine is resumed once per event (each chunk of a stream), through
    every frame of its chain, and this is one frame less."""

    def __init__(self, app, canonical_path: Callable[[str], str], cors_origins: tuple[str, ...] = ("*",)) -> None:
        self.app = app
        self._handler = getattr(app, "handler", None) or (lambda scope: app)
        self.canonical_path = canonical_path
        self._any_origin = "*" in cors_origins
        self._origins = frozenset(o.encode() for o in cors_origins)
        # 32 hex digits: this process's random half, then a counter (no random read per request)
        self._ids = map(f"{os.urandom(8).hex()}{{:016x}}".format, itertools.count())
        self.runtime = None  # the app's Runtime, set by app.build_app (tests read usage from it)
        self.access_log: AccessLog | None = None  # set at start-up when the server's log is on

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = next(self._ids)
        scope["aurax.request_id"] = request_id
        extra = [(b"x-request-id", request_id.encode())]
        started = False
        access_log = self.access_log

        async def send_with(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), *extra]
                if access_log is not None:  # logged when the answer starts, as uvicorn does
                    access_log.write(scope, message["status"])
            await send(message)

        size, origin, preflight = 0, None, None
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight = value
        if size > MAX_HEADER_BYTES:
            err = ProxyError(431, f"Request headers are larger than {MAX_HEADER_BYTES // 1024} KB",
                             code="headers_too_large")
            await send_error(scope, send_with, err, [(b"connection", b"close")])
            return
        if origin is not None:
            allowed = self._allowed(origin)
            if allowed is not None:
                extra.append((b"access-control-allow-origin", allowed))
                if allowed != b"*":
                    extra.append((b"vary", b"Origin"))
                if preflight is not None and scope["method"] == "OPTIONS":
                    await _preflight(scope, send_with)
                    return
                extra.append((b"access-control-expose-headers", b"x-request-id"))
        path = self.canonical_path(scope["path"])
        if path != scope["path"]:
            scope["path"] = path  # (the access log shows `raw_path`: what the client asked for)
        # An answer's body may skip `send_with` (which only acts on heads): routes.answer.Answer
        # sends it to `send` when the `send` it was given is this very `send_with`.
        scope["aurax.sends"] = (send_with, send)
        try:
            await self._handler(scope)(scope, receive, send_with)
        except Exception:
            log.exception("request %s failed", request_id)
            if not started:
                err = ProxyError(500, f"Internal error in the proxy (request {request_id})", code="internal_error")
                await send_error(scope, send_with, err, [])
            # else: the answer is under way; left unfinished, the server cuts the connection

    def _allowed(self, origin: bytes) -> bytes | None:
        if self._any_origin:
            return b"*"
        return origin if origin in self._origins else None


async def _preflight(scope, send) -> None:
    requested = next((v for n, v in scope["headers"] if n == b"access-control-request-headers"), b"")
    headers = [(b"access-control-allow-methods", _PREFLIGHT_METHODS), (b"access-control-max-age", b"86400"),
               (b"content-length", b"0")]
    if requested:
        headers.append((b"access-control-allow-headers", requested))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def send_error(scope, send, err: ProxyError, extra: list) -> None:
    """A whole error answer, given before or without a route, in the client's dialect."""
    body = answer_error(scope, err)
    await send({"type": "http.response.start", "status": err.status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})


def answer_error(scope, err: ProxyError) -> bytes:
    """The body of an error given before any route is known, in the dialect the client speaks."""
    return guess(scope["path"], header_map(scope["headers"]), scope["query_string"]).render_error(err)


# The request headers the proxy itself reads (the rest are only passed on, never decoded).
READ_HEADERS = {
    name.encode(): name
    for name in ("authorization", "x-api-key", "x-goog-api-key", "content-type", "content-length",
                 "anthropic-version", "cf-connecting-ip", "x-forwarded-for")
}


def header_map(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers the proxy reads, by (lower-case) name; the first of repeated ones wins."""
    out: dict[str, str] = {}
    for name, value in raw:
        key = READ_HEADERS.get(name)
        if key is not None and key not in out:
            out[key] = value.decode("latin-1")
    return out


def client_ip(scope, headers: dict[str, str], proxy: Proxy) -> str | None:
    """The caller's address: Cloudflare's header when trusted, else the socket's peer, or the
    nearest untrusted hop of `X-Forwarded-For` when the peer is a trusted proxy."""
    if proxy.trust_cloudflare:
        cf = headers.get("cf-connecting-ip")
        if cf:
            return cf.strip()
    peer = scope.get("client")
    ip = peer[0] if peer else None
    if ip and proxy.trusted_proxies and _trusted(ip, proxy):
        forwarded = headers.get("x-forwarded-for")
        if forwarded:
            for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
                if not _trusted(hop, proxy):
                    return hop
    return ip


def _trusted(ip: str, proxy: Proxy) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in proxy.trusted_proxies)
