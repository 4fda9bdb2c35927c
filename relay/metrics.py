"""Prometheus metrics (SPEC §7): requests, tokens, money, upstream errors, cooling keys, open
streams — by group, model, channel and status, never by key or token.

The request path only adds to plain dictionaries (a tuple key and an addition, well under a
microsecond); prometheus-client turns them into its text format when `/metrics` is scraped.
Model names come from clients, so only the first `MAX_MODELS` distinct ones get a label of
their own; the rest are counted as "other". The names the config knows always have their own
label and take none of those slots: clients cannot push them out.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Callable

from .config import Config
from .records import Call

MAX_MODELS = 500
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


_GLOB = frozenset("*?[")


def configured_models(config: Config) -> frozenset[str]:
    """The model names the config spells out (channel models and mapped names, priced models);
    globs name no model of their own."""
    names = [name for channel in config.channels for name in channel.models.patterns]
    names += config.prices
    return frozenset(name for name in names if _GLOB.isdisjoint(name))


class Metrics:
    def __init__(self, resting_keys: Callable[[], int], open_streams: Callable[[], int],
                 known_models: frozenset[str] = frozenset(), fleet=None,
                 body_bytes: Callable[[], int] = lambda: 0) -> None:
        self._fleet = fleet  # relay.state.fleet.Fleet: its store errors and journal
        self._resting_keys = resting_keys
        self._open_streams = open_streams
        self._body_bytes = body_bytes
        self._known = known_models
        self._models: set[str] = set()  # other names with a label of their own
        self.requests: defaultdict[tuple, int] = defaultdict(int)
        self.tokens: defaultdict[tuple, int] = defaultdict(int)
        self.official_usd: defaultdict[tuple, float] = defaultdict(float)
        self.billed_usd: defaultdict[tuple, float] = defaultdict(float)
        self.unpriced: defaultdict[tuple, int] = defaultdict(int)
        self.attempts: defaultdict[tuple, int] = defaultdict(int)
        self.upstream_errors: defaultdict[tuple, int] = defaultdict(int)
        self.estimated: defaultdict[tuple, int] = defaultdict(int)
        self.webhook_dropped = 0
        self._latency: defaultdict[str, list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS) + 1))
        self._latency_sum: defaultdict[str, float] = defaultdict(float)
        self._registry = None

    def model_label(self, model: str | None) -> str:
        if not model:
            return ""
        if model in self._known or model in self._models:
            return model
        if len(self._models) < MAX_MODELS:
            self._models.add(model)
            return model
        return "other"

    def observe(self, call: Call, record: dict, priced: bool) -> None:
        group = call.group or ("passthrough" if call.passthrough else "")
        # Only a routed token request, a priced or a configured model names a label: an
        # anonymous caller (passthrough, a refused key) must not be able to fill the label slots.
        routed = call.channel is not None and not call.passthrough
        model = self.model_label(call.model) if routed or priced or call.model in self._known else "other"
        channel = call.channel or ""
        self.requests[(group, model, channel, str(call.status), call.dialect)] += 1
        usage = call.usage
        if usage is not None and 200 <= call.status < 300:
            for kind, n in (("input", usage.input_tokens), ("output", usage.output_tokens),
                            ("cached_input", usage.cached_input_tokens), ("reasoning", usage.reasoning_tokens)):
                if n:
                    self.tokens[(group, model, channel, kind)] += n
        if record["billed_usd"] is not None:
            self.official_usd[(group, model)] += record["official_usd"]
            self.billed_usd[(group, model)] += record["billed_usd"]
        elif call.billable and not priced and not call.passthrough:
            self.unpriced[(model,)] += 1
        if call.estimated:
            self.estimated[(call.dialect,)] += 1
        latency = record["latency_ms"] / 1000
        buckets = self._latency[call.dialect]
        buckets[bisect.bisect_left(LATENCY_BUCKETS, latency)] += 1
        self._latency_sum[call.dialect] += latency

    def attempt(self, channel: str, status: int | None) -> None:
        """One try of one channel key; `status` is the upstream's, None for network errors."""
        self.attempts[(channel,)] += 1
        if status is None or status >= 400:
            self.upstream_errors[(channel, str(status) if status else "network")] += 1

    def render(self) -> bytes:
        # prometheus-client is imported on the first scrape: it is a tenth of the start-up time.
        from prometheus_client import CollectorRegistry, generate_latest

        if self._registry is None:
            self._registry = CollectorRegistry(auto_describe=False)
            self._registry.register(self)
        return generate_latest(self._registry)

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        def counter(name, doc, labels, values):
            family = CounterMetricFamily(name, doc, labels=labels)
            for key, value in values.items():
                family.add_metric(list(key), value)
            return family

        yield counter("aurax_requests", "Finished requests.", ["group", "model", "channel", "status", "dialect"],
                      self.requests)
        yield counter("aurax_tokens", "Tokens used, by kind (input includes cached_input).",
                      ["group", "model", "channel", "kind"], self.tokens)
        yield counter("aurax_official_usd", "Official price of billed requests, USD.", ["group", "model"],
                      self.official_usd)
        yield counter("aurax_billed_usd", "Billed: official price x group multiplier, USD.", ["group", "model"],
                      self.billed_usd)
        yield counter("aurax_unpriced_requests", "Successful requests for a model without a price.", ["model"],
                      self.unpriced)
        yield counter("aurax_upstream_attempts", "Tries of a channel key.", ["channel"], self.attempts)
        yield counter("aurax_upstream_errors", "Failed tries of a channel key, by upstream status.",
                      ["channel", "status"], self.upstream_errors)
        yield counter("aurax_usage_estimated", "Requests billed on estimated usage: a stream cut before its "
                      "final usage, an answer without usage that can be trusted.", ["dialect"], self.estimated)
        yield counter("aurax_usage_webhook_dropped", "Usage records the webhook queue had to drop.", [],
                      {(): self.webhook_dropped})
        fleet = self._fleet
        if fleet is not None:
            yield counter("aurax_state_errors", "State store calls that failed or timed out.", [],
                          {(): fleet.store_errors})
            yield GaugeMetricFamily("aurax_state_healthy", "1 while the state store answers, 0 in an outage.",
                                    value=int(fleet.healthy))
            yield GaugeMetricFamily("aurax_state_journal", "Settlements waiting for the state store to return.",
                                    value=fleet.journal_size)
            yield counter("aurax_state_journal_dropped", "Settlements the full journal could not keep.", [],
                          {(): fleet.journal_dropped})
        yield GaugeMetricFamily("aurax_cooling_keys", "Channel keys resting after a failure.",
                                value=self._resting_keys())
        yield GaugeMetricFamily("aurax_open_streams", "Requests in flight whose answer streams.",
                                value=self._open_streams())
        yield GaugeMetricFamily("aurax_request_body_bytes", "Request body bytes held by open requests "
                                "(capped by [proxy] max_buffered_mb).", value=self._body_bytes())
        latency = HistogramMetricFamily("aurax_request_seconds", "Time from request to last byte.",
                                        labels=["dialect"])
        for dialect, counts in self._latency.items():
            cumulative, buckets = 0, []
            for bound, n in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            latency.add_metric([dialect], buckets, self._latency_sum[dialect])
        yield latency
