"""Everything one process keeps while it runs, made once from the config."""

from __future__ import annotations

import asyncio

import httpx

from .auth import Auth
from .config import Channel, Config, Globs
from .records import Call, UsageLog, record
from .routing import Routes
from .upstream import Upstream


class Runtime:
    def __init__(
        self,
        config: Config,
        transport: httpx.AsyncBaseTransport | None = None,
        usage_out=None,
    ) -> None:
        self.config = config
        self.auth = Auth(config)
        self.routes = Routes(config)
        self.upstream = Upstream(config.proxy, transport)
        self.usage_log = UsageLog(usage_out)
        self.draining = False
        self.open_calls: dict[asyncio.Task, Call] = {}
        # Passthrough has one candidate per dialect: the official API, with the client's own key.
        self.passthrough = {
            dialect: Channel(
                name=f"passthrough:{dialect}", type=dialect, base_url=base, keys=("",),
                models=Globs(("*",)), groups=frozenset(),
            )
            for dialect, base in config.passthrough.items()
        }

    def begin_drain(self) -> None:
        """Ready checks fail from now on; calls still open after `drain_s` are ended."""
        if not self.draining:
            self.draining = True
            asyncio.get_running_loop().call_later(self.config.proxy.drain_s, self._end_open_calls)

    def _end_open_calls(self) -> None:
        for task, call in list(self.open_calls.items()):
            call.stopping = True
            task.cancel()

    def finish(self, call: Call) -> None:
        self.usage_log.write(record(call, self.config.price))

    async def aclose(self) -> None:
        self.usage_log.flush()
        await self.upstream.aclose()
