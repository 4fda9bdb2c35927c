"""A small keep-alive HTTP/1.1 load driver: raw asyncio protocol + httptools' response parser.

Used for the streaming scenarios (time to first chunk per stream, every stream checked byte for
byte) and, when `wrk` is not installed, for the non-stream ones too. Every answer is checked:
a non-2xx status or a body that differs from the expected bytes (or does not match the expected
pattern whole: translated streams carry ids the proxy makes up) is counted, never timed as a
success.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from dataclasses import dataclass, field

import httptools


def build_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ConnectionBroken(Exception):
    pass


class _Conn(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.parts: list[bytes] = []
        self.first_data: float | None = None
        self.sent_at = 0.0
        self.closed = False
        self.keep_alive = True

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionBroken(f"bad HTTP from server: {exc}"))
            self.transport.close()

    def connection_lost(self, exc) -> None:
        self.closed = True
        self._fail(ConnectionBroken(str(exc) if exc else "server closed the connection"))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def on_headers_complete(self) -> None:
        # Read here, not once the answer is complete: by then the parser has reset for the
        # next answer and, knowing nothing of its framing, says the connection will close.
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.parts.append(body)
        # The first SSE data line (for non-event bodies the value is simply unused).
        if self.first_data is None and (
            b"data:" in body or (len(self.parts) > 1 and b"data:" in b"".join(self.parts))
        ):
            self.first_data = time.perf_counter()

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.parser.get_status_code())

    async def request(self, data: bytes) -> tuple[int, bytes, float | None, float]:
        """(status, body, seconds to the first `data:` line or None, seconds to the whole answer)."""
        if self.closed:
            raise ConnectionBroken("connection is closed")
        self.parts = []
        self.first_data = None
        self.waiter = asyncio.get_running_loop().create_future()
        self.sent_at = t0 = time.perf_counter()
        self.transport.write(data)
        status = await self.waiter
        done = time.perf_counter()
        body = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
        ttfc = None if self.first_data is None else self.first_data - t0
        if not self.keep_alive:
            self.transport.close()
            self.closed = True
        return status, body, ttfc, done - t0


async def _connect(host: str, port: int) -> _Conn:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(_Conn, host, port)
    return conn


@dataclass
class Result:
    tool: str = "python"
    requests: int = 0  # answers received
    ok: int = 0
    non_2xx: int = 0
    wrong_body: int = 0
    socket_errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    ttfc: list[float] = field(default_factory=list)  # seconds, successful streams only
    first_bad: bytes | None = None  # the first wrong answer, for a look afterwards
    latency_p50: float | None = None  # seconds
    latency_p99: float | None = None

    @property
    def errors(self) -> int:
        return self.non_2xx + self.wrong_body + self.socket_errors

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0


def _check(res: Result, status: int, body: bytes, expected: bytes | re.Pattern[bytes]) -> bool:
    res.requests += 1
    if not 200 <= status < 300:
        res.non_2xx += 1
    elif body != expected if isinstance(expected, bytes) else expected.fullmatch(body) is None:
        res.wrong_body += 1
    else:
        res.ok += 1
        return True
    if res.first_bad is None:
        res.first_bad = b"status %d\n" % status + body[:4096]
    return False


async def drive(host: str, port: int, request: bytes, expected: bytes | re.Pattern[bytes], *, connections: int,
                duration: float | None = None, count: int | None = None, stream: bool = False,
                spread: float = 0.0) -> Result:
    """Keep `connections` requests in flight for `duration` seconds or until `count` answers.

    `stream`: measure time to the first `data:` line of each answer (TTFC) too.
    `spread`: start the connections' first requests evenly over this many seconds instead of
    all at once. Streams of one length started together end together and start again
    together: without a spread every stream would arrive in a herd with all the others.
    """
    res = Result()
    conns = await asyncio.gather(*(_connect(host, port) for _ in range(connections)))
    budget = [count if count is not None else -1]
    start = time.perf_counter()
    deadline = start + duration if duration is not None else float("inf")
    if duration is not None:
        spread = min(spread, duration / 2)  # every connection starts well before the end

    async def worker(i: int, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        conn = conns[i]
        while True:
            if budget[0] == 0 or time.perf_counter() >= deadline:
                return
            if budget[0] > 0:
                budget[0] -= 1
            try:
                if conn.closed:
                    conn = conns[i] = await _connect(host, port)  # (closed at the end with the rest)
                status, body, ttfc, latency = await conn.request(request)
            except (ConnectionBroken, OSError) as exc:
                res.socket_errors += 1
                if res.first_bad is None:
                    res.first_bad = f"socket error: {exc}".encode()
                await asyncio.sleep(0.01)
                continue
            if _check(res, status, body, expected):
                res.latencies.append(latency)
                if stream:
                    if ttfc is None:
                        res.wrong_body += 1
                        res.ok -= 1
                    else:
                        res.ttfc.append(ttfc)

    await asyncio.gather(*(worker(i, spread * i / connections) for i in range(connections)))
    res.elapsed = time.perf_counter() - start
    res.latency_p50 = percentile(res.latencies, 50)
    res.latency_p99 = percentile(res.latencies, 99)
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    return res


async def get(host: str, port: int, path: str) -> tuple[int, bytes]:
    conn = await _connect(host, port)
    try:
        status, body, _, _ = await conn.request(build_request("GET", path, f"{host}:{port}", {}))
        return status, body
    finally:
        conn.transport.close()


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
