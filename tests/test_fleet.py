"""The fleet layer: bounded store calls, outages (open and closed), the journal, key health."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis_server import RedisServer, free_port, fresh_prefix, redis_url  # noqa: F401  (a fixture)

from relay.state import Ask, Settlement, StoreUnavailable
from relay.state.fleet import Fleet
from relay.state.memory import MemoryStore
from relay.state.redis_store import RedisStore

DAY = "2025-03-01"


def run(coro, timeout: float = 60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(condition, timeout: float = 10.0, what: str = "the condition") -> None:
    """Polls: the fleet's background work has no event a test could await."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.02)


def fleet_on(url: str, prefix: str, **options) -> Fleet:
    options = {"timeout_ms": 500, "flush_s": 0.01, "backoff_s": 0.1, "write_timeout_s": 1.0, **options}
    return Fleet(RedisStore.from_url(url, prefix=prefix), **options)


async def account(url: str, prefix: str, name: str):
    store = RedisStore.from_url(url, prefix=prefix)
    try:
        return await store.account(name, DAY)
    finally:
        await store.aclose()


def test_a_memory_fleet_goes_straight_to_its_store():
    async def main():
        store = MemoryStore()
        fleet = Fleet(store)
        await fleet.start()
        first = await fleet.admit(Ask("r1", "alice", usd=0.01, opening_usd=0.02))
        fleet.settle(Settlement("r1", "alice", DAY, 0.015, 10))
        seen = await store.account("alice", DAY)  # settled at once: nothing to flush
        fleet.rest_key("k#0", 30)
        resting = dict(fleet.resting), await store.resting_keys()
        await fleet.aclose()
        return first, seen, resting

    first, seen, (resting, stored) = run(main())
    assert first.ok and first.balance_usd == pytest.approx(0.01)
    assert seen.balance_usd == pytest.approx(0.005) and seen.spent_usd == pytest.approx(0.015)
    assert set(resting) == set(stored) == {"k#0"}


def test_settlements_are_batched_and_aclose_writes_what_is_pending(redis_url):  # noqa: F811
    prefix = fresh_prefix()

    async def main():
        fleet = fleet_on(redis_url, prefix, flush_s=30)  # nothing leaves before aclose
        await fleet.start()
        for i in range(10):
            assert (await fleet.admit(Ask(f"r{i}", "alice", usd=0.01, opening_usd=1.0))).ok
            fleet.settle(Settlement(f"r{i}", "alice", DAY, 0.005, 10))
        before = await account(redis_url, prefix, "alice")
        await fleet.aclose()
        return before, await account(redis_url, prefix, "alice")

    before, after = run(main())
    assert before.spent_usd == 0 and before.reserved_usd == pytest.approx(0.1)
    assert after.spent_usd == pytest.approx(0.05) and after.reserved_usd == 0
    assert after.balance_usd == pytest.approx(0.95) and after.requests_today == 10


def test_two_fleets_on_one_store_never_overdraw(redis_url):  # noqa: F811
    prefix = fresh_prefix()

    async def main():
        fleets = [fleet_on(redis_url, prefix) for _ in range(2)]
        for fleet in fleets:
            await fleet.start()
        results = await asyncio.gather(*(
            fleets[i % 2].admit(Ask(f"r{i}", "alice", usd=0.01, opening_usd=0.05)) for i in range(30)))
        for fleet in fleets:
            await fleet.aclose()
        return results

    assert sum(a.ok for a in run(main())) == 5


def test_a_rested_key_rests_here_at_once_and_on_other_replicas_soon(redis_url):  # noqa: F811
    prefix = fresh_prefix()

    async def main():
        here, there = fleet_on(redis_url, prefix), fleet_on(redis_url, prefix, health_refresh_s=0.05)
        await here.start()
        await there.start()
        here.rest_key("openai#0", 30)
        at_once = "openai#0" in here.resting
        await until(lambda: "openai#0" in there.resting, what="the other replica seeing the rest")
        until_there = there.resting["openai#0"]
        await here.aclose()
        await there.aclose()
        return at_once, until_there

    at_once, until_there = run(main())
    assert at_once and until_there == pytest.approx(time.time() + 30, abs=5)


def test_an_outage_is_served_locally_and_loses_no_settlement(tmp_path):
    server = RedisServer(tmp_path, persist=True)
    prefix = fresh_prefix()
    billed = []

    async def main():
        fleet = fleet_on(server.url, prefix, timeout_ms=200)
        await fleet.start()
        for i in range(5):
            assert (await fleet.admit(Ask(f"a{i}", "alice", usd=0.01, opening_usd=1.0))).ok
            fleet.settle(Settlement(f"a{i}", "alice", DAY, 0.003, 10))
            billed.append(0.003)
        await until(lambda: not fleet._pending, what="the first settlements leaving")

        server.kill()
        slowest = 0.0
        start = time.perf_counter()
        for i in range(20):
            began = time.perf_counter()
            admission = await fleet.admit(Ask(f"b{i}", "alice", usd=0.01, opening_usd=1.0))
            slowest = max(slowest, time.perf_counter() - began)
            assert admission.ok
            fleet.settle(Settlement(f"b{i}", "alice", DAY, 0.002, 10))
            billed.append(0.002)
        elapsed = time.perf_counter() - start
        assert not fleet.healthy and fleet.store_errors >= 1
        await until(lambda: fleet.journal_size == 20, what="the journal holding the unwritten settlements")

        restarted = RedisServer(tmp_path, port=server.port, persist=True)
        try:
            await until(lambda: fleet.healthy and fleet.journal_size == 0, what="the journal's replay")
            after = await fleet.account("alice", DAY)
            await fleet.aclose()
        finally:
            restarted.stop()
        return slowest, elapsed, after

    try:
        slowest, elapsed, after = run(main())
    finally:
        server.stop()
    assert slowest < 1.0 and elapsed < 2.0  # never the store's time, let alone per request
    assert after.spent_usd == pytest.approx(sum(billed)) and after.requests_today == 25
    assert after.balance_usd == pytest.approx(1.0 - sum(billed)) and after.reserved_usd == 0


def test_an_open_outage_starts_from_the_last_known_balance(tmp_path):
    server = RedisServer(tmp_path)
    prefix = fresh_prefix()

    async def main():
        fleet = fleet_on(server.url, prefix, backoff_s=60)
        await fleet.start()
        known = await fleet.admit(Ask("r0", "alice", usd=0.01, opening_usd=0.05))
        server.kill()
        local = await asyncio.gather(*(fleet.admit(Ask(f"r{i}", "alice", usd=0.01, opening_usd=0.05))
                                       for i in range(1, 11)))
        # settled in the outage, dearer than reserved: the local balance falls with it
        first_local = next(i for i, a in enumerate(local, 1) if a.ok)
        fleet.settle(Settlement(f"r{first_local}", "alice", DAY, 0.03, 10))
        after = [await fleet.admit(Ask(f"s{i}", "alice", usd=0.01)) for i in range(2)]
        await fleet.aclose()
        return known, local, after

    try:
        known, local, after = run(main())
    finally:
        server.stop()
    assert known.balance_usd == pytest.approx(0.04)
    assert sum(a.ok for a in local) == 4  # what the store said was left, not the opening credit
    # 0.04 - 0.03 billed - 0.03 still held by the other three -> -0.02: nothing more
    assert [a.ok for a in after] == [False, False] and after[0].reason == "balance"


def test_a_closed_fleet_refuses_while_the_store_is_down_and_recovers(tmp_path):
    port = free_port()

    async def main():
        fleet = fleet_on(f"redis://127.0.0.1:{port}", fresh_prefix(), on_outage="closed")
        await fleet.start()
        with pytest.raises(StoreUnavailable):
            await fleet.admit(Ask("r1", "alice", rpm=5))
        with pytest.raises(StoreUnavailable):
            await fleet.admit(Ask("r2", "alice", rpm=5))
        down = fleet.closed_and_down, fleet.store_errors
        server = RedisServer(tmp_path, port=port)
        try:
            await until(lambda: fleet.healthy, what="the probe finding the store back")
            admitted = await fleet.admit(Ask("r3", "alice", rpm=5))
            await fleet.aclose()
        finally:
            server.stop()
        return down, admitted, fleet.closed_and_down

    (was_down, errors), admitted, now_down = run(main())
    assert was_down and errors == 1  # the second refusal did not even try the store
    assert admitted.ok and not now_down


def test_a_hanging_store_never_holds_a_request_longer_than_the_timeout():
    async def main():
        held = []

        async def never_answer(reader, writer):
            held.append(writer)  # accepts, reads nothing, says nothing

        listener = await asyncio.start_server(never_answer, "127.0.0.1", 0)
        url = f"redis://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
        timings = {}
        for mode in ("open", "closed"):
            fleet = fleet_on(url, fresh_prefix(), timeout_ms=50, on_outage=mode, write_timeout_s=0.2,
                             close_timeout_s=1.0, backoff_s=60)
            await fleet.start()
            began = time.perf_counter()
            try:
                first = await fleet.admit(Ask("r1", "alice", rpm=5))
            except StoreUnavailable:
                first = None
            first_s = time.perf_counter() - began
            began = time.perf_counter()
            for i in range(20):
                try:
                    await fleet.admit(Ask(f"n{i}", "alice", rpm=100))
                except StoreUnavailable:
                    pass
            timings[mode] = first, first_s, time.perf_counter() - began
            fleet.settle(Settlement("r1", "alice", DAY, 0.01, 1))
            began = time.perf_counter()
            await fleet.aclose()
            timings[mode] += (time.perf_counter() - began,)
        listener.close()
        for writer in held:
            writer.close()
        return timings

    timings = run(main())
    open_first, open_s, open_next, open_close = timings["open"]
    closed_first, closed_s, closed_next, closed_close = timings["closed"]
    assert open_first.ok and closed_first is None
    # ~50 ms, with room for a busy machine; then no wait at all while the store is down
    assert open_s < 0.5 and closed_s < 0.5
    assert open_next < 0.5 and closed_next < 0.5  # 20 requests: under 25 ms each, not 50 ms
    assert open_close < 2.0 and closed_close < 2.0


def test_the_journal_is_bounded_and_counts_what_it_drops():
    port = free_port()  # nothing listens there

    async def main():
        fleet = fleet_on(f"redis://127.0.0.1:{port}", fresh_prefix(), journal_max=3, backoff_s=60,
                         close_timeout_s=0.5)
        await fleet.start()
        await fleet.admit(Ask("r0", "alice"))  # finds the store down
        for i in range(5):
            fleet.settle(Settlement(f"r{i}", "alice", DAY, 0.01, 1))
        await until(lambda: fleet.journal_size + fleet.journal_dropped == 5, what="the flush")
        stats = fleet.journal_size, fleet.journal_dropped
        await fleet.aclose()
        return stats

    assert run(main()) == (3, 2)


def test_aclose_writes_the_journal_when_the_store_is_back(tmp_path):
    server = RedisServer(tmp_path)
    prefix = fresh_prefix()

    async def main():
        fleet = fleet_on(server.url, prefix, backoff_s=60)  # the probe will not get to it
        await fleet.start()
        await fleet.admit(Ask("r0", "alice", opening_usd=1.0))
        server.stop()
        await fleet.admit(Ask("r1", "alice"))  # notices the outage
        for i in range(3):
            fleet.settle(Settlement(f"r{i}", "alice", DAY, 0.1, 1))
        await until(lambda: fleet.journal_size == 3, what="the journal filling")
        restarted = RedisServer(tmp_path, port=server.port)
        try:
            await fleet.aclose()  # SIGTERM: the journal is written before exit
            return await account(restarted.url, prefix, "alice")
        finally:
            restarted.stop()

    after = run(main())
    assert after is not None  # the data of a server without persistence is gone; the journal is not
    assert after.spent_usd == pytest.approx(0.3) and after.requests_today == 3


class Flaky:
    """A store that answers as a MemoryStore does, except when told to be slow or unreachable."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.admit_timeout_s = 0.05
        self.slow = 0  # the next `slow` admissions take longer than the timeout
        self.down = False

    async def admit(self, ask: Ask):
        if self.down:
            raise ConnectionRefusedError("connection refused")
        if self.slow:
            self.slow -= 1
            raise TimeoutError  # what a store bounded by admit_timeout_s raises when slow
        return await self.inner.admit(ask)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_one_slow_call_is_served_locally_but_does_not_put_the_replica_on_local_counts():
    async def main():
        store = Flaky()
        fleet = Fleet(store, timeout_ms=50, trip_after=3, backoff_s=60)
        await fleet.start()
        assert (await fleet.admit(Ask("r0", "alice", rpm=100))).ok
        store.slow = 1
        assert (await fleet.admit(Ask("r1", "alice", rpm=100))).ok  # served without the store
        assert fleet.healthy and fleet.store_errors == 1
        assert (await fleet.admit(Ask("r2", "alice", rpm=100))).ok and fleet.healthy
        store.slow = 3  # three in a row: down
        for i in range(3):
            await fleet.admit(Ask(f"s{i}", "alice", rpm=100))
        assert not fleet.healthy
        await fleet.aclose()

    run(main())


def test_an_outage_serves_a_prepaid_token_only_from_a_balance_it_knows():
    async def main():
        store = Flaky()
        fleet = Fleet(store, timeout_ms=50, backoff_s=60)
        await fleet.start()
        known = await fleet.admit(Ask("r0", "known", usd=0.01, opening_usd=0.05))
        assert known.ok and known.balance_usd == pytest.approx(0.04)
        store.down = True
        # unreachable: down at once; the balance this replica last heard of is what it serves on
        assert (await fleet.admit(Ask("r1", "known", usd=0.03, opening_usd=0.05))).ok
        assert not (await fleet.admit(Ask("r2", "known", usd=0.02, opening_usd=0.05))).ok
        with pytest.raises(StoreUnavailable):  # its balance was never heard of here: cannot be known
            await fleet.admit(Ask("r3", "stranger", usd=0.01, opening_usd=0.05))
        assert (await fleet.admit(Ask("r4", "unmetered", usd=0.01))).ok  # no balance to keep
        await fleet.aclose()

    run(main())


@pytest.mark.parametrize("on", ["memory", "redis"])
def test_open_balance_opens_once_and_never_for_a_revoked_name(on, request):
    """What the admin API's top-up of a config token relies on: its opening credit is written as
    its first request would write it, and not again."""
    async def main():
        if on == "memory":
            fleet = Fleet(MemoryStore())
        else:
            fleet = fleet_on(request.getfixturevalue("redis_url"), fresh_prefix())
        opened = await fleet.open_balance("ann", 5.0)
        again = await fleet.open_balance("ann", 9.0)  # already open: unchanged
        first = await fleet.admit(Ask("r1", "ann", usd=1.0, opening_usd=5.0))
        await fleet.revoke("bo")
        revoked = await fleet.open_balance("bo", 5.0)
        seen = await fleet.account("ann", DAY), await fleet.account("bo", DAY)
        await fleet.aclose()
        return opened, again, first, revoked, seen

    opened, again, first, revoked, (ann, bo) = run(main())
    assert (opened, again, revoked) == (True, True, False)
    assert first.ok and first.balance_usd == pytest.approx(4.0)
    assert ann.balance_usd == 5.0 and ann.requests_today == 0 and ann.reserved_usd == pytest.approx(1.0)
    assert bo.balance_usd is None and bo.revoked
