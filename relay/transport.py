"""The upstream connection pool: httpx's client interface over aiohttp's connections.

httpx's own transport scans its whole pool on every request and caps a proxy at a few hundred
requests a second; aiohttp's pool does not (README, "Performance"). Keeping `httpx.AsyncClient` in
front means tests swap this transport for `httpx.MockTransport` or respx.

Neither side keeps cookies: an upstream's `Set-Cookie` must never ride along on another user's
request.
"""

from __future__ import annotations

import contextlib
import ssl
import sys
import threading
from typing import AsyncIterator, Iterator, NoReturn

import httpx


def _import_aiohttp():
    """`import aiohttp`, reading the system's CA certificates once instead of twice.

    At import aiohttp builds two TLS contexts, the verifying one and the one that verifies
    nothing, and reads the whole CA bundle into each (30-35 ms each here, of a 0.35 s cold
    start). The second has no use for it: while aiohttp is imported, this thread skips the
    reading for a context that verifies nothing; every other context, and every other thread,
    reads as always (tests/test_deploy.py compares aiohttp's verifying context with Python's
    default one).
    """
    if "aiohttp" in sys.modules or "set_default_verify_paths" in vars(ssl.SSLContext):
        import aiohttp  # (imported already, or an ssl module this was not made for)

        return aiohttp
    importing = threading.get_ident()
    read = ssl.SSLContext.set_default_verify_paths  # the C base class's method

    def read_unless_unverified(context: ssl.SSLContext) -> None:
        if context.verify_mode == ssl.CERT_NONE and threading.get_ident() == importing:
            return
        read(context)

    ssl.SSLContext.set_default_verify_paths = read_unless_unverified
    try:
        import aiohttp.connector
    finally:
        del ssl.SSLContext.set_default_verify_paths
    return aiohttp


aiohttp = _import_aiohttp()

# Most specific first: the first match wins.
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientError, httpx.NetworkError),
    (OSError, httpx.NetworkError),
)


def _translated(exc: Exception) -> Exception:
    """aiohttp's exception as the httpx one callers expect (the exception itself if unknown)."""
    for source, target in _ERRORS:
        if isinstance(exc, source):
            return target(str(exc) or type(exc).__name__)
    return exc


def as_httpx_error(exc: Exception) -> httpx.HTTPError | None:
    """The httpx error that `exc`, raised by `Chunks.read_unmapped`, stands for; None if none."""
    mapped = exc if isinstance(exc, httpx.HTTPError) else _translated(exc)
    return mapped if isinstance(mapped, httpx.HTTPError) else None


def raise_as_httpx(exc: Exception) -> NoReturn:
    """Raise, from inside `except`, the httpx error that `exc` stands for; `exc` itself if none
    (an httpx error already, or not the transport's)."""
    mapped = as_httpx_error(exc)
    if mapped is None or mapped is exc:
        raise exc
    raise mapped from exc


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # (a cancellation is no Exception: it passes as it is)
        raise_as_httpx(exc)


def headers_from(pairs) -> httpx.Headers:
    """httpx.Headers from byte pairs, skipping its per-header checks and conversions (which made
    two Headers a fifth of a request's CPU): names are kept as given, lower-cased once.

    The pairs come from an HTTP parser or from headers already checked (`relay.headers`).
    """
    headers = httpx.Headers()
    headers._list = [(name, name.lower(), value) for name, value in pairs]
    return headers


def header(headers: httpx.Headers, name: bytes) -> str | None:
    """The first value of header `name` (lower case), or None. For the headers the proxy reads
    (ASCII, one of each) that is what `headers.get` answers, without httpx's scan of every
    header to choose an encoding on each lookup."""
    for _, key, value in headers._list:
        if key == name:
            return value.decode("latin-1")
    return None


def str_pairs(headers: httpx.Headers) -> list[tuple[str, str]]:
    """The headers as aiohttp takes them, as `multi_items()` gives them (httpx's choice of
    encoding: UTF-8 covers ASCII), without its scan of every header first."""
    try:
        return [(key.decode(), value.decode()) for _, key, value in headers._list]
    except UnicodeDecodeError:
        return headers.multi_items()


class Chunks(httpx.AsyncByteStream):
    """An upstream answer's body, chunk by chunk as it arrives.

    `read()` is safe to abandon: a read cut short by a timeout loses nothing, and the next call
    carries on. The forwarder relies on that to send keep-alive pings while an upstream thinks.
    """

    __slots__ = ("_response", "read_unmapped")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        # `read` without its exception mapping, a coroutine frame less a chunk, for the stream
        # loop: it maps what the read raises with `raise_as_httpx`.
        self.read_unmapped = response.content.readany

    async def read(self) -> bytes:
        """The next chunk, or b"" at the end."""
        try:
            return await self._response.content.readany()
        except Exception as exc:  # a plain try: a context manager per chunk costs more than the read
            raise_as_httpx(exc)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while chunk := await self.read():
            yield chunk

    async def aclose(self) -> None:
        # An unfinished body cannot go back to the pool: close that connection.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int = 1000, keepalive_s: float = 60.0) -> None:
        self._limit = max_connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limit, limit_per_host=0, keepalive_timeout=self._keepalive_s, ttl_dns_cache=300
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session
        if session is None or session.closed:
            session = self._session = self._open()
        timeout = request.extensions.get("timeout", {})
        # a body read already (the proxy's own requests), else one still arriving, sent as it comes
        body = request._content if hasattr(request, "_content") else request.stream
        with _mapped():
            response = await session.request(
                request.method,
                str(request.url),
                headers=str_pairs(request.headers),
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=timeout.get("pool"), sock_connect=timeout.get("connect")
                ),
            )
        chunks = Chunks(response)
        # httpx wraps the stream in its own generator; the extension hands the forwarder ours.
        return httpx.Response(
            status_code=response.status,
            headers=headers_from(response.raw_headers),
            stream=chunks,
            request=request,
            extensions={"chunks": chunks},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def close_now(self) -> None:
        """Close the pool without an event loop: for hosts that never end the ASGI lifespan."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            connector = session.connector
            session.detach()
            # The synchronous half of `connector.close()`: transports are closed at once; its
            # awaitable half only waits for that, and there may be no running loop to await it.
            connector._close()


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        pass

    def set_cookie_header(self, request: httpx.Request) -> None:
        pass


class UpstreamClient(httpx.AsyncClient):
    """`httpx.AsyncClient` without a cookie jar (and without its cost on every answer)."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, value: object) -> None:
        pass


_NO_COOKIES = _NoCookies()
