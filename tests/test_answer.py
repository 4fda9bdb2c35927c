"""Reading an upstream body whole: the idle timeout bounds each wait, not the whole body."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from relay.alarms import Alarms
from routes.answer import read_all


def alarms() -> Alarms:
    return Alarms(0.005)


class Paced:
    """An upstream body that sends `parts` with `gap_s` before each; then stalls if told to."""

    def __init__(self, parts: list[bytes], gap_s: float, stall: bool = False) -> None:
        self._parts, self._gap_s, self._stall = list(parts), gap_s, stall

    async def read(self) -> bytes:
        if not self._parts:
            if self._stall:
                await asyncio.Event().wait()
            return b""
        await asyncio.sleep(self._gap_s)
        return self._parts.pop(0)


def response(body) -> httpx.Response:
    return httpx.Response(200, extensions={"chunks": body})


def test_a_slow_body_that_never_pauses_for_long_is_read_whole():
    body = Paced([b"a", b"b", b"c", b"d", b"e"], gap_s=0.04)  # 0.2 s in all, never 0.1 s silent
    assert asyncio.run(read_all(response(body), alarms(), idle_s=0.1)) == b"abcde"


def test_a_body_that_goes_silent_times_out_and_leaves_no_cancellation_behind():
    async def main():
        with pytest.raises(TimeoutError):
            await read_all(response(Paced([b"a"], gap_s=0.0, stall=True)), alarms(), idle_s=0.1)
        assert asyncio.current_task().cancelling() == 0
        await asyncio.sleep(0.15)  # no stray timer cancels the task later
        return "alive"

    assert asyncio.run(asyncio.wait_for(main(), 5)) == "alive"


def test_a_cancelled_read_stays_a_cancellation():
    async def main():
        task = asyncio.ensure_future(read_all(response(Paced([b"a"], gap_s=0.0, stall=True)), alarms(), idle_s=5))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(main(), 5))


def test_limit_stops_reading():
    body = Paced([b"x" * 10, b"y" * 10, b"z" * 10], gap_s=0.0)
    assert asyncio.run(read_all(response(body), alarms(), idle_s=1, limit=15)) == b"x" * 10 + b"y" * 10


def test_head_pings_while_the_upstream_thinks_then_none():
    from relay.records import Call
    from routes.answer import Answer, HeadPings

    sent = []

    async def send(message):
        sent.append(message)

    async def main():
        answer = Answer(send, Call("r", "openai", None))
        pings = HeadPings(answer, alarms(), 0.05)
        await asyncio.sleep(0.18)  # an upstream that thinks for ~3.5 intervals
        sending = pings.stop()
        if sending is not None:
            await sending
        count = len(sent)
        await asyncio.sleep(0.12)
        assert len(sent) == count  # stopped: no more
        return answer

    answer = asyncio.run(asyncio.wait_for(main(), 5))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200 and answer.sse
    assert [m["body"] for m in sent[1:]] == [b": ping\n\n"] * (len(sent) - 1) and len(sent) >= 3


def test_head_pings_never_start_when_the_answer_comes_first():
    from relay.records import Call
    from routes.answer import Answer, HeadPings

    async def send(message):
        raise AssertionError("nothing may be sent")

    async def main():
        pings = HeadPings(Answer(send, Call("r", "openai", None)), alarms(), 0.05)
        await asyncio.sleep(0.01)
        assert pings.stop() is None
        await asyncio.sleep(0.1)

    asyncio.run(asyncio.wait_for(main(), 5))


def test_a_failed_head_ping_means_the_client_left():
    from relay.records import Call
    from routes.answer import Answer, HeadPings

    async def send(message):
        raise OSError("connection reset by peer")

    async def main():
        call = Call("r", "openai", None)
        HeadPings(Answer(send, call), alarms(), 0.02)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(5)  # the upstream wait, cut short
        return call

    call = asyncio.run(asyncio.wait_for(main(), 5))
    assert call.client_gone


def test_an_answer_sends_its_head_to_send_and_its_body_to_body_send_when_given():
    from relay.records import Call
    from routes.answer import Answer

    heads, bodies = [], []

    async def send(message):
        heads.append(message["type"])

    async def body_send(message):
        bodies.append(message["type"])

    async def main():
        await Answer(send, Call("r", "openai", None), body_send).whole(200, [], b"{}")
        await Answer(send, Call("r", "openai", None)).whole(200, [], b"{}")

    asyncio.run(main())
    assert heads == ["http.response.start", "http.response.start", "http.response.body"]
    assert bodies == ["http.response.body"]


class Breaking:
    """An upstream event stream whose connection breaks after `parts`, as aiohttp reports it."""

    def __init__(self, parts: list[bytes], error: Exception) -> None:
        self._parts, self._error = list(parts), error

    async def read_unmapped(self) -> bytes:
        await asyncio.sleep(0)
        if not self._parts:
            raise self._error
        return self._parts.pop(0)

    read = read_unmapped


def _stream_through(body, caplog) -> list[dict]:
    from relay.records import Call
    from relay.streams import Events
    from relay.dialects import OPENAI
    from routes.answer import Answer, stream

    sent = []

    async def send(message):
        sent.append(message)

    async def main():
        upstream = httpx.Response(200, headers={"content-type": "text/event-stream"}, extensions={"chunks": body})
        answer = Answer(send, Call("r", "openai", None))
        await stream(upstream, Events(OPENAI, OPENAI.meter()), answer, alarms(), 15.0, 60.0)

    with caplog.at_level("ERROR"):
        asyncio.run(asyncio.wait_for(main(), 5))
    return sent


EVENT = b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'


def test_a_stream_whose_upstream_connection_breaks_ends_with_an_upstream_cut_event(caplog):
    import aiohttp

    sent = _stream_through(Breaking([EVENT, EVENT], aiohttp.ClientPayloadError("Response payload is not completed")),
                           caplog)
    bodies = [m["body"] for m in sent if m["type"] == "http.response.body"]
    assert bodies[:2] == [EVENT, EVENT]
    last = sent[-1]
    assert last["more_body"] is False
    assert b"upstream_cut" in last["body"] and b"broke off: RemoteProtocolError" in last["body"]
    assert not caplog.records  # a broken upstream is not the proxy's bug: nothing logged as one


def test_a_stream_that_fails_for_another_reason_ends_with_a_stream_error_and_is_logged(caplog):
    sent = _stream_through(Breaking([EVENT], ValueError("a bug")), caplog)
    assert sent[-1]["more_body"] is False and b"stream_error" in sent[-1]["body"]
    assert any("could not be passed on" in r.getMessage() for r in caplog.records)


def test_aiohttp_errors_map_to_the_httpx_errors_callers_expect():
    import aiohttp

    from relay.transport import as_httpx_error

    assert isinstance(as_httpx_error(aiohttp.ClientPayloadError("cut")), httpx.RemoteProtocolError)
    assert isinstance(as_httpx_error(aiohttp.ServerDisconnectedError()), httpx.RemoteProtocolError)
    assert isinstance(as_httpx_error(httpx.ReadError("x")), httpx.ReadError)
    assert as_httpx_error(ValueError("a bug")) is None


class FailingPipe:
    """An event-stream pipe whose own code fails with an OSError (TimeoutError is one)."""

    sse = True
    mid_event = False
    complete = False
    failed = None

    def feed(self, chunk: bytes) -> bytes:
        raise TimeoutError("a bug in the pipe, not the upstream")

    def end(self) -> bytes:
        return b""

    def fail(self, err) -> bytes:
        from relay.dialects import OPENAI

        return OPENAI.error_event(err, 0)


def test_an_oserror_of_the_proxys_own_is_a_stream_error_not_an_upstream_cut(caplog):
    from relay.records import Call
    from routes.answer import Answer, stream

    sent = []

    async def send(message):
        sent.append(message)

    async def main():
        upstream = httpx.Response(200, headers={"content-type": "text/event-stream"},
                                  extensions={"chunks": Breaking([EVENT], ValueError("unused"))})
        await stream(upstream, FailingPipe(), Answer(send, Call("r", "openai", None)), alarms(), 15.0, 60.0)

    with caplog.at_level("ERROR"):
        asyncio.run(asyncio.wait_for(main(), 5))
    assert b"stream_error" in sent[-1]["body"] and b"upstream_cut" not in sent[-1]["body"]
    assert any("could not be passed on" in r.getMessage() for r in caplog.records)
