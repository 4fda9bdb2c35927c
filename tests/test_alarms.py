"""Alarms: one ticking timer for every request's deadlines; never early, at most a tick late."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from relay.alarms import Alarms
from relay.config import Proxy
from relay.upstream import Upstream


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 5))


def test_an_alarm_fires_once_not_before_its_time_and_within_a_tick():
    async def main():
        alarms, loop = Alarms(0.01), asyncio.get_running_loop()
        fired = asyncio.Event()
        times = []
        start = loop.time()
        alarms.later(0.05, lambda: (times.append(loop.time()), fired.set()))
        await fired.wait()
        await asyncio.sleep(0.05)
        return times, start

    times, start = run(main())
    assert len(times) == 1
    assert times[0] - start >= 0.05
    assert times[0] - start < 1.0  # a tick late at most; the bound is loose: machines are noisy


def test_a_cancelled_alarm_never_fires_and_an_empty_set_stops_ticking():
    async def main():
        alarms = Alarms(0.01)
        fired = []
        alarm = alarms.later(0.02, lambda: fired.append("cancelled one"))
        alarms.later(0.03, lambda: fired.append("kept"))
        alarm.cancel()
        while len(alarms):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.03)
        return fired, alarms._tick_handle

    fired, handle = run(main())
    assert fired == ["kept"]
    assert handle is None  # nothing left to time: no timer runs in an idle process


def test_due_alarms_fire_in_time_order_and_one_that_fails_does_not_stop_the_rest():
    async def main():
        alarms = Alarms(0.05)
        fired = []

        def boom():
            fired.append("boom")
            raise RuntimeError("a bug in one alarm")

        alarms.later(0.02, lambda: fired.append("second"))
        alarms.later(0.01, boom)
        alarms.later(0.03, lambda: fired.append("third"))
        while len(alarms):
            await asyncio.sleep(0.01)
        return fired

    assert run(main()) == ["boom", "second", "third"]  # all three were due at the first tick


def test_an_alarm_may_cancel_another_due_in_the_same_tick():
    async def main():
        alarms = Alarms(0.05)
        fired = []
        later = alarms.later(0.02, lambda: fired.append("later"))
        alarms.later(0.01, lambda: (fired.append("first"), later.cancel()))
        while len(alarms):
            await asyncio.sleep(0.01)
        return fired

    assert run(main()) == ["first"]


def test_alarms_keep_working_on_the_next_event_loop():
    alarms = Alarms(0.01)

    async def one():
        fired = asyncio.Event()
        alarms.later(0.01, fired.set)
        await fired.wait()

    async def abandoned():
        alarms.later(60, lambda: None)  # its loop ends with the tick still scheduled

    run(one())
    run(abandoned())
    assert len(alarms) == 1
    run(one())
    assert len(alarms) == 0  # the abandoned loop's alarm went with it: it never fires on this one


class _Escape(BaseException):
    pass


def test_the_clock_keeps_ticking_after_an_alarm_raises_a_base_exception():
    async def main():
        loop = asyncio.get_running_loop()
        escaped = []
        loop.set_exception_handler(lambda loop, context: escaped.append(context.get("exception")))
        alarms = Alarms(0.01)
        fired = asyncio.Event()

        def escape():
            raise _Escape()

        alarms.later(0.01, escape)
        alarms.later(0.05, fired.set)
        await fired.wait()
        return escaped

    escaped = run(main())
    assert len(escaped) == 1 and isinstance(escaped[0], _Escape)


def test_resolution_is_a_fifth_of_the_shortest_interval_from_1_to_50_ms():
    assert Alarms.for_intervals(15, 120, 300).resolution == 0.05
    assert Alarms.for_intervals(0.2, 1.0, 1.0).resolution == pytest.approx(0.04)
    assert Alarms.for_intervals(0.0001, 1.0).resolution == 0.001


class _Thinking(httpx.AsyncBaseTransport):
    """An upstream that never answers."""

    async def handle_async_request(self, request):
        await asyncio.Event().wait()


class _Stubborn(httpx.AsyncBaseTransport):
    """An upstream client that swallows the cancellation and answers anyway."""

    async def handle_async_request(self, request):
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return httpx.Response(200)


def _upstream(first_byte_s: float, transport=None) -> Upstream:
    proxy = Proxy(first_byte_timeout_s=first_byte_s)
    return Upstream(proxy, Alarms(0.01), transport or _Thinking())


def test_the_first_byte_timeout_is_a_timeout_error_and_leaves_no_cancellation_behind():
    async def main():
        upstream = _upstream(0.05)
        request = upstream.request("POST", "http://upstream.test/v1/chat/completions", [], b"{}")
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(TimeoutError):
            await upstream.send(request)
        waited = loop.time() - start
        assert asyncio.current_task().cancelling() == 0
        assert len(upstream._alarms) == 0
        await asyncio.sleep(0.05)  # and nothing cancels the task later
        await upstream.aclose()
        return waited

    assert run(main()) >= 0.05


def test_a_cancelled_wait_for_the_first_byte_stays_a_cancellation():
    async def main():
        upstream = _upstream(60)
        request = upstream.request("POST", "http://upstream.test/v1/chat/completions", [], b"{}")
        task = asyncio.ensure_future(upstream.send(request))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await upstream.aclose()

    run(main())


def test_an_answer_that_comes_as_the_timeout_fires_is_kept_and_the_cancellation_taken_back():
    async def main():
        upstream = _upstream(0.02, _Stubborn())
        request = upstream.request("POST", "http://upstream.test/v1/chat/completions", [], b"{}")
        response = await upstream.send(request)
        assert asyncio.current_task().cancelling() == 0
        await asyncio.sleep(0.03)  # no cancellation is left to hit the next wait
        await upstream.aclose()
        return response.status_code

    assert run(main()) == 200
