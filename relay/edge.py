"""What every request passes through first: an id, the canonical path, and who is asking.

`RequestEdge` is plain ASGI (no per-request task or body copy): it names the request, maps the
many base-URL spellings clients use onto the route table's paths, and puts `x-request-id` on
every answer, errors and 404s included.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
from typing import Callable

from .config import Proxy
from .errors import ProxyError, render

# What Cloudflare accepts in front of us; the server itself would buffer any amount.
MAX_HEADER_BYTES = 32 * 1024


class RequestEdge:
    def __init__(self, app, canonical_path: Callable[[str], str]) -> None:
        self.app = app
        self.canonical_path = canonical_path
        # 32 hex digits: this process's random half, then a counter (no random read per request)
        self._ids = map(f"{os.urandom(8).hex()}{{:016x}}".format, itertools.count())

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = next(self._ids)
        scope["aurax.request_id"] = request_id
        header = (b"x-request-id", request_id.encode())
        if sum(len(n) + len(v) for n, v in scope["headers"]) > MAX_HEADER_BYTES:
            await _refuse(scope, send, header, ProxyError(
                431, f"Request headers are larger than {MAX_HEADER_BYTES // 1024} KB", code="headers_too_large"))
            return
        path = self.canonical_path(scope["path"])
        if path != scope["path"]:
            scope["path"] = path

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


async def _refuse(scope, send, request_id_header, err: ProxyError) -> None:
    dialect = guess_dialect(scope["path"], header_map(scope["headers"]), scope["query_string"])
    body = render(dialect, err)
    await send({"type": "http.response.start", "status": err.status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), request_id_header]})
    await send({"type": "http.response.body", "body": body})


def header_map(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Request headers by (lower-case) name; the first of repeated ones wins."""
    out: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1")
        if key not in out:
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


def guess_dialect(path: str, headers: dict[str, str], query: bytes) -> str:
    """For answers given before any route is known (404, 405): the dialect the client speaks."""
    if path.startswith("/v1beta/") or "x-goog-api-key" in headers or b"key=" in query:
        return "gemini"
    if "anthropic-version" in headers or "x-api-key" in headers or path.startswith("/v1/messages"):
        return "anthropic"
    return "openai"
