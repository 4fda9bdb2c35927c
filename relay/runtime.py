"""Everything one process keeps while it runs, made once from the config."""

from __future__ import annotations

import asyncio

import httpx

from .admission import settlement
from .alarms import Alarms
from .auth import Auth
from .config import Channel, Config, Globs
from .intake import Intake
from .metrics import Metrics, configured_models
from .planner import Planner
from .records import Call, UsageLog, record
from .state import open_store
from .state.fleet import Fleet
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
        state = config.state
        self.fleet = Fleet(
            open_store(state.url, prefix=state.prefix),
            timeout_ms=state.timeout_ms, on_outage=state.on_outage,
            journal_max=state.journal_max, health_refresh_s=state.health_refresh_s,
        )
        self._fleet_started = False
        self.planner = Planner(config, self.fleet)
        proxy = config.proxy
        self.alarms = Alarms.for_intervals(proxy.keepalive_s, proxy.idle_timeout_s, proxy.first_byte_timeout_s)
        self.upstream = Upstream(proxy, self.alarms, transport)
        self.intake = Intake(proxy, self.alarms)
        self.usage_log = UsageLog(usage_out)
        self.draining = False
        self.open_calls: dict[asyncio.Task, Call] = {}
        self.metrics = Metrics(
            resting_keys=self.planner.resting_count,
            open_streams=lambda: sum(1 for call in self.open_calls.values() if call.stream),
            known_models=configured_models(config),
            fleet=self.fleet,
            body_bytes=lambda: self.intake.held,
        )
        self.webhook = None
        if config.usage.webhook:
            self.webhook = Webhook(config.usage, lambda: self.upstream.client, self._dropped)
        # Passthrough has one candidate per dialect family: the official API, with the client's
        # own key (OpenAI's serves the Responses API itself).
        self.passthrough = {
            family: Channel(
                name=f"passthrough:{family}", type=family, base_url=base, keys=("",),
                models=Globs(("*",)), groups=frozenset(), responses=True,
            )
            for family, base in config.passthrough.items()
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

    async def start(self) -> None:
        """The fleet's background work (the lifespan's start; the first request on hosts
        without lifespan events)."""
        if not self._fleet_started:
            self._fleet_started = True
            await self.fleet.start()

    @property
    def started(self) -> bool:
        return self._fleet_started

    def finish(self, call: Call) -> None:
        """The request is over: its usage line, metrics, webhook record, and its settlement:
        the true price is deducted from the token's balance, its reservation released."""
        price = self.config.price(call.model) if call.model is not None else None
        rec = record(call, price)
        self.usage_log.write(rec)
        self.metrics.observe(call, rec, priced=price is not None)
        if self.webhook is not None:
            self.webhook.put(rec)
        if call.admitted:
            usage = call.usage
            self.fleet.settle(settlement(call.request_id, call.token.name, rec["billed_usd"],
                                         usage.input_tokens if usage else 0, usage.output_tokens if usage else 0))

    async def aclose(self) -> None:
        if self.webhook is not None:
            await self.webhook.aclose()
        self.usage_log.flush()
        await self.fleet.aclose()  # settlements not yet written, and the journal of an outage
        await self.upstream.aclose()
