"""`[usage] webhook`: the usage records, POSTed in batches as JSON arrays (SPEC §7).

A request only puts its record on a bounded queue and never waits; when the collector is slow or
down and the queue is full, records are dropped and counted (`aurax_usage_webhook_dropped`), the
stdout lines still have them. One background task ships batches of up to `batch` records, at
least every `flush_s`; a failed POST is retried twice before its batch is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Callable

import httpx
import orjson

from .config import UsageSink

log = logging.getLogger("uvicorn.error")


class Webhook:
    def __init__(self, sink: UsageSink, client: Callable[[], httpx.AsyncClient],
                 on_drop: Callable[[int], None]) -> None:
        self._sink = sink
        self._client = client  # -> httpx.AsyncClient, made lazily by the runtime
        self._on_drop = on_drop
        self._queue: asyncio.Queue[dict] | None = None
        self._task: asyncio.Task | None = None
        self._batch: list[dict] = []  # taken from the queue, not yet posted
        self._posting = False
        self._headers = [("content-type", "application/json"), *self._sink.headers]

    def put(self, record: dict) -> None:
        if self._task is None:
            self._queue = asyncio.Queue(self._sink.queue)
            self._task = asyncio.get_running_loop().create_task(self._ship())
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._on_drop(1)

    async def _ship(self) -> None:
        queue, loop = self._queue, asyncio.get_running_loop()
        while True:
            self._batch = [await queue.get()]
            deadline = loop.time() + self._sink.flush_s
            while len(self._batch) < self._sink.batch:
                try:
                    async with asyncio.timeout(max(0.0, deadline - loop.time())):
                        self._batch.append(await queue.get())
                except TimeoutError:
                    break
            batch, self._batch = self._batch, []
            self._posting = True
            try:
                await self._post(batch)
            finally:
                self._posting = False

    async def _post(self, batch: list[dict]) -> None:
        body = orjson.dumps(batch)
        for attempt in range(3):
            try:
                async with asyncio.timeout(10):
                    response = await self._client().post(self._sink.webhook, content=body, headers=self._headers)
                if response.status_code < 300:
                    return
                reason = f"status {response.status_code}"
            except (httpx.HTTPError, TimeoutError) as exc:
                reason = type(exc).__name__
            if attempt < 2:
                await asyncio.sleep(0.5 * (attempt + 1))
        log.warning("usage webhook: dropped a batch of %d records (%s)", len(batch), reason)
        self._on_drop(len(batch))

    async def aclose(self, wait_s: float = 5.0) -> None:
        """Ship what is waiting — the batch being filled and the queue — within `wait_s`."""
        if self._task is None:
            return
        rest: list[dict] = []
        try:
            async with asyncio.timeout(wait_s):
                while self._posting:  # a POST under way finishes rather than being cut
                    await asyncio.sleep(0.02)
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                rest = self._batch + [self._queue.get_nowait() for _ in range(self._queue.qsize())]
                self._batch = []
                while rest:
                    batch, rest = rest[: self._sink.batch], rest[self._sink.batch:]
                    await self._post(batch)
        except TimeoutError:
            self._on_drop(len(rest))
