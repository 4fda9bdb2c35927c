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
