"""uvicorn's httptools protocol with the deadlines uvicorn lacks (optional).

    uvicorn app:app --http relay.protocol:HttpToolsWithDeadlines ...

uvicorn (0.54, `protocols/http/httptools_impl.py`) arms a timer only after an answer, for the
keep-alive wait; the first byte of a new request disarms it. So a connection that sends nothing
after connecting, or sends a request's headers a byte at a time, is held for as long as its
client likes: 2,000 such connections stayed open for minutes (issue #16). And once an answer is
complete, the rest of a request body the app never read is still read and thrown away, however
slowly it comes, each byte keeping the connection alive.

Nor does it bound the size of a request's head: httptools hands it a header in pieces, and it
keeps them all (64 MB of one header value: 64 MB more RSS, and each piece slower than the last).

This protocol is uvicorn's own (same parser, same code path for requests) with three rules more:

- a request's headers must be complete `AURAX_HEADER_TIMEOUT_S` seconds (default 10, read at
  start-up) after the connection opened or after the request's first byte; else the connection
  is closed, without an answer (a client that sent nothing may be a browser's pre-connection,
  which must not read a stray 408 as the answer to its next request);
- a request's head (request line and headers) may take `MAX_HEAD_BYTES`; a longer one gets 431
  and the connection is closed (the app refuses more than 32 KB of headers anyway);
- when an answer is complete before its request's body was read to the end, the connection is
  closed.

The app's own deadline for bodies (`[proxy] body_timeout_s`) covers the time between the two.
"""

from __future__ import annotations

import asyncio
import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_S = float(os.environ.get("AURAX_HEADER_TIMEOUT_S") or 10)
MAX_HEAD_BYTES = 64 * 1024


class HttpToolsWithDeadlines(HttpToolsProtocol):
    # One timer a connection, not one a request (arming one costs 3-4 µs): a request's first
    # byte only notes the time, and the timer, when due, looks whether headers are still awaited.
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._headers_since: float | None = None  # when the headers awaited now began to be
        self._header_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # of the head awaited now, counted in whole reads

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        # Counted after the parser has seen it: a read that completes a head is no head's (it
        # may hold a body). So a head is cut within MAX_HEAD_BYTES and one read of the socket.
        inside_head = self._headers_since is not None
        super().data_received(data)
        if inside_head and self._headers_since is not None and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._await_headers()

    def on_headers_complete(self) -> None:
        self._headers_since = None
        self._head_bytes = 0
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        if self.cycle is not None and self.cycle.more_body and not self.transport.is_closing():
            self.transport.close()  # the rest of its body would only be read to be thrown away
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        if self._headers_since is None:  # (a connection's first request began at its connection)
            self._headers_since = self.loop.time()
        if self._header_timer is None:
            self._header_timer = self.loop.call_at(self._headers_since + HEADER_TIMEOUT_S, self._due)

    def _due(self) -> None:
        self._header_timer = None
        if self._headers_since is None or self.transport.is_closing():
            return  # no headers awaited: the next request's first byte sets the timer again
        due = self._headers_since + HEADER_TIMEOUT_S
        if self.loop.time() < due:
            self._header_timer = self.loop.call_at(due, self._due)
        else:
            self.transport.close()

    def _refuse_head(self) -> None:
        message = f"Request head is larger than {MAX_HEAD_BYTES // 1024} KB".encode()
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(message), message))
        self.transport.close()
