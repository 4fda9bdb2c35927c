"""Reading request bodies on the open internet: a deadline, and a cap on what the process holds.

Anybody may send a body: any key that is not a proxy token is a passthrough key. Without
limits, 20 connections each trickling 24 MB held 480 MB for as long as they liked (issue #16).
So each body must have arrived whole within `[proxy] body_timeout_s` (else 408), and the body
bytes that all requests of the process hold at once are capped at `[proxy] max_buffered_mb`:
a request whose reading would pass the cap gets 503, and what it had read goes at once. A body
is counted from its first byte until its request is over (it is re-sent on failover), and
`Intake.body` is a context manager so that no way out of a request can keep its count.

Answers given before a body was read to its end close the connection: the rest of the body
would only be read to be thrown away.
"""

from __future__ import annotations

import asyncio

import httpx

from .alarms import Alarms
from .config import Proxy
from .errors import ProxyError

_CLOSE = {"connection": "close"}


class ClientGone(Exception):
    """The client went away while its request was being read or served."""


class Intake:
    """The request bodies of one process, and how many of their bytes it holds."""

    def __init__(self, proxy: Proxy, alarms: Alarms) -> None:
        self.limit = proxy.max_body_bytes
        self.cap = proxy.max_buffered_bytes
        self.timeout = proxy.body_timeout_s
        self.held = 0  # body bytes of all open requests
        self._alarms = alarms

    def body(self, receive, headers: dict[str, str]) -> Body:
        """`async with intake.body(receive, headers) as body:` the request's whole body, counted
        against the cap until the block ends. Raises ProxyError (408, 413, 503) or ClientGone."""
        return Body(self, receive, headers)

    def _busy(self) -> ProxyError:
        return ProxyError(503, "The proxy holds too many request bodies right now; retry shortly",
                          code="server_busy", headers={"retry-after": "1", **_CLOSE})

    def _too_large(self) -> ProxyError:
        return ProxyError(413, f"Request body is larger than the {self.limit / (1024 * 1024):g} MB limit",
                          code="request_too_large", headers=dict(_CLOSE))

    def _too_slow(self) -> ProxyError:
        return ProxyError(408, f"The request body did not arrive within {self.timeout:g} s",
                          code="body_timeout", headers=dict(_CLOSE))


class Body:
    __slots__ = ("_intake", "_receive", "_headers", "_held")

    def __init__(self, intake: Intake, receive, headers: dict[str, str]) -> None:
        self._intake = intake
        self._receive = receive
        self._headers = headers
        self._held = 0

    async def __aenter__(self) -> bytes:
        # (when __aenter__ raises, __aexit__ is not called: what was counted goes here)
        try:
            return await self._read()
        except BaseException:
            self._release()
            raise

    async def __aexit__(self, *exc) -> None:
        self._release()

    def _release(self) -> None:
        self._intake.held -= self._held
        self._held = 0

    def _take(self, size: int) -> None:
        intake = self._intake
        if intake.held + size > intake.cap:
            raise intake._busy()
        intake.held += size
        self._held += size

    async def _read(self) -> bytes:
        intake = self._intake
        declared = self._headers.get("content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > intake.limit:
                raise intake._too_large()
            if intake.held + int(declared) > intake.cap:
                raise intake._busy()  # known before a byte is read: none is
        chunks, size = [], 0
        try:
            with intake._alarms.deadline(intake.timeout):
                while True:
                    message = await self._receive()
                    if message["type"] == "http.disconnect":
                        raise ClientGone()
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > intake.limit:
                        raise intake._too_large()
                    self._take(len(chunk))
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        except TimeoutError:
            raise intake._too_slow() from None


# A passthrough body larger than this (or of unknown length) is sent upstream as it arrives: the
# proxy has nothing to read in it, so it holds no more of it than one chunk at a time.
STREAM_OVER_BYTES = 64 * 1024
_SNIFF_BYTES = 4096  # of a streamed body, read before it goes on: the record's model is in them


def streams(headers: dict[str, str]) -> bool:
    """Whether a passthrough request's body is to be streamed rather than read whole."""
    declared = headers.get("content-length")
    return declared is None or not declared.isdigit() or int(declared) > STREAM_OVER_BYTES


class Streamed(httpx.AsyncByteStream):
    """A request body passed on as it arrives, under the same deadline and size limit as a body
    read whole; only the chunk in hand counts against the process's cap.

    `first()` reads its first few KB (what a record can tell of the request); iterating sends them
    and the rest, from whichever task the transport writes in. What went wrong on the client's
    side is kept in `failure`: the upstream request then fails too, and the client is told this,
    not that. `on_done` is called once the body is over (the server's `receive` is then free for
    the disconnect watcher).
    """

    def __init__(self, intake: Intake, receive, headers: dict[str, str], on_done) -> None:
        self._intake = intake
        self._receive = receive
        declared = headers.get("content-length", "")
        self.length = int(declared) if declared.isdigit() else None
        self._first: bytes | None = None
        self._more = True
        self._size = 0
        self._held = 0
        self._until = 0.0
        self._on_done = on_done
        self._done = False
        self.failure: BaseException | None = None

    async def first(self) -> bytes:
        intake = self._intake
        if self.length is not None and self.length > intake.limit:
            raise intake._too_large()
        self._until = asyncio.get_running_loop().time() + intake.timeout
        head = [await self._next()]
        size = len(head[0])
        while self._more and size < _SNIFF_BYTES:  # enough to read a model name in
            head.append(await self._next())
            size += len(head[-1])
        self._first = b"".join(head)
        self._hold(len(self._first))
        return self._first

    async def _next(self) -> bytes:
        try:
            with self._intake._alarms.deadline_at(self._until):
                message = await self._receive()
        except TimeoutError:
            raise self._intake._too_slow() from None
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        self._size += len(chunk)
        if self._size > self._intake.limit:
            raise self._intake._too_large()
        self._more = message.get("more_body", False)
        if not self._more:
            self._finish()
        return chunk

    async def __aiter__(self):
        try:
            first, self._first = self._first, None
            if first:
                yield first
            self._hold(0)
            while self._more:
                chunk = await self._next()
                if chunk:
                    self._hold(len(chunk))
                    yield chunk
                    self._hold(0)
        except BaseException as exc:
            self.failure = exc
            raise
        finally:
            self.close()

    def _hold(self, size: int) -> None:
        intake = self._intake
        intake.held += size - self._held
        self._held = size

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._on_done()

    def close(self) -> None:
        """The body is over (or abandoned): nothing of it is held any more."""
        self._hold(0)
        self._finish()

    async def aclose(self) -> None:
        self.close()
