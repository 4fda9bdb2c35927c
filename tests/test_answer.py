"""Reading an upstream body whole: the idle timeout bounds each wait, not the whole body."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from routes.answer import read_all


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
    assert asyncio.run(read_all(response(body), idle_s=0.1)) == b"abcde"


def test_a_body_that_goes_silent_times_out_and_leaves_no_cancellation_behind():
    async def main():
        with pytest.raises(TimeoutError):
            await read_all(response(Paced([b"a"], gap_s=0.0, stall=True)), idle_s=0.1)
        assert asyncio.current_task().cancelling() == 0
        await asyncio.sleep(0.15)  # no stray timer cancels the task later
        return "alive"

    assert asyncio.run(asyncio.wait_for(main(), 5)) == "alive"


def test_a_cancelled_read_stays_a_cancellation():
    async def main():
        task = asyncio.ensure_future(read_all(response(Paced([b"a"], gap_s=0.0, stall=True)), idle_s=5))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(main(), 5))


def test_limit_stops_reading():
    body = Paced([b"x" * 10, b"y" * 10, b"z" * 10], gap_s=0.0)
    assert asyncio.run(read_all(response(body), idle_s=1, limit=15)) == b"x" * 10 + b"y" * 10
