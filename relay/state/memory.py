"""The store in this process's memory (`memory://`): one replica's truth, and the reference for
what the Redis store does (the same behaviour tests run against both).

Semantics, shared by both stores:

- An admission checks, in order: revocation, `rpm`, `tpm`, balance. A refused request counts
  nowhere; an admitted one is counted at once (so concurrent requests cannot all slip through).
- `rpm`: a true sliding window, the admissions of the last 60 s; `retry_after` is the time until
  the oldest of them leaves it.
- `tpm`: the tokens of the last 60 s. An admission adds its estimate at once; settling replaces
  it with the true count, stamped at settlement (a request longer than a minute still counts).
  Refused when the window's sum is at or over `tpm`, or when the estimate would take a non-zero
  sum over it: a single request larger than `tpm` passes when the window is empty, or a large
  prompt could never pass. `retry_after` is the time until the oldest entry leaves the window.
- Balance: opened by the first admission that brings `opening_usd`, refused or not (never again,
  even once spent to 0), by `set_balance` or by `credit`. An admission reserves `usd` and is refused when `usd`
  exceeds the balance less the open reservations (so a token in debt is refused even for an
  unpriced model); a token without a balance is never refused for money. A reservation that is
  not settled within `reservation_ttl_s` (its replica died) is dropped at the next admission.
- Settlement releases the reservation, deducts the true price from the balance (which may go
  below 0 when it exceeded the estimate), adds it to the spend (total and the day's, with a
  request count). Settled request ids are remembered for `settled_ttl_s` (in memory, at most
  `settled_max` of them); a repeat is skipped.
- A name is known to the store (`account` is not None) once it was opened, credited, revoked,
  unrevoked or settled.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from typing import Callable

from cachetools import LRUCache

from . import (
    ADMITTED, DAY_TTL_S, WINDOW_S, Account, Admission, Ask, Settlement, days, to_nano, to_usd,
)

_REVOKED = Admission(False, "revoked")


def _retry_after(oldest: float, now: float) -> int:
    return max(1, math.ceil(oldest + WINDOW_S - now))


class _Token:
    __slots__ = (
        "known", "balance", "reserved", "spent", "revoked", "rpm", "tpm", "tpm_sum",
        "reservations", "expiries", "days",
    )

    def __init__(self) -> None:
        self.known = False
        self.balance: int | None = None  # nano-USD; None: no balance
        self.reserved = self.spent = self.tpm_sum = 0
        self.revoked = False
        self.rpm: deque[float] = deque()  # admission times
        self.tpm: deque[list] = deque()  # [time, tokens, counted]
        # request id -> (nano-USD held, its tpm entry or None, expiry)
        self.reservations: dict[str, tuple[int, list | None, float]] = {}
        self.expiries: deque[tuple[float, str]] = deque()
        self.days: dict[str, list[int]] = {}  # day -> [nano-USD spent, requests]


class MemoryStore:
    """The state of one process. Every method also has a synchronous core (`admit_now`,
    `settle_now`) that `Fleet` calls directly: nothing here ever waits."""

    def __init__(
        self,
        *,
        reservation_ttl_s: float = 3600.0,
        settled_ttl_s: float = 3600.0,
        settled_max: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.admit_timeout_s = 0.0  # nothing here waits
        self.reservation_ttl_s = reservation_ttl_s
        self.settled_ttl_s = settled_ttl_s
        # Settled request ids, so a repeat counts once. Nothing replays to a store in memory (an
        # outage's journal goes to Redis), so a bounded window is enough: at most this many
        # (~30 MB), the oldest forgotten first; at 1,000 requests a second, 100 s of them.
        self.settled_max = settled_max
        self._settled: dict[str, float] = {}
        self._settled_order: deque[tuple[float, str]] = deque()
        self._clock = clock
        self._tokens: dict[str, _Token] = {}
        # One window per client IP; the least recently seen go first once this many are tracked.
        self._ips: LRUCache[str, deque[float]] = LRUCache(maxsize=100_000)
        self._resting: dict[str, float] = {}
        self._responses: dict[tuple[str, str], tuple[float, bytes]] = {}
        self._response_expiries: list[tuple[float, tuple[str, str]]] = []

    def _token(self, name: str) -> _Token:
        t = self._tokens.get(name)
        if t is None:
            t = self._tokens[name] = _Token()
        return t

    # -- admission -------------------------------------------------------------------------------

    def admit_now(self, ask: Ask) -> Admission:
        if ask.token is None:
            return self._admit_ip(ask)
        t = self._token(ask.token)
        if t.revoked:
            return _REVOKED
        if t.balance is None and ask.opening_usd is not None:
            t.balance, t.known = to_nano(ask.opening_usd), True
        now = self._clock()
        since = now - WINDOW_S
        self._expire_reservations(t, now)
        if ask.rpm is not None:
            window = t.rpm
            while window and window[0] <= since:
                window.popleft()
            if len(window) >= ask.rpm:
                return Admission(False, "rpm", _retry_after(window[0], now))
        if ask.tpm is not None:
            entries = t.tpm
            # Entries a settlement replaced no longer count: drop them with the expired ones.
            while entries and (entries[0][0] <= since or not entries[0][2]):
                old = entries.popleft()
                if old[2]:
                    t.tpm_sum -= old[1]
            total = t.tpm_sum
            if total >= ask.tpm or (total > 0 and total + ask.tokens > ask.tpm):
                return Admission(False, "tpm", _retry_after(entries[0][0], now) if entries else 1)
        held = to_nano(ask.usd) if t.balance is not None else 0
        if t.balance is not None and held > t.balance - t.reserved:
            return Admission(False, "balance", 0, to_usd(t.balance - t.reserved))
        if ask.rpm is not None:
            t.rpm.append(now)
        entry = None
        if ask.tpm is not None:
            entry = [now, ask.tokens, True]
            t.tpm.append(entry)
            t.tpm_sum += ask.tokens
        if held > 0 or entry is not None:
            expires = now + self.reservation_ttl_s
            t.reservations[ask.request_id] = (held, entry, expires)
            t.expiries.append((expires, ask.request_id))
            t.reserved += held
        if t.balance is None:
            return ADMITTED
        return Admission(True, balance_usd=to_usd(t.balance - t.reserved))

    def _admit_ip(self, ask: Ask) -> Admission:
        if ask.ip is None or ask.ip_rpm is None:
            return ADMITTED
        now = self._clock()
        window = self._ips.get(ask.ip)
        if window is None:
            window = self._ips[ask.ip] = deque()
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        if len(window) >= ask.ip_rpm:
            return Admission(False, "ip_rpm", _retry_after(window[0], now))
        window.append(now)
        return ADMITTED

    def _expire_reservations(self, t: _Token, now: float) -> None:
        expiries = t.expiries
        while expiries and expiries[0][0] <= now:
            expires, rid = expiries.popleft()
            held = t.reservations.get(rid)
            if held is not None and held[2] == expires:
                del t.reservations[rid]
                t.reserved -= held[0]

    # -- settlement ------------------------------------------------------------------------------

    def settle_now(self, entries: list[Settlement]) -> None:
        now = self._clock()
        for entry in entries:
            self._settle(entry, now)

    def _settle(self, s: Settlement, now: float) -> None:
        t = self._token(s.token)
        t.known = True
        settled, order = self._settled, self._settled_order
        while order and (order[0][0] <= now - self.settled_ttl_s or len(order) >= self.settled_max):
            settled.pop(order.popleft()[1], None)
        if s.request_id in settled:
            return
        settled[s.request_id] = now
        order.append((now, s.request_id))
        held = t.reservations.pop(s.request_id, None)
        if held is not None:
            t.reserved -= held[0]
            reserved_entry = held[1]
            if reserved_entry is not None:
                if reserved_entry[2]:
                    reserved_entry[2] = False
                    t.tpm_sum -= reserved_entry[1]
                t.tpm.append([now, s.tokens, True])
                t.tpm_sum += s.tokens
        billed = to_nano(s.billed_usd)
        if t.balance is not None:
            t.balance -= billed
        t.spent += billed
        day = t.days.get(s.day)
        if day is None:
            day = t.days[s.day] = [0, 0]
            if len(t.days) > DAY_TTL_S // 86_400:
                del t.days[min(t.days)]
        day[0] += billed
        day[1] += 1

    # -- the Store interface ---------------------------------------------------------------------

    async def admit(self, ask: Ask) -> Admission:
        return self.admit_now(ask)

    async def settle(self, entries: list[Settlement]) -> None:
        self.settle_now(entries)

    def rest_key_now(self, key_id: str, until: float) -> None:
        self._resting[key_id] = max(until, self._resting.get(key_id, 0.0))

    async def rest_key(self, key_id: str, until: float) -> None:
        self.rest_key_now(key_id, until)

    async def resting_keys(self) -> dict[str, float]:
        now = self._clock()
        for key_id in [k for k, until in self._resting.items() if until <= now]:
            del self._resting[key_id]
        return dict(self._resting)

    async def revoke(self, name: str) -> None:
        t = self._token(name)
        t.revoked = t.known = True

    async def unrevoke(self, name: str) -> None:
        t = self._token(name)
        t.revoked, t.known = False, True

    async def credit(self, name: str, usd: float) -> float:
        t = self._token(name)
        t.balance = (t.balance or 0) + to_nano(usd)
        t.known = True
        return to_usd(t.balance)

    async def set_balance(self, name: str, usd: float) -> None:
        t = self._token(name)
        t.balance, t.known = to_nano(usd), True

    async def account(self, name: str, day: str) -> Account | None:
        t = self._tokens.get(name)
        if t is None or not t.known:
            return None
        self._expire_reservations(t, self._clock())
        spent_today, requests_today = t.days.get(day, (0, 0))
        return Account(
            name=name,
            balance_usd=None if t.balance is None else to_usd(t.balance),
            reserved_usd=to_usd(t.reserved),
            spent_usd=to_usd(t.spent),
            spent_today_usd=to_usd(spent_today),
            requests_today=requests_today,
            revoked=t.revoked,
        )

    async def spend(self, name: str, first_day: str, last_day: str) -> list[tuple[str, float]]:
        t = self._tokens.get(name)
        if t is None:
            return []
        return [(day, to_usd(t.days[day][0])) for day in days(first_day, last_day) if day in t.days]

    async def put_response(self, token: str, response_id: str, data: bytes, ttl_s: float) -> None:
        now = self._clock()
        heap = self._response_expiries
        while heap and heap[0][0] <= now:
            expires, key = heapq.heappop(heap)
            stored = self._responses.get(key)
            if stored is not None and stored[0] == expires:
                del self._responses[key]
        expires = now + ttl_s
        self._responses[(token, response_id)] = (expires, data)
        heapq.heappush(heap, (expires, (token, response_id)))

    async def get_response(self, token: str, response_id: str) -> bytes | None:
        stored = self._responses.get((token, response_id))
        if stored is None or stored[0] <= self._clock():
            return None
        return stored[1]

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
