"""The fleet's shared state (SPEC §11): limits, balances, spend, revocations, key health, stored
answers — one small interface, two stores that behave the same.

`memory://` keeps it in this process (one replica, tests); `redis://` / `rediss://` shares it
between replicas through any Redis-protocol server (Redis 6.2+, Valkey, managed services). The
request path does not call a store directly but `fleet.Fleet`, which bounds every call in time
and keeps serving through an outage.

Money is kept in the store as integer nano-USD (1e-9 USD) so that sums are exact; this interface
takes and gives floats in USD.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Protocol

NANO = 1_000_000_000
WINDOW_S = 60  # rpm and tpm look at the last sixty seconds
DAY_TTL_S = 400 * 86_400  # spend per UTC day is kept this long
MAX_SPEND_DAYS = 400  # a `spend` range longer than what is kept is cut to its last days


def to_nano(usd: float) -> int:
    return round(usd * NANO)


def to_usd(nano_usd: int) -> float:
    return nano_usd / NANO


class StoreUnavailable(Exception):
    """The store did not answer in time (or at all). The message never names a key or token."""


@dataclass(frozen=True, slots=True)
class Ask:
    """What a request asks of the store before it is forwarded.

    A token's request (`token` set) is checked for revocation, `rpm`, `tpm` and balance; a
    passthrough request (`token` None) only for `ip_rpm` by `ip` — one or the other, never both,
    so that one admission touches the keys of one name only.
    """

    request_id: str
    token: str | None  # the token's name; None for a passthrough request
    rpm: int | None = None
    tpm: int | None = None
    tokens: int = 0  # tokens this request reserves against tpm (an estimate)
    usd: float = 0.0  # the price it reserves against the balance (0: an unpriced model)
    opening_usd: float | None = None  # the token's opening credit, written the first time only
    ip: str | None = None  # passthrough: the client IP
    ip_rpm: int | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    ok: bool
    reason: str | None = None  # "revoked" | "rpm" | "tpm" | "balance" | "ip_rpm"
    retry_after: int = 0  # seconds, for rpm/tpm/ip_rpm refusals
    # What is left (balance less open reservations, after this one if admitted) when the token
    # has a balance; None when it has none.
    balance_usd: float | None = None


ADMITTED = Admission(True)
REASONS = (None, "revoked", "rpm", "tpm", "balance", "ip_rpm")  # the stores' reason codes


@dataclass(frozen=True, slots=True)
class Settlement:
    """A finished request's true cost; settling the same `request_id` twice counts once."""

    request_id: str
    token: str
    day: str  # the UTC day (YYYY-MM-DD) the request finished
    billed_usd: float  # the true price (0 allowed)
    tokens: int  # true tokens used (input + output): replaces the tpm reservation


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    balance_usd: float | None  # None: the token has no balance (no money limit)
    reserved_usd: float  # held by requests not yet settled
    spent_usd: float
    spent_today_usd: float
    requests_today: int
    revoked: bool


class Store(Protocol):
    """What both stores do, with the same semantics (see `memory.MemoryStore` for them in full).

    `admit` answers or raises within `admit_timeout_s`: the store bounds it itself, since one
    timer per call would cost more than the Redis store's whole admission (a few µs).
    """

    admit_timeout_s: float

    async def admit(self, ask: Ask) -> Admission: ...

    async def settle(self, entries: list[Settlement]) -> None: ...

    async def rest_key(self, key_id: str, until: float) -> None: ...

    async def resting_keys(self) -> dict[str, float]: ...

    async def revoke(self, name: str) -> None: ...

    async def unrevoke(self, name: str) -> None: ...

    async def credit(self, name: str, usd: float) -> float: ...

    async def set_balance(self, name: str, usd: float) -> None: ...

    async def account(self, name: str, day: str) -> Account | None: ...

    async def spend(self, name: str, first_day: str, last_day: str) -> list[tuple[str, float]]: ...

    async def put_response(self, token: str, response_id: str, data: bytes, ttl_s: float) -> None: ...

    async def get_response(self, token: str, response_id: str) -> bytes | None: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


def open_store(url: str, **options) -> Store:
    """The store a URL names: `memory://`, or `redis://` / `rediss://` (options go to its
    constructor: `prefix`, `reservation_ttl_s`, `settled_ttl_s`, `timeout_s`)."""
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        from .memory import MemoryStore

        options.pop("prefix", None)  # (one process's store needs no namespace)
        return MemoryStore(**options)
    if scheme in ("redis", "rediss"):
        from .redis_store import RedisStore

        return RedisStore.from_url(url, **options)
    raise ValueError(f"state url: unknown scheme {scheme!r} (use memory://, redis:// or rediss://)")


def days(first_day: str, last_day: str) -> list[str]:
    """The UTC days from `first_day` to `last_day` (YYYY-MM-DD), at most the last MAX_SPEND_DAYS."""
    first, last = date.fromisoformat(first_day), date.fromisoformat(last_day)
    first = max(first, last - timedelta(days=MAX_SPEND_DAYS - 1))
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def utc_today() -> date:
    """The UTC day: spend is kept per UTC day, whatever the replica's time zone."""
    return datetime.now(timezone.utc).date()
