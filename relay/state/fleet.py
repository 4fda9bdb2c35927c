"""What the request path calls: the store, bounded in time and kept serving through an outage.

- `admit` waits for the store at most `timeout_ms`. A call that fails or is slower is served
  without the store: with `on_outage="open"` by a process-local `MemoryStore` (this replica's
  own counts; each token's balance seeded with what the store last said was left — a token with
  an opening balance the store never answered for here gets `StoreUnavailable`: its balance
  cannot be known), with `"closed"` `StoreUnavailable` is raised. The store counts as down after
  `trip_after` such calls in a row, or at once when it cannot be reached at all; while down it is
  not asked again on the request path (a dead store must not add `timeout_ms` to every request);
  a probe every `backoff_s` notices when it is back. One slow call on a busy machine does not
  put the replica on local counts.
- `settle` never waits: settlements leave in batches every `flush_s` (at once when `batch_max`
  are waiting), one round trip each. What cannot be written goes to a bounded journal, written
  when the store is back (the store skips any it already applied) and on `aclose` (SIGTERM).
- Key health: `rest_key` rests a key here at once and on every replica once written;
  `resting` is refreshed from the store every `health_refresh_s`, which bounds how stale it is.

With a `MemoryStore` there is nothing to wait for or lose: every call goes straight to it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections import deque
from typing import Callable, Mapping

from . import Account, Admission, Ask, Settlement, Store, StoreUnavailable
from .memory import MemoryStore

log = logging.getLogger("uvicorn.error")
_REMEMBERED = 100_000  # tokens whose last known balance is kept


class Fleet:
    """One per process, made at start-up around the configured store; see the module's doc."""

    def __init__(
        self,
        store: Store,
        *,
        timeout_ms: float = 50,
        on_outage: str = "open",
        journal_max: int = 100_000,
        health_refresh_s: float = 1.0,
        flush_s: float = 0.05,
        clock: Callable[[], float] = time.time,
        backoff_s: float = 1.0,
        trip_after: int = 3,
        batch_max: int = 1000,
        write_timeout_s: float = 2.0,
        close_timeout_s: float = 5.0,
    ) -> None:
        if on_outage not in ("open", "closed"):
            raise ValueError(f"on_outage: must be 'open' or 'closed', not {on_outage!r}")
        self.store = store
        self.on_outage = on_outage
        self._local = store if isinstance(store, MemoryStore) else None
        store.admit_timeout_s = timeout_ms / 1000
        self._journal_max = journal_max
        self._health_refresh_s = health_refresh_s
        self._flush_s = flush_s
        self._clock = clock
        self._backoff_s = backoff_s
        self._trip_after = trip_after
        self._misses = 0  # store calls failed in a row on the request path
        self._batch_max = batch_max
        self._write_timeout_s = write_timeout_s
        self._close_timeout_s = close_timeout_s
        self.healthy = True
        self.store_errors = 0
        self.journal_dropped = 0
        self._journal: deque[Settlement] = deque()
        self._pending: list[Settlement] = []
        self._resting: dict[str, float] = {}
        self._unconfirmed: dict[str, float] = {}  # rested here, not yet seen in the store
        self._unwritten: dict[str, float] = {}  # rested here, not yet written
        # What the store last said each token has left: the opening of its local balance in an
        # outage. Bounded: past its size the longest known are forgotten first.
        self._left: dict[str, float] = {}
        self._fallback: MemoryStore | None = None
        self._fallback_ids: set[str] = set()  # requests the fallback admitted, not yet settled
        self._tasks: list[asyncio.Task] = []
        self._wake = asyncio.Event()  # settlements or rests are waiting
        self._full = asyncio.Event()  # a whole batch is waiting
        self._down = asyncio.Event()  # the probe's cue

    # -- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Starts the background writer, key-health refresher and outage probe, and readies the
        store (its connection and scripts), so the first requests do not pay for that."""
        if self._local is not None:
            return
        self._tasks = [asyncio.create_task(job()) for job in (self._writer, self._refresher, self._prober)]
        warm = getattr(self.store, "warm", None)
        if warm is not None:
            try:
                async with asyncio.timeout(self._write_timeout_s):
                    await warm()
            except Exception:
                self._failed(hard=True)

    async def aclose(self) -> None:
        """Writes what is pending and the journal (within `close_timeout_s`), then closes."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._local is None:
            try:
                async with asyncio.timeout(self._close_timeout_s):
                    await self._flush()
                    if self._journal and await self._reachable():
                        await self._replay()
            except TimeoutError:
                pass
            if self._journal or self._pending:
                log.warning("state store: %d settlements could not be written before exit",
                            len(self._journal) + len(self._pending))
        await self.store.aclose()

    # -- the request path --------------------------------------------------------------------

    async def admit(self, ask: Ask) -> Admission:
        """The store's admission within `timeout_ms`; in an outage the local one, or
        `StoreUnavailable` when the fleet is closed on outage."""
        local = self._local
        if local is not None:
            return local.admit_now(ask)
        if self.healthy:
            try:
                admission = await self.store.admit(ask)  # bounded by the store: admit_timeout_s
            except Exception as exc:
                self._failed(hard=not isinstance(exc, TimeoutError))  # slow is soft; unreachable is down
            else:
                self._misses = 0
                if ask.token is not None:
                    left = self._left
                    left[ask.token] = admission.balance_usd  # None: the token has no balance
                    if len(left) > _REMEMBERED:
                        del left[next(iter(left))]
                return admission
        if self.on_outage == "closed":
            raise StoreUnavailable("the state store is unavailable")
        return self._admit_locally(ask)

    def _admit_locally(self, ask: Ask) -> Admission:
        fallback = self._fallback
        if fallback is None:
            fallback = self._fallback = MemoryStore(clock=self._clock)
        if ask.token is not None:
            if ask.token not in self._left:
                if ask.opening_usd is not None:
                    raise StoreUnavailable("the state store is unavailable and this token's balance unknown here")
            else:
                # The balance last known (written only the first time this outage sees the token,
                # as an opening credit); None: the store said it has none.
                ask = dataclasses.replace(ask, opening_usd=self._left[ask.token])
        admission = fallback.admit_now(ask)
        if admission.ok and ask.token is not None:
            self._fallback_ids.add(ask.request_id)
        return admission

    def settle(self, entry: Settlement) -> None:
        """Queues a finished request's settlement; never waits."""
        local = self._local
        if local is not None:
            local.settle_now([entry])
            return
        if entry.request_id in self._fallback_ids and self._fallback is not None:
            # Admitted locally in this outage: the local balance falls too. Requests the store
            # admitted were already held out of the balance the fallback started from.
            self._fallback_ids.discard(entry.request_id)
            self._fallback.settle_now([entry])
        self._pending.append(entry)
        waiting = len(self._pending)
        if waiting == 1:
            self._wake.set()
        elif waiting >= self._batch_max:
            self._full.set()

    def rest_key(self, key_id: str, seconds: float) -> None:
        """Rests a key from now on here, and on every replica once written."""
        until = self._clock() + seconds
        if until <= self._resting.get(key_id, 0.0):
            return
        self._resting[key_id] = until
        local = self._local
        if local is not None:
            local.rest_key_now(key_id, until)
            return
        self._unconfirmed[key_id] = self._unwritten[key_id] = until
        self._wake.set()

    @property
    def resting(self) -> Mapping[str, float]:
        """Key id -> resting until (wall clock). Lapsed entries may linger until the next
        refresh: compare with the time."""
        return self._resting

    # -- stats -------------------------------------------------------------------------------

    @property
    def journal_size(self) -> int:
        return len(self._journal)

    @property
    def closed_and_down(self) -> bool:
        """Not ready: every request would be refused until the store is back."""
        return self.on_outage == "closed" and not self.healthy

    # -- admin (no fallback: the store's answer or StoreUnavailable) --------------------------

    async def _ask_store(self, awaitable):
        try:
            async with asyncio.timeout(self._write_timeout_s):
                return await awaitable
        except (ValueError, TypeError):
            raise
        except Exception as exc:
            self.store_errors += 1
            raise StoreUnavailable("the state store did not answer") from exc

    async def account(self, name: str, day: str) -> Account | None:
        return await self._ask_store(self.store.account(name, day))

    async def credit(self, name: str, usd: float) -> float:
        return await self._ask_store(self.store.credit(name, usd))

    async def set_balance(self, name: str, usd: float) -> None:
        await self._ask_store(self.store.set_balance(name, usd))

    async def open_balance(self, name: str, usd: float) -> bool:
        """Opens `name`'s balance at `usd` unless it has one, atomically, as its first request
        would (an admission that reserves nothing). False: the name is revoked, nothing opened."""
        ask = Ask(request_id=f"open:{uuid.uuid4().hex}", token=name, opening_usd=usd)
        admission = await self._ask_store(self.store.admit(ask))
        return admission.reason != "revoked"

    async def revoke(self, name: str) -> None:
        await self._ask_store(self.store.revoke(name))

    async def unrevoke(self, name: str) -> None:
        await self._ask_store(self.store.unrevoke(name))

    async def spend(self, name: str, first_day: str, last_day: str) -> list[tuple[str, float]]:
        return await self._ask_store(self.store.spend(name, first_day, last_day))

    async def put_response(self, token: str, response_id: str, data: bytes, ttl_s: float) -> None:
        await self._ask_store(self.store.put_response(token, response_id, data, ttl_s))

    async def get_response(self, token: str, response_id: str) -> bytes | None:
        return await self._ask_store(self.store.get_response(token, response_id))

    # -- outage ------------------------------------------------------------------------------

    def _failed(self, hard: bool = True) -> None:
        """A store call failed: the store is down when it cannot be reached, or after
        `trip_after` failures in a row on the request path (`hard=False`: a slow call)."""
        self.store_errors += 1
        self._misses += 1
        if not hard and self._misses < self._trip_after:
            return
        if self.healthy:
            self.healthy = False
            self._fallback, self._fallback_ids = None, set()
            self._down.set()
            log.warning("state store: unavailable, serving on %s", "local counts" if self.on_outage == "open"
                        else "nothing (on_outage = closed)")

    def _to_journal(self, entries: list[Settlement]) -> None:
        room = self._journal_max - len(self._journal)
        if len(entries) > room:
            lost = len(entries) - max(room, 0)
            self.journal_dropped += lost
            log.warning("state store: journal full (%d), %d settlements dropped", self._journal_max, lost)
            entries = entries[:max(room, 0)]
        self._journal.extend(entries)

    async def _reachable(self) -> bool:
        try:
            async with asyncio.timeout(self._write_timeout_s):
                await self.store.ping()
            return True
        except Exception:
            self.store_errors += 1
            return False

    async def _replay(self) -> bool:
        """Writes the journal, oldest first, in batches; False when the store failed again."""
        while self._journal:
            batch = [self._journal[i] for i in range(min(self._batch_max, len(self._journal)))]
            try:
                async with asyncio.timeout(self._write_timeout_s):
                    await self.store.settle(batch)
            except Exception:
                self.store_errors += 1
                return False
            for _ in batch:
                self._journal.popleft()
        return True

    async def _prober(self) -> None:
        while True:
            await self._down.wait()
            await asyncio.sleep(self._backoff_s)
            if await self._reachable() and await self._replay():
                self._down.clear()
                self._misses = 0
                self.healthy = True
                self._fallback, self._fallback_ids = None, set()
                log.warning("state store: available again")
                self._wake.set()

    # -- background writes -------------------------------------------------------------------

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if len(self._pending) < self._batch_max:
                try:
                    async with asyncio.timeout(self._flush_s):
                        await self._full.wait()
                except TimeoutError:
                    pass
            await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._full.clear()
        if batch:
            if not self.healthy:
                self._to_journal(batch)
            else:
                try:
                    async with asyncio.timeout(self._write_timeout_s):
                        await self.store.settle(batch)
                except Exception:
                    self._failed()
                    self._to_journal(batch)
                except asyncio.CancelledError:
                    self._to_journal(batch)  # perhaps written already: a replay is skipped then
                    raise
        if self._unwritten and self.healthy:
            rests, self._unwritten = self._unwritten, {}
            try:
                async with asyncio.timeout(self._write_timeout_s):
                    for key_id, until in rests.items():
                        await self.store.rest_key(key_id, until)
            except BaseException as exc:
                self._unwritten = {**rests, **self._unwritten}
                if not isinstance(exc, Exception):
                    raise
                self._failed()

    async def _refresher(self) -> None:
        while True:
            await asyncio.sleep(self._health_refresh_s)
            if not self.healthy:
                continue
            try:
                async with asyncio.timeout(self._write_timeout_s):
                    shared = await self.store.resting_keys()
            except Exception:
                self._failed()
                continue
            now = self._clock()
            for key_id, until in list(self._unconfirmed.items()):
                if until <= now or shared.get(key_id, 0.0) >= until:
                    del self._unconfirmed[key_id]
                else:
                    shared[key_id] = until
            self._resting = shared
