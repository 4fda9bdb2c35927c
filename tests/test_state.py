"""The state stores: one behaviour, the same tests against memory:// and a real redis-server."""

from __future__ import annotations

import asyncio
import json
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis_server import fresh_prefix, redis_url  # noqa: F401  (a fixture)

from relay.state import Ask, Settlement, open_store
from relay.state.memory import MemoryStore
from relay.state.redis_store import RedisStore

ROOT = Path(__file__).resolve().parent.parent
DAY = "2025-03-01"


@pytest.fixture(params=["memory", "redis"])
def make_store(request):
    if request.param == "memory":
        return MemoryStore
    url, prefix = request.getfixturevalue("redis_url"), fresh_prefix()
    return lambda **options: RedisStore.from_url(url, prefix=prefix, **options)


def run(make_store, body, **options):
    async def main():
        store = make_store(**options)
        try:
            return await body(store)
        finally:
            await store.aclose()

    return asyncio.run(asyncio.wait_for(main(), 30))


async def admit_all(store, asks):
    return await asyncio.gather(*(store.admit(ask) for ask in asks))


def test_rpm_admits_exactly_the_limit_under_concurrency(make_store):
    async def body(store):
        return await admit_all(store, [Ask(f"r{i}", "alice", rpm=10) for i in range(50)])

    results = run(make_store, body)
    assert sum(a.ok for a in results) == 10
    refused = [a for a in results if not a.ok]
    assert {a.reason for a in refused} == {"rpm"}
    assert all(1 <= a.retry_after <= 61 for a in refused)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_rpm_slides_in_one_second_steps_and_never_lets_60_seconds_see_more():
    clock = Clock()
    store = MemoryStore(clock=clock)

    def admit(at: float, i: int):
        clock.now = 1_000_000.0 + at
        return store.admit_now(Ask(f"r{i}", "alice", rpm=3))

    assert [admit(t, i).ok for i, t in enumerate((0.5, 10, 20))] == [True, True, True]
    refused = admit(30, 3)
    assert (refused.ok, refused.reason, refused.retry_after) == (False, "rpm", 31)
    assert not admit(60.4, 4).ok  # the first admission is still inside the last 60 s
    assert not admit(60.9, 5).ok  # its second's bucket is kept until 61 s after the second began
    assert admit(61, 6).ok
    refused = admit(65, 7)
    assert (refused.ok, refused.retry_after) == (False, 6)  # the one at 10 s lapses at 71 s


def test_a_window_holds_61_buckets_whatever_the_rate():
    clock = Clock()
    store = MemoryStore(clock=clock)
    for i in range(20_000):  # 100 requests a second for 200 s
        clock.now = 1_000_000.0 + i / 100
        assert store.admit_now(Ask(f"r{i}", "busy", rpm=10**9, tpm=10**12, tokens=10)).ok
        store.settle_now([Settlement(f"r{i}", "busy", DAY, 0.0, 5)])
    token = store._tokens["busy"]
    assert len(token.rpm.buckets) <= 61 and len(token.tpm.buckets) <= 61
    assert token.tpm.total == 5 * 100 * 61  # the true counts of the last 61 seconds, estimates gone
    # nor do settled requests linger: what the store keeps of them is bounded too
    assert len(token.reservations) == 0 and len(token.expiries) <= 64
    assert len(store._settled) <= store.settled_max


def test_tpm_reservations_hold_under_concurrency(make_store):
    async def body(store):
        return await admit_all(store, [Ask(f"r{i}", "alice", tpm=1000, tokens=100) for i in range(200)])

    results = run(make_store, body)
    assert sum(a.ok for a in results) == 10
    assert {a.reason for a in results if not a.ok} == {"tpm"}


def test_a_request_larger_than_tpm_passes_only_on_an_empty_window(make_store):
    async def body(store):
        big = await store.admit(Ask("r1", "alice", tpm=1000, tokens=5000))
        after = await store.admit(Ask("r2", "alice", tpm=1000, tokens=1))
        return big, after

    big, after = run(make_store, body)
    assert big.ok
    assert (after.ok, after.reason) == (False, "tpm") and after.retry_after >= 1


def test_settlement_replaces_the_tpm_estimate_with_the_true_count(make_store):
    async def body(store):
        first = await store.admit(Ask("r1", "alice", tpm=1000, tokens=900))
        before = await store.admit(Ask("r2", "alice", tpm=1000, tokens=200))
        await store.settle([Settlement("r1", "alice", DAY, 0.0, 100)])
        after = await store.admit(Ask("r3", "alice", tpm=1000, tokens=200))
        full = await store.admit(Ask("r4", "alice", tpm=1000, tokens=701))
        return first, before, after, full

    first, before, after, full = run(make_store, body)
    assert first.ok and not before.ok and after.ok
    assert not full.ok  # 100 true + 200 reserved + 701 > 1000


def test_a_balance_is_never_overdrawn_by_concurrent_requests(make_store):
    async def body(store):
        asks = [Ask(f"r{i}", "alice", usd=0.01, opening_usd=0.05) for i in range(30)]
        results = await admit_all(store, asks)
        admitted = [ask.request_id for ask, a in zip(asks, results) if a.ok]
        await store.settle([Settlement(rid, "alice", DAY, 0.004, 10) for rid in admitted[:2]])
        more = [await store.admit(Ask(f"m{i}", "alice", usd=0.01, opening_usd=0.05)) for i in range(2)]
        return results, more, await store.account("alice", DAY)

    results, more, account = run(make_store, body)
    assert sum(a.ok for a in results) == 5
    assert sorted(round(a.balance_usd, 9) for a in results if a.ok) == [0.0, 0.01, 0.02, 0.03, 0.04]
    assert all(a.reason == "balance" and a.balance_usd == pytest.approx(0.0) for a in results if not a.ok)
    # two settled at $0.004: 0.05 - 0.008 left, 0.03 still held -> one more at $0.01 fits, not two
    assert more[0].ok and more[0].balance_usd == pytest.approx(0.002)
    assert (more[1].ok, more[1].reason) == (False, "balance")
    assert account.balance_usd == pytest.approx(0.042)
    assert account.reserved_usd == pytest.approx(0.04)
    assert account.spent_usd == pytest.approx(0.008)


def test_the_opening_credit_is_written_once_and_never_refills(make_store):
    async def body(store):
        await store.admit(Ask("r1", "alice", usd=0.05, opening_usd=0.05))
        await store.admit(Ask("r2", "alice", usd=0.0, opening_usd=1.0))  # a later opening is ignored
        await store.settle([Settlement("r1", "alice", DAY, 0.05, 10)])
        spent = await store.account("alice", DAY)
        again = await store.admit(Ask("r3", "alice", usd=0.01, opening_usd=0.05))
        return spent, again

    spent, again = run(make_store, body)
    assert spent.balance_usd == pytest.approx(0.0)
    assert (again.ok, again.reason, again.balance_usd) == (False, "balance", pytest.approx(0.0))


def test_a_balance_can_go_into_debt_and_then_refuses(make_store):
    async def body(store):
        await store.admit(Ask("r1", "alice", usd=0.01, opening_usd=0.01))
        await store.settle([Settlement("r1", "alice", DAY, 0.03, 10)])  # dearer than estimated
        return await store.admit(Ask("r2", "alice", usd=0.0)), await store.account("alice", DAY)

    refused, account = run(make_store, body)
    assert (refused.ok, refused.reason) == (False, "balance")
    assert refused.balance_usd == pytest.approx(-0.02) and account.balance_usd == pytest.approx(-0.02)


def test_credit_debit_and_set_balance(make_store):
    async def body(store):
        opened = await store.credit("carol", 1.5)
        debited = await store.credit("carol", -0.5)
        admitted = await store.admit(Ask("r1", "carol", usd=0.9))
        refused = await store.admit(Ask("r2", "carol", usd=0.2))
        await store.set_balance("dave", 3.0)
        free = await store.admit(Ask("r3", "erin", usd=100.0))  # no balance: no money limit
        return opened, debited, admitted, refused, await store.account("dave", DAY), free

    opened, debited, admitted, refused, dave, free = run(make_store, body)
    assert (opened, debited) == (pytest.approx(1.5), pytest.approx(1.0))
    assert admitted.ok and admitted.balance_usd == pytest.approx(0.1)
    assert (refused.ok, refused.reason) == (False, "balance")
    assert dave.balance_usd == pytest.approx(3.0) and dave.spent_usd == 0
    assert free.ok and free.balance_usd is None


def test_money_is_exact_in_nano_usd(make_store):
    async def body(store):
        await store.set_balance("alice", 1.0)
        await store.settle([Settlement(f"r{i}", "alice", DAY, 0.1, 1) for i in range(10)])
        return await store.account("alice", DAY)

    account = run(make_store, body)
    assert account.balance_usd == 0.0 and account.spent_usd == 1.0  # exactly, not 1e-16 off


def test_revoked_tokens_are_refused_before_anything_is_counted(make_store):
    async def body(store):
        await store.revoke("alice")
        refused = await admit_all(store, [Ask(f"r{i}", "alice", rpm=1, usd=1.0) for i in range(3)])
        revoked = await store.account("alice", DAY)
        await store.unrevoke("alice")
        return refused, revoked, await store.admit(Ask("r9", "alice", rpm=1)), await store.account("alice", DAY)

    refused, revoked, admitted, account = run(make_store, body)
    assert {(a.ok, a.reason) for a in refused} == {(False, "revoked")}
    assert revoked.revoked and not account.revoked
    assert admitted.ok  # the refusals took nothing from rpm


def test_reservations_that_are_never_settled_expire(make_store):
    async def body(store):
        first = await store.admit(Ask("r1", "alice", usd=0.02, opening_usd=0.02))
        held = await store.admit(Ask("r2", "alice", usd=0.01))
        await asyncio.sleep(1.2)  # the reservation's time passing: nothing to await
        freed = await store.admit(Ask("r3", "alice", usd=0.01))
        return first, held, freed, await store.account("alice", DAY)

    # A second is long enough for the first two admissions even on a busy machine.
    first, held, freed, account = run(make_store, body, reservation_ttl_s=1.0)
    assert first.ok and (held.ok, held.reason) == (False, "balance")
    assert freed.ok and freed.balance_usd == pytest.approx(0.01)
    assert account.reserved_usd == pytest.approx(0.01) and account.balance_usd == pytest.approx(0.02)


def test_settlement_is_idempotent_per_request(make_store):
    async def body(store):
        await store.admit(Ask("r1", "alice", usd=0.01, opening_usd=1.0))
        batch = [Settlement("r1", "alice", DAY, 0.25, 10), Settlement("r2", "alice", DAY, 0.5, 10)]
        await store.settle(batch)
        await store.settle(batch)  # a batch replayed from the journal after a timeout
        await store.settle([batch[0]])
        return await store.account("alice", DAY)

    account = run(make_store, body)
    assert account.balance_usd == pytest.approx(0.25) and account.spent_usd == pytest.approx(0.75)
    assert account.requests_today == 2 and account.reserved_usd == 0


def test_a_request_that_cost_nothing_settles_on_a_balance(make_store):
    """A request that failed (the client went away, the upstream erred) settles $0: it releases
    its reservation and counts, and never fails the batch it came in."""
    async def body(store):
        await store.admit(Ask("r1", "alice", usd=0.5, opening_usd=1.0))
        await store.admit(Ask("r2", "alice", usd=0.5))
        await store.settle([Settlement("r1", "alice", DAY, 0.0, 0), Settlement("r2", "alice", DAY, 0.25, 10)])
        return await store.account("alice", DAY)

    account = run(make_store, body)
    assert account.balance_usd == pytest.approx(0.75) and account.spent_usd == pytest.approx(0.25)
    assert account.requests_today == 2 and account.reserved_usd == 0


def test_spend_per_utc_day(make_store):
    async def body(store):
        await store.settle([
            Settlement("a", "alice", "2025-02-27", 0.5, 1),
            Settlement("b", "alice", "2025-03-01", 0.25, 1),
            Settlement("c", "alice", "2025-03-01", 0.125, 1),
            Settlement("d", "alice", "2025-03-04", 1.0, 1),
            Settlement("e", "bob", "2025-03-01", 9.0, 1),
        ])
        return (await store.spend("alice", "2025-02-28", "2025-03-04"), await store.account("alice", "2025-03-01"),
                await store.spend("nobody", "2025-02-28", "2025-03-04"))

    spend, account, nobody = run(make_store, body)
    assert spend == [("2025-03-01", 0.375), ("2025-03-04", 1.0)]
    assert (account.spent_today_usd, account.requests_today, account.spent_usd) == (0.375, 2, 1.875)
    assert account.balance_usd is None and nobody == []


def test_account_is_none_for_names_the_store_never_heard_of(make_store):
    async def body(store):
        await store.admit(Ask("r1", "quiet", rpm=5))  # admitted, never settled: not known yet
        return await store.account("ghost", DAY), await store.account("quiet", DAY)

    assert run(make_store, body) == (None, None)


def test_stored_responses_are_scoped_to_their_token_and_expire(make_store):
    async def body(store):
        await store.put_response("alice", "resp_1", b'{"id": "resp_1"}', ttl_s=1.0)
        await store.put_response("alice", "resp_2", b"kept", ttl_s=30)
        mine, theirs = await store.get_response("alice", "resp_1"), await store.get_response("bob", "resp_1")
        await asyncio.sleep(1.2)  # the answer's time passing: nothing to await
        return mine, theirs, await store.get_response("alice", "resp_1"), await store.get_response("alice", "resp_2")

    assert run(make_store, body) == (b'{"id": "resp_1"}', None, None, b"kept")


def test_key_health_rest_and_resting(make_store):
    async def body(store):
        now = time.time()
        await store.rest_key("openai-1#0", now + 1.0)
        await store.rest_key("openai-1#1", now + 30)
        await store.rest_key("openai-1#1", now + 5)  # an earlier end does not shorten a rest
        both = await store.resting_keys()
        await asyncio.sleep(1.2)  # the rest's time passing: nothing to await
        return both, await store.resting_keys(), now

    both, later, now = run(make_store, body)
    assert set(both) == {"openai-1#0", "openai-1#1"}
    assert later == {"openai-1#1": pytest.approx(now + 30)}


def test_ip_rpm_counts_per_client_ip(make_store):
    async def body(store):
        one = await admit_all(store, [Ask(f"r{i}", None, ip="203.0.113.7", ip_rpm=5) for i in range(20)])
        other = await store.admit(Ask("x", None, ip="2001:db8::1", ip_rpm=5))
        unlimited = await admit_all(store, [Ask(f"u{i}", None, ip="203.0.113.7") for i in range(3)])
        return one, other, unlimited

    one, other, unlimited = run(make_store, body)
    assert sum(a.ok for a in one) == 5 and {a.reason for a in one if not a.ok} == {"ip_rpm"}
    assert other.ok and all(a.ok for a in unlimited)


def test_awkward_names_keep_to_their_own_keys(make_store):
    async def body(store):
        # Unescaped, token "a}:resp:x"'s account and token "a"'s answer "x}:acct" would share a key.
        await store.put_response("a", "x}:acct", b"answer", 30)
        await store.set_balance("a}:resp:x", 1.0)
        await store.set_balance("a", 2.0)
        return (await store.account("a}:resp:x", DAY), await store.account("a", DAY),
                await store.get_response("a", "x}:acct"))

    odd, plain, answer = run(make_store, body)
    assert (odd.balance_usd, plain.balance_usd, answer) == (1.0, 2.0, b"answer")


def test_open_store_by_scheme(redis_url):  # noqa: F811
    async def main():
        memory, redis = open_store("memory://"), open_store(redis_url, prefix=fresh_prefix())
        await redis.ping()
        await redis.aclose()
        return type(memory), type(redis)

    assert asyncio.run(main()) == (MemoryStore, RedisStore)
    with pytest.raises(ValueError, match="unknown scheme"):
        open_store("postgres://db")
    with pytest.raises(ValueError, match="prefix"):
        open_store(redis_url, prefix="a{b}:")


def test_a_memory_url_with_a_path_and_a_prefix_opens_a_memory_store():
    # (the config accepts `memory://…` and always has a prefix: the runtime passes it to any store)
    assert type(open_store("memory://local", prefix="aurax:")) is MemoryStore


def test_two_clients_on_one_server_share_the_limits(redis_url):  # noqa: F811
    prefix = fresh_prefix()

    async def main():
        stores = [RedisStore.from_url(redis_url, prefix=prefix) for _ in range(2)]
        money = await asyncio.gather(*(
            stores[i % 2].admit(Ask(f"m{i}", "alice", usd=0.01, opening_usd=0.05)) for i in range(30)))
        rpm = await asyncio.gather(*(stores[i % 2].admit(Ask(f"q{i}", "bob", rpm=10)) for i in range(50)))
        for store in stores:
            await store.aclose()
        return money, rpm

    money, rpm = asyncio.run(asyncio.wait_for(main(), 30))
    assert sum(a.ok for a in money) == 5 and sum(a.ok for a in rpm) == 10


_CLIENT = """
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
from relay.state import Ask
from relay.state.redis_store import RedisStore

async def main(url, prefix, tag):
    store = RedisStore.from_url(url, prefix=prefix)
    await store.ping()
    print("ready", flush=True)
    sys.stdin.readline()  # go
    money = await asyncio.gather(*(store.admit(Ask(f"{tag}m{i}", "alice", usd=0.01, opening_usd=0.05))
                                   for i in range(30)))
    rpm = await asyncio.gather(*(store.admit(Ask(f"{tag}q{i}", "bob", rpm=25)) for i in range(30)))
    await store.aclose()
    print(json.dumps([sum(a.ok for a in money), sum(a.ok for a in rpm)]), flush=True)

asyncio.run(main(*sys.argv[2:]))
"""


def test_two_processes_never_exceed_the_limits_together(redis_url):  # noqa: F811
    prefix = fresh_prefix()
    procs = [subprocess.Popen([sys.executable, "-c", _CLIENT, str(ROOT), redis_url, prefix, f"p{n}"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for n in range(2)]
    try:
        for proc in procs:
            assert select.select([proc.stdout], [], [], 30)[0], "a client never said it was ready"
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:  # both at once
            proc.stdin.write("go\n")
            proc.stdin.flush()
        counts = [json.loads(proc.communicate(timeout=30)[0]) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert sum(c[0] for c in counts) == 5  # $0.05 at $0.01 a request
    assert sum(c[1] for c in counts) == 25  # rpm 25


def test_the_memory_store_remembers_a_bounded_number_of_settled_requests():
    """Nothing replays settlements to a store in memory: it keeps a window of ids, not an hour's."""
    from relay.state.memory import MemoryStore

    store = MemoryStore(settled_max=100)
    store.settle_now([Settlement(f"r{i}", "busy", "2025-03-01", 0.0, 1) for i in range(1000)])
    assert len(store._settled) <= 100
    store.settle_now([Settlement("r999", "busy", "2025-03-01", 1.0, 1)])  # a repeat of a recent one
    account = asyncio.run(store.account("busy", "2025-03-01"))
    assert account.spent_usd == 0 and account.requests_today == 1000
