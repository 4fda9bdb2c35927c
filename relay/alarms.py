"""The deadlines of every open request, kept by one periodic timer instead of a timer each.

Arming and cancelling an event-loop timer costs 3–4 µs, and `asyncio.timeout` 6 µs (uvloop,
measured); a request had three (the wait for the first byte, the body's silence, the start of
the disconnect watch): a fifth of the proxy's own CPU per request. An alarm here is an object
in a set. While any alarm is set, one timer ticks every `resolution` seconds and fires the due
ones; with none set, nothing ticks (an idle replica stays idle).

An alarm fires at most one `resolution` (plus the event loop's own lag) after its time, never
before it. The runtime picks a resolution that is small next to every interval it times.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

log = logging.getLogger("uvicorn.error")

MAX_RESOLUTION_S = 0.05
MIN_RESOLUTION_S = 0.001


class Alarm:
    __slots__ = ("when", "fired", "_fn", "_alarms")

    def __init__(self, alarms: Alarms, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self.fired = False
        self._fn = fn
        self._alarms = alarms

    def cancel(self) -> None:
        self._alarms._set.discard(self)
        self._fn = None  # (its owner often holds the alarm: no reference cycle is left behind)


class Alarms:
    def __init__(self, resolution: float = MAX_RESOLUTION_S) -> None:
        self.resolution = resolution
        self._set: set[Alarm] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick_handle: asyncio.TimerHandle | None = None

    @classmethod
    def for_intervals(cls, *intervals: float) -> Alarms:
        """Alarms precise to a fifth of the shortest interval they will time (1 to 50 ms)."""
        return cls(max(MIN_RESOLUTION_S, min(MAX_RESOLUTION_S, *(i / 5 for i in intervals))))

    def later(self, delay: float, fn: Callable[[], None]) -> Alarm:
        """Call `fn` once, `delay` seconds from now (unless cancelled first)."""
        loop = asyncio.get_running_loop()
        return self._add(loop, loop.time() + delay, fn)

    def at(self, when: float, fn: Callable[[], None]) -> Alarm:
        """Call `fn` once at the event loop's time `when` (unless cancelled first)."""
        return self._add(asyncio.get_running_loop(), when, fn)

    def deadline(self, delay: float) -> Deadline:
        """`with alarms.deadline(s): await ...`: what `asyncio.timeout(s)` does (Python 3.11's),
        on an alarm instead of a timer of its own."""
        task = asyncio.current_task()
        return Deadline(task, delay, self.later(delay, task.cancel))

    def deadline_at(self, when: float) -> Deadline:
        """`deadline`, for a block that must end by the event loop's time `when`."""
        task = asyncio.current_task()
        return Deadline(task, max(0.0, when - asyncio.get_running_loop().time()), self.at(when, task.cancel))

    def _add(self, loop: asyncio.AbstractEventLoop, when: float, fn: Callable[[], None]) -> Alarm:
        if loop is not self._loop:
            # Another event loop (tests run one each): what was set on the old one is for
            # tasks of that loop, and goes with it.
            self._set.clear()
            if self._tick_handle is not None:
                self._tick_handle.cancel()
                self._tick_handle = None
            self._loop = loop
        alarm = Alarm(self, when, fn)
        self._set.add(alarm)
        if self._tick_handle is None:
            self._tick_handle = loop.call_later(self.resolution, self._tick)
        return alarm

    def __len__(self) -> int:
        return len(self._set)

    def _tick(self) -> None:
        self._tick_handle = None
        try:
            now = self._loop.time()
            due = [alarm for alarm in self._set if alarm.when <= now]
            due.sort(key=_when)
            for alarm in due:
                if alarm not in self._set:
                    continue  # cancelled by an alarm fired before it in this tick
                self._set.discard(alarm)
                alarm.fired = True
                fn, alarm._fn = alarm._fn, None
                try:
                    fn()
                except Exception:
                    log.exception("an alarm failed")
        finally:  # (whatever escapes, the clock keeps ticking for the alarms left)
            if self._set and self._tick_handle is None:
                self._tick_handle = self._loop.call_later(self.resolution, self._tick)


class Deadline:
    """When due, the task is cancelled and the block ends with TimeoutError. A cancellation it
    made is taken back however the block ends: an answer that came just as it fired, or a
    callee that turned the cancellation into an error of its own."""

    __slots__ = ("_task", "_delay", "_alarm")

    def __init__(self, task: asyncio.Task, delay: float, alarm: Alarm) -> None:
        self._task, self._delay, self._alarm = task, delay, alarm

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        alarm = self._alarm
        alarm.cancel()
        if alarm.fired and self._task.uncancel() == 0 and exc_type is not None \
                and issubclass(exc_type, asyncio.CancelledError):
            raise TimeoutError(f"no answer within {self._delay:g} s") from None


def _when(alarm: Alarm) -> float:
    return alarm.when
