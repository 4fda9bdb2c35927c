"""One record per finished request: what was asked, who served it, what it cost (SPEC §7).

Records go to stdout as JSON lines, written in small batches so a busy replica makes a few
writes a second instead of one per request; the optional webhook takes the same records.
"""

from __future__ import annotations

import time

import orjson

from .config import Price, Token
from .errors import redact
from .logs import Lines
from .usage import Usage


class Call:
    """What one request did, filled in as it goes; the usage record is made from it."""

    __slots__ = (
        "request_id", "t0", "ts", "dialect", "token", "group", "multiplier", "model",
        "upstream_model", "channel", "status", "stream", "attempts", "ttfb_ms", "usage",
        "estimated", "client_ip", "passthrough", "error", "client_gone", "finished", "stopping", "billable",
        "secrets", "admitted",
    )

    def __init__(self, request_id: str, dialect: str, client_ip: str | None) -> None:
        self.request_id = request_id
        self.t0 = time.perf_counter()
        self.ts = time.time()
        self.dialect = dialect
        self.client_ip = client_ip
        self.token: Token | None = None
        self.group: str | None = None
        self.multiplier: float | None = None
        self.model: str | None = None
        self.upstream_model: str | None = None
        self.channel: str | None = None
        self.status = 0
        self.stream = False
        self.attempts = 0
        self.ttfb_ms: float | None = None
        self.usage: Usage | None = None
        self.estimated = False
        self.passthrough = False
        self.error: str | None = None
        self.client_gone = False
        self.finished = False
        self.stopping = False  # ended by a shutdown that could wait no longer
        self.billable = False  # an upstream answered 2xx and its answer was passed on
        self.secrets: list[str] = []  # the keys this request carried or was sent with: never shown
        self.admitted = False  # the fleet admitted it (a token's request): it must be settled

    def scrub(self, text: str) -> str:
        """`text` without any key this request knows of (nor masked echoes of them)."""
        return redact(text, *self.secrets)

    def scrub_bytes(self, data: bytes) -> bytes:
        return self.scrub(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    def first_byte(self) -> None:
        if self.ttfb_ms is None:
            self.ttfb_ms = round((time.perf_counter() - self.t0) * 1000, 2)


def cost(price: Price | None, usage: Usage | None) -> float | None:
    """Official USD for one request: per call, or per million tokens by kind (cache reads at
    `cached_input`, cache writes at `cache_write`, each at `input` when the price has none)."""
    if price is None:
        return None
    if price.request is not None:
        return price.request
    if usage is None:
        return None
    cached, written = usage.cached_input_tokens, usage.cache_write_tokens
    cached_rate = price.input if price.cached_input is None else price.cached_input
    write_rate = price.input if price.cache_write is None else price.cache_write
    usd = (
        max(usage.input_tokens - cached - written, 0) * price.input
        + cached * cached_rate
        + written * write_rate
        + usage.output_tokens * price.output
    ) / 1_000_000
    return round(usd, 12)


def record(call: Call, price: Price | None) -> dict:
    """The usage line. Billed: what an upstream answered and the client got (in part, too: a
    client that stops a stream early still used the tokens it was sent), never passthrough."""
    official = billed = None
    if call.billable and not call.passthrough:
        official = cost(price, call.usage)
        if official is not None and call.multiplier is not None:
            billed = round(official * call.multiplier, 12)
    return {
        "request_id": call.request_id,
        "ts": round(call.ts, 3),
        "token": call.token.name if call.token is not None else None,
        "group": call.group,
        "model": call.model,
        "upstream_model": call.upstream_model,
        "channel": call.channel,
        "dialect": call.dialect,
        "status": call.status,
        "stream": call.stream,
        "attempts": call.attempts,
        "ttfb_ms": call.ttfb_ms,
        "latency_ms": round((time.perf_counter() - call.t0) * 1000, 2),
        "usage": call.usage.as_dict() if call.usage is not None else None,
        "official_usd": official,
        "multiplier": call.multiplier,
        "billed_usd": billed,
        "estimated": call.estimated,
        "client_ip": call.client_ip,
        "passthrough": call.passthrough,
        "error": call.scrub(call.error) if call.error else None,
    }


class UsageLog(Lines):
    """The usage records: JSON lines on stdout, flushed within `flush_s` of being written."""

    def write(self, rec: dict) -> None:
        self.add(orjson.dumps(rec) + b"\n")
