"""The store in this process's memory (`memory://`): one replica's truth, and the reference for
what the Redis store does (the same behaviour tests run against both).

Semantics, shared by both stores:

- An admission checks, in order: revocation, `rpm`, `tpm`, balance. A refused request counts
  nowhere; an admitted one is counted at once (so concurrent requests cannot all slip through).
- Windows (`rpm`, `tpm`, `ip_rpm`) slide in one-second steps: what is counted in a second is kept
  until 61 s after that second began. So no 60 seconds ever see more than the limit (a count is
  kept 60 to 61 s, never less), and a window is 61 buckets, whatever the rate (an exact log of
  every admission cost ~35 MB a minute for one token at 1,000 requests a second). `retry_after`
  is the time until the oldest bucket lapses.
- `rpm`: the admissions of the window.
- `tpm`: its tokens. An admission adds its estimate at once; settling replaces it with the true
  count, counted at settlement (a request longer than a minute still counts). Refused when the
  window's sum is at or over `tpm`, or when the estimate would take a non-zero sum over it: a
  single request larger than `tpm` passes when the window is empty, or a large prompt could
  never pass.
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


KEEP_S = WINDOW_S + 1  # a count is kept from its second until 61 s after that second began


class _Window:
    """A minute's counts in one-second buckets: each is kept from its second until `KEEP_S` after
    that second began, so whatever 60 seconds are looked at, nothing in them is missed (at most a
    second more is); and a window holds 61 buckets whatever the rate."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()  # [second, amount], oldest first
        self.total = 0

    def lapse(self, now: float) -> None:
        buckets = self.buckets
        while buckets and buckets[0][0] + KEEP_S <= now:
            self.total -= buckets.popleft()[1]

    def add(self, now: float, amount: int) -> int:
        """Counts `amount` now; the second it was counted in."""
        second = int(now)
        buckets = self.buckets
        if buckets and buckets[-1][0] == second:
            buckets[-1][1] += amount
        else:
            buckets.append([second, amount])
        self.total += amount
        return second

    def remove(self, second: int, amount: int) -> None:
        """Takes back what was counted in `second`, if that second is still in the window."""
        for bucket in reversed(self.buckets):
            if bucket[0] == second:
                bucket[1] -= amount
                self.total -= amount
                return
            if bucket[0] < second:
                return

    def retry_after(self, now: float) -> int:
        """Seconds until the oldest count lapses."""
        return max(1, math.ceil(self.buckets[0][0] + KEEP_S - now)) if self.buckets else 1


class _Token:
    __slots__ = (
        "known", "balance", "reserved", "spent", "revoked", "rpm", "tpm",
        "reservations", "expiries", "days",
    )

    def __init__(self) -> None:
        self.known = False
        self.balance: int | None = None  # nano-USD; None: no balance
        self.reserved = self.spent = 0
        self.revoked = False
        self.rpm = _Window()  # requests admitted
        self.tpm = _Window()  # tokens: reserved at admission, the true count once settled
        # request id -> (nano-USD held, (second, tokens) counted in the tpm window or None, expiry)
        self.reservations: dict[str, tuple[int, tuple[int, int] | None, float]] = {}
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
        settled_max: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.admit_timeout_s = 0.0  # nothing here waits
        self.reservation_ttl_s = reservation_ttl_s
        self.settled_ttl_s = settled_ttl_s
        # Settled request ids, so a repeat counts once. Nothing replays to a store in memory (an
        # outage's journal goes to Redis), so a bounded window is enough: at most this many
        # (~2.5 MB), the oldest forgotten first; at 1,000 requests a second, 10 s of them.
        self.settled_max = settled_max
        self._settled: dict[str, float] = {}
        self._settled_order: deque[tuple[float, str]] = deque()
        self._clock = clock
        self._tokens: dict[str, _Token] = {}
        # One window per client IP; the least recently seen go first once this many are tracked.
        self._ips: LRUCache[str, _Window] = LRUCache(maxsize=100_000)
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
        self._expire_reservations(t, now)
        if ask.rpm is not None:
            t.rpm.lapse(now)
            if t.rpm.total >= ask.rpm:
                return Admission(False, "rpm", t.rpm.retry_after(now))
        if ask.tpm is not None:
            t.tpm.lapse(now)
            total = t.tpm.total
            if total >= ask.tpm or (total > 0 and total + ask.tokens > ask.tpm):
                return Admission(False, "tpm", t.tpm.retry_after(now))
        held = to_nano(ask.usd) if t.balance is not None else 0
        if t.balance is not None and held > t.balance - t.reserved:
            return Admission(False, "balance", 0, to_usd(t.balance - t.reserved))
        if ask.rpm is not None:
            t.rpm.add(now, 1)
        entry = None
        if ask.tpm is not None:
            entry = (t.tpm.add(now, ask.tokens), ask.tokens)
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
            window = self._ips[ask.ip] = _Window()
        window.lapse(now)
        if window.total >= ask.ip_rpm:
            return Admission(False, "ip_rpm", window.retry_after(now))
        window.add(now, 1)
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
            if len(t.expiries) > 2 * len(t.reservations) + 64:
                # The expiries of settled reservations would wait an hour to leave: drop them now
                # and then (amortised, a few times the open reservations at most).
                t.expiries = deque(sorted((entry[2], rid) for rid, entry in t.reservations.items()))
            counted = held[1]
            if counted is not None:  # the estimate leaves the tpm window, the true count enters it now
                t.tpm.remove(*counted)
                t.tpm.add(now, s.tokens)
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
