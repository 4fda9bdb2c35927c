"""Everything one process keeps while it runs, made once from the config."""

from __future__ import annotations

import asyncio

import httpx

from .alarms import Alarms
from .auth import Auth
from .config import Channel, Config, Globs
from .intake import Intake
from .limits import Limits
from .metrics import Metrics, configured_models
from .records import Call, UsageLog, record
from .routing import Routes
from .upstream import Upstream
from .webhook import Webhook


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
        proxy = config.proxy
        self.alarms = Alarms.for_intervals(proxy.keepalive_s, proxy.idle_timeout_s, proxy.first_byte_timeout_s)
        self.upstream = Upstream(proxy, self.alarms, transport)
        self.intake = Intake(proxy, self.alarms)
        self.usage_log = UsageLog(usage_out)
        self.limits = Limits()
        self.draining = False
        self.open_calls: dict[asyncio.Task, Call] = {}
        self.metrics = Metrics(
            resting_keys=self.routes.resting_count,
            open_streams=lambda: sum(1 for call in self.open_calls.values() if call.stream),
            known_models=configured_models(config),
            body_bytes=lambda: self.intake.held,
        )
        self.webhook = None
        if config.usage.webhook:
            self.webhook = Webhook(config.usage, lambda: self.upstream.client, self._dropped)
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

    def _dropped(self, n: int) -> None:
        self.metrics.webhook_dropped += n

    def finish(self, call: Call) -> None:
        """The request is over: its usage line, metrics, webhook record and token spending."""
        price = self.config.price(call.model) if call.model is not None else None
        rec = record(call, price)
        self.usage_log.write(rec)
        self.metrics.observe(call, rec, priced=price is not None)
        if self.webhook is not None:
            self.webhook.put(rec)
        if call.token is not None and call.usage is not None:
            self.limits.spend(call.token, call.usage.input_tokens + call.usage.output_tokens)

    async def aclose(self) -> None:
        if self.webhook is not None:
            await self.webhook.aclose()
        self.usage_log.flush()
        await self.upstream.aclose()
