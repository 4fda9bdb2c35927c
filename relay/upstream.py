"""The upstream side: one pooled client per process, the URL of each endpoint on each channel.

The client is made by the ASGI lifespan, or on the first request by hosts that send no lifespan
events (some serverless ones); `aclose` is called by the lifespan's end.
"""

from __future__ import annotations

import asyncio
import atexit
from typing import AsyncIterator, Protocol
from urllib.parse import quote, unquote_to_bytes

import httpx
from cachetools import LRUCache

from .alarms import Alarms
from .config import Channel, Proxy
from .headers import carries_token
from .inflate import decoded
from .transport import AiohttpTransport, UpstreamClient, headers_from

class Reader(Protocol):
    async def read(self) -> bytes: ...

    # `read` whose errors may be the transport's own (`transport.raise_as_httpx` maps them)
    async def read_unmapped(self) -> bytes: ...


class Upstream:
    def __init__(self, proxy: Proxy, alarms: Alarms, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._proxy = proxy
        self._alarms = alarms
        self._given_transport = transport
        self._transport: httpx.AsyncBaseTransport | None = None
        self._client: httpx.AsyncClient | None = None
        self._at_exit = None
        timeout = httpx.Timeout(connect=proxy.connect_timeout_s, read=None, write=None,
                                pool=proxy.connect_timeout_s)
        self._timeout = timeout
        self._extensions = {"timeout": timeout.as_dict()}
        # Parsing a URL is a fifth of building an httpx.Request; a relay asks for few distinct ones.
        self._urls: LRUCache[str, httpx.URL] = LRUCache(1024)

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client; the lifespan makes it at start-up, hosts without one on first use."""
        if self._client is None:
            transport = self._transport = self._given_transport or AiohttpTransport()
            self._client = UpstreamClient(
                transport=transport, timeout=self._timeout, follow_redirects=False, trust_env=False
            )
            if isinstance(transport, AiohttpTransport):
                # A host that sends no lifespan events never calls `aclose`: close at exit.
                self._at_exit = transport.close_now
                atexit.register(self._at_exit)
        return self._client

    def start(self) -> None:
        self.client  # noqa: B018 (made now, not on the first request)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._at_exit is not None:
            atexit.unregister(self._at_exit)
            self._at_exit = None

    def request(self, method: str, url: str, headers: list, body: bytes) -> httpx.Request:
        """An httpx.Request with exactly these headers plus Host and Content-Length.

        Made with `stream=`, so httpx adds no headers of its own: its `_prepare` looks each
        default header up in a linear scan, a tenth of a request's CPU in the profile.
        """
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = httpx.URL(url)
            if "?" not in url:  # a client's query string would make every entry new
                self._urls[url] = parsed
        headers.append((b"host", parsed.netloc))
        if body or method in ("POST", "PUT", "PATCH"):
            headers.append((b"content-length", str(len(body)).encode()))
        request = httpx.Request(method, parsed, headers=headers_from(headers), stream=httpx.ByteStream(body),
                                extensions=self._extensions)
        # What request.read() sets, without its check of the stream against typing.Iterable
        # (a third of the cost of building the request)
        request._content = body
        return request

    def streaming_request(self, method: str, url: str, headers: list, chunks: httpx.AsyncByteStream,
                          length: int | None) -> httpx.Request:
        """An httpx.Request whose body goes upstream as it arrives from the client (chunked
        when the client did not say its length)."""
        parsed = httpx.URL(url)
        headers.append((b"host", parsed.netloc))
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        return httpx.Request(method, parsed, headers=headers_from(headers), stream=chunks, extensions=self._extensions)

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send and wait for the answer's head; `first_byte_timeout_s` bounds the wait.

        Straight to the client's transport: a relay needs none of `client.send`'s redirect, auth
        and cookie handling, and the stream wrapper it adds makes a reference cycle of every
        answer (measured: about a sixth of a request's CPU, with the garbage collection).
        """
        if self._client is None:
            self.client  # noqa: B018 (a host without lifespan events: made on first use)
        with self._alarms.deadline(self._proxy.first_byte_timeout_s):
            response = await self._transport.handle_async_request(request)
        # compressed although `accept-encoding: identity` was sent: text and JSON are decoded
        return decoded(response, reader) or response


def reader(response: httpx.Response) -> Reader:
    chunks = response.extensions.get("chunks")
    if chunks is not None:
        return chunks
    # Other transports (tests' mocks) may hand over a body that was read already: its stream
    # still holds the bytes as sent (`content` would be decoded).
    if response.is_stream_consumed:
        stream = response.stream
        return _Lookahead(stream.__aiter__() if isinstance(stream, httpx.ByteStream) else _once(response.content))
    return _Lookahead(response.aiter_raw())


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


class _Lookahead:
    """Abandon-safe reads over any async iterator (mock transports in tests)."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks.__aiter__()
        self._next: asyncio.Future[bytes] | None = None

    async def read(self) -> bytes:
        if self._next is None:
            self._next = asyncio.ensure_future(anext(self._chunks, b""))
        chunk = await asyncio.shield(self._next)
        self._next = None
        return chunk

    read_unmapped = read  # its errors are httpx's already


def url(channel: Channel, endpoint: str, model: str, query: bytes, relay: bool, token_prefix: bytes = b"") -> str:
    """Where `endpoint` (a route row's upstream endpoint) of `model` lives on `channel`.

    `model` is the upstream's name for it; it is quoted so it can never add a path segment.
    The client's query goes on without `key=` (a relayed request's key is its proxy token) and
    without any parameter that holds a proxy token, however it is encoded.
    """
    query = forwarded_query(query, relay, token_prefix)
    kind = channel.kind
    target = kind.url(channel.base_url, endpoint, model)
    if kind.needs_api_version:
        version = b"api-version=" + quote(channel.api_version or "", safe="").encode()
        query = query + b"&" + version if query else version
    return f"{target}?{query.decode('latin-1')}" if query else target


def forwarded_query(query: bytes, relay: bool, token_prefix: bytes) -> bytes:
    """The client's query string as it may go upstream: without `key=` when `relay`, and without
    any parameter that holds a proxy token (`token_prefix`), also percent-encoded."""
    if not query or not ((relay and b"key=" in query) or (token_prefix and (token_prefix in query or b"%" in query))):
        return query
    kept = []
    for part in query.split(b"&"):
        if relay and part.startswith(b"key="):
            continue
        # (the whole parameter, its name too: `?sk-ax-…` or `?sk-ax-…=1` holds a token as well)
        if token_prefix and carries_token(unquote_to_bytes(part.replace(b"+", b" ")), token_prefix):
            continue
        kept.append(part)
    return b"&".join(kept)
