"""The client side of a request: its answer, sent whole or streamed as the upstream sends it.

Streaming has no buffering and little work per chunk: one timer watches a whole answer for
silence (keep-alive pings, the idle timeout), event streams are passed on as received, and a
stream that breaks after its first byte ends with an error event in the client's dialect.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from relay import headers as header_rules
from relay.alarms import Alarm, Alarms
from relay.dialects import Dialect
from relay.errors import ProxyError
from relay.records import Call
from relay.streams import ArrayFraming
from relay.transport import header, raise_as_httpx
from relay.upstream import reader

JSON = [(b"content-type", b"application/json")]
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
PING = b": ping\n\n"
log = logging.getLogger("uvicorn.error")
SHUTTING_DOWN = ProxyError(503, "The proxy is shutting down; retry the request", code="shutting_down")


class Answer:
    """The client side of one request: what has been sent, and sending more.

    `send` takes the answer's head; the body goes to `body_send` when given: the server's own
    `send`, past the edge's wrapper (which only acts on heads), a coroutine frame less a chunk.
    """

    __slots__ = ("_send", "_body_send", "call", "started", "sse")

    def __init__(self, send, call: Call, body_send=None) -> None:
        self._send = send
        self._body_send = body_send or send
        self.call = call
        self.started = False
        self.sse = False

    @property
    def body_send(self):
        """Where body messages go; a streamed body's chunks after the first go there directly."""
        return self._body_send

    async def start(self, status: int, headers: list) -> None:
        self.started = True
        self.call.status = status
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, data: bytes, more: bool = True) -> None:
        if data:
            self.call.first_byte()
        if not more:
            self.call.finished = True
        await self._body_send({"type": "http.response.body", "body": data, "more_body": more})

    async def whole(self, status: int, headers: list, data: bytes) -> None:
        await self.start(status, headers + [(b"content-length", str(len(data)).encode())])
        await self.body(data, more=False)

    async def error(self, dialect: Dialect, err: ProxyError) -> None:
        call = self.call
        err = scrubbed(err, call)
        if call.error is None:
            call.error = err.message
        if call.ttfb_ms is None:
            # Nothing of an answer went out (at most pings and their 200): the record says what
            # really happened, and nothing is billed.
            call.status = err.status
            call.billable = False
        if not self.started:
            extra = [(k.encode(), v.encode()) for k, v in err.headers.items()]
            await self.whole(err.status, JSON + extra, dialect.render_error(err))
        elif self.sse and not self.call.finished:
            await self.body(dialect.error_event(err, 0), more=False)  # after pings, no event
        # else: a started body of another kind cannot carry an error; left unfinished, the
        # server cuts the connection, and the client sees an incomplete answer

    async def ping(self) -> None:
        """A comment line that keeps an event stream open while the upstream thinks."""
        if not self.started:
            self.sse = True
            await self.start(200, list(SSE_HEADERS))
        await self._body_send({"type": "http.response.body", "body": PING, "more_body": True})


class Silence:
    """One alarm for a whole answer that interrupts a read after `interval` seconds of silence.

    Arming an alarm per chunk would cost more than the chunk's own work: this one is set once
    and, each time it is due, looks whether a chunk came meanwhile (`touch` only notes the time).
    It only interrupts a read, never a send, so no chunk is ever half sent.
    """

    __slots__ = ("_alarms", "_loop", "_task", "_interval", "_last", "_alarm", "reading", "fired")

    def __init__(self, alarms: Alarms, interval: float) -> None:
        self._alarms = alarms
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._interval = interval
        self._last = self._loop.time()
        self.reading = False
        self.fired = False
        self._alarm = alarms.at(self._last + interval, self._due)

    def touch(self) -> float:
        """A chunk came: note the time (returned)."""
        self._last = self._loop.time()
        return self._last

    def _due(self) -> None:
        now = self._loop.time()
        due = self._last + self._interval
        if now < due or not self.reading:
            self._alarm = self._alarms.at(max(due, now + self._interval * 0.1), self._due)
            return
        self.fired = True
        self._last = now
        self._alarm = self._alarms.at(now + self._interval, self._due)
        self._task.cancel()

    def uncancel(self) -> int:
        """After its interruption: take it back; the cancellations left (others' to honour)."""
        self.fired = False
        return self._task.uncancel()

    def cancel(self) -> None:
        self._alarm.cancel()


class HeadPings:
    """Keep-alive pings for an event-stream client while the upstream has not answered at all.

    An alarm, not a task: most upstreams answer long before `interval`, and a task (with
    asyncio.wait around it) cost every stream two more trips through the event loop on its
    way to the first chunk. When due, one ping goes out from a short task of its own; `stop`
    hands back a ping still in flight so the caller can wait for it: the answer never has two
    senders at once. A ping that fails means the client has gone.
    """

    __slots__ = ("_answer", "_interval", "_alarms", "_owner", "_timer", "_sending")

    def __init__(self, answer: Answer, alarms: Alarms, interval: float) -> None:
        self._answer = answer
        self._interval = interval
        self._alarms = alarms
        self._owner = asyncio.current_task()
        self._sending: asyncio.Task | None = None
        self._timer: Alarm | None = alarms.later(interval, self._due)

    def _due(self) -> None:
        self._sending = asyncio.get_running_loop().create_task(self._ping())

    async def _ping(self) -> None:
        try:
            await self._answer.ping()
        except Exception:
            self._timer = None
            self._answer.call.client_gone = True
            self._owner.cancel()
            return
        if self._timer is not None:  # not stopped meanwhile
            self._timer = self._alarms.later(self._interval, self._due)

    def stop(self) -> asyncio.Task | None:
        """No more pings; the one being sent, if any, for the caller to await."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sending = self._sending
        return sending if sending is not None and not sending.done() else None


async def read_all(response: httpx.Response, alarms: Alarms, idle_s: float, limit: int | None = None) -> bytes:
    """A whole (small) upstream body; `idle_s` bounds each wait for the next chunk."""
    source, parts, size = reader(response), [], 0
    silence = Silence(alarms, idle_s)  # one alarm, where asyncio.timeout re-arms a timer per chunk
    try:
        while limit is None or size < limit:
            silence.reading = True
            try:
                chunk = await source.read()
            except asyncio.CancelledError:
                if silence.fired and silence.uncancel() == 0:
                    raise TimeoutError from None
                raise
            silence.reading = False
            if not chunk:
                break
            silence.touch()
            parts.append(chunk)
            size += len(chunk)
    finally:
        silence.cancel()
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def stream(response: httpx.Response, pipe, answer: Answer, alarms: Alarms, keepalive_s: float,
                 idle_s: float) -> None:
    """Pass an upstream body on chunk by chunk through `pipe`; pings while an event stream is
    silent; an error event (or a cut connection, for other bodies) when the upstream fails."""
    call = answer.call
    if not answer.started:
        await answer.start(response.status_code, _stream_headers(response, pipe, call.secrets))
    read = reader(response).read_unmapped  # its errors are mapped where it is awaited
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    silence = Silence(alarms, keepalive_s if pipe.sse else idle_s)
    heard = loop.time()
    send_body = None  # after the first chunk: the server's send, called directly (a frame less a chunk)
    try:
        while True:
            silence.reading = True
            try:
                chunk = await read()
            except asyncio.CancelledError:
                silence.reading = False  # the ping below may wait on a slow client: never cut it
                if not silence.fired or call.client_gone or call.stopping:
                    raise
                silence.uncancel()
                if loop.time() - heard >= idle_s * 0.999:
                    raise ProxyError(504, f"The upstream went silent for {idle_s:g} s", code="upstream_idle") from None
                await answer.ping()  # (the client only ever has whole events: pipes hold back the rest)
                continue
            except Exception as exc:  # the transport's own error: as httpx's (only a read's)
                raise_as_httpx(exc)
            silence.reading = False
            heard = silence.touch()
            if not chunk:
                break
            out = pipe.feed(chunk)
            if out:
                if send_body is None:
                    await answer.body(out)  # the first: the time to first byte is noted
                    send_body = answer.body_send
                else:
                    await send_body({"type": "http.response.body", "body": out, "more_body": True})
        tail = pipe.end()
        if pipe.sse and not pipe.complete:
            call.error = "upstream stream ended before it was complete"
        elif pipe.failed:
            call.error = pipe.failed
        await answer.body(tail, more=False)
    except ProxyError as err:
        await _end_badly(pipe, answer, err)
    except httpx.HTTPError as exc:
        await _end_badly(pipe, answer, ProxyError(502, f"The upstream stream broke off: {type(exc).__name__}",
                                                  code="upstream_cut"))
    except asyncio.CancelledError:
        if not call.stopping:
            raise
        task.uncancel()
        await _end_badly(pipe, answer, SHUTTING_DOWN)
    except Exception:  # a bug in a translator or the meter must still end the stream properly
        log.exception("request %s: the stream could not be passed on", call.request_id)
        await _end_badly(pipe, answer, ProxyError(502, "The proxy could not pass this stream on", code="stream_error"))
    finally:
        silence.cancel()


def _stream_headers(response: httpx.Response, pipe, secrets: list[str]) -> list:
    hdrs = header_rules.downstream(response.headers.raw, secrets)
    if pipe.sse:
        return [h for h in hdrs if h[0] not in (b"content-type", b"cache-control")] + SSE_HEADERS
    if isinstance(pipe, ArrayFraming):
        return [h for h in hdrs if h[0] != b"content-type"] + JSON
    length = header(response.headers, b"content-length")
    if length is not None:
        hdrs.append((b"content-length", length.encode()))
    return hdrs


def scrubbed(err: ProxyError, call: Call) -> ProxyError:
    """`err` as a client may see it: no key of the request's in its message or body."""
    if not call.secrets:
        return err
    message = call.scrub(err.message)
    raw = getattr(err, "raw", None)
    if message == err.message and raw is None:
        return err
    clean = type(err).__new__(type(err))  # (copy.copy would call __init__ with the wrong arguments)
    clean.__dict__.update(err.__dict__)
    clean.args = (message,)
    clean.message = message
    if raw is not None:
        clean.raw = call.scrub_bytes(raw)
    return clean


async def _end_badly(pipe, answer: Answer, err: ProxyError) -> None:
    err = scrubbed(err, answer.call)
    answer.call.error = err.message
    tail = pipe.fail(err)
    if tail is not None:
        await answer.body(tail, more=False)
    # else: a binary body cannot carry an error; returning unfinished makes the server cut it


class Watcher:
    """Cancels a request's work as soon as its client goes away.

    Listening needs a task of its own; most requests are over within a fraction of a second, so
    it starts only after `WATCH_AFTER_S` (an alarm costs a fiftieth of a task) — a client that
    left earlier is noticed then, well within the second the spec allows.
    """

    WATCH_AFTER_S = 0.25
    __slots__ = ("_receive", "_call", "_task", "_timer", "_listener")

    def __init__(self, receive, call: Call, task: asyncio.Task, alarms: Alarms) -> None:
        self._receive, self._call, self._task = receive, call, task
        self._listener: asyncio.Task | None = None
        self._timer = alarms.later(self.WATCH_AFTER_S, self._start)

    def _start(self) -> None:
        self._listener = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                if not self._call.finished:
                    self._call.client_gone = True
                    self._task.cancel()
                return

    def stop(self) -> None:
        self._timer.cancel()
        if self._listener is not None:
            self._listener.cancel()


