"""Two replicas, one redis-server (SPEC §11): balances that concurrency cannot overdraw, limits and
key health for the whole fleet, and not a cent lost when the store dies and comes back."""

from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import servers
from redis_server import RedisServer
from relay.state import open_store

CONFIG = """
[state]
url = "{state}"
timeout_ms = {timeout_ms}
health_refresh_s = 0.2
[proxy]
cooldown_s = 60
sticky = false
[passthrough]
openai = "{up}/v1"
rpm_per_ip = 4
[groups.default]
multiplier = 1
[[tokens]]
name = "prepaid"
key = "sk-ax-prepaid"
group = "default"
balance_usd = 0.05
[[tokens]]
name = "limited"
key = "sk-ax-limited"
group = "default"
rpm = 10
[[tokens]]
name = "metered"
key = "sk-ax-metered"
group = "default"
tpm = 1000
[[tokens]]
name = "rich"
key = "sk-ax-rich"
group = "default"
balance_usd = 1000
[[channels]]
name = "oa"
type = "openai"
base_url = "{up}/v1"
keys = ["oa-key"]
models = ["gpt-4o-mini", "cent-model"]
[[channels]]
name = "flaky"
type = "openai"
base_url = "{up}/v1"
keys = ["fail-500-flaky", "healthy-key"]
models = ["flaky-model"]
[[channels]]
name = "picky"
type = "openai"
base_url = "{up}/v1"
keys = ["fail-403-picky", "other-key"]
models = ["picky-model"]
[prices]
"cent-model" = {{ request = 0.01 }}
"gpt-4o-mini" = {{ input = 0.15, output = 0.6 }}
"""


def start_replicas(upstream, redis, tmp_path_factory, timeout_ms: int = 2000):
    return servers.fleet(CONFIG.format(up=upstream.url, state=redis.url, timeout_ms=timeout_ms), tmp_path_factory)


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"), persist=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replicas(upstream, redis, tmp_path_factory):
    with start_replicas(upstream, redis, tmp_path_factory) as pair:
        yield pair


def chat(url: str, key: str, model: str = "cent-model", text: str = "hi") -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=30,
                      json={"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 16})


def spread(replicas, key: str, n: int, model: str = "cent-model") -> list[httpx.Response]:
    """`n` requests at once, alternating between the replicas."""
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda i: chat(replicas[i % 2].url, key, model), range(n)))


def account(url: str, name: str):
    async def read():
        store = open_store(url)
        try:
            return await store.account(name, dt.datetime.now(dt.timezone.utc).date().isoformat())
        finally:
            await store.aclose()

    return asyncio.run(read())


def test_concurrency_across_replicas_never_overdraws_a_balance(replicas, redis):
    """30 requests at once over two replicas, $0.05 at $0.01 a call: exactly 5 are served."""
    answers = spread(replicas, "sk-ax-prepaid", 30)
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(200) == 5 and statuses.count(429) == 25
    refusal = next(r for r in answers if r.status_code == 429).json()["error"]
    assert refusal["code"] == "insufficient_quota" and refusal["type"] == "insufficient_quota"
    assert "prepaid" in refusal["message"]
    found = servers.until(lambda: (a := account(redis.url, "prepaid")) is not None and a.requests_today >= 5 and a,
                          5, lambda: account(redis.url, "prepaid"))
    assert found.balance_usd == pytest.approx(0.0) and found.spent_usd == pytest.approx(0.05)


def test_rpm_holds_for_the_whole_fleet(replicas):
    answers = spread(replicas, "sk-ax-limited", 30, model="gpt-4o-mini")
    assert [r.status_code for r in answers].count(200) == 10
    refused = next(r for r in answers if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1 and "10 requests per minute" in refused.json()["error"]["message"]


def test_tpm_is_reserved_at_admission_so_concurrency_cannot_pass_it(replicas):
    """Each request reserves its input and its max_tokens against tpm before it runs, and settles
    to what it used: 200 requests, 50 at a time, under tpm = 1000 (they were all admitted when
    tokens were only counted after) use no more than 1000 tokens in the minute between them."""
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda i: chat(replicas[i % 2].url, "sk-ax-metered", "gpt-4o-mini", "x" * 150),
                                range(200)))
    assert all(r.status_code in (200, 429) for r in answers)
    served = [r.headers["x-request-id"] for r in answers if r.status_code == 200]
    assert 0 < len(served) < 200
    def lines() -> list[dict]:
        return [r for server in replicas for r in servers.usage_records(server) if r["request_id"] in served]

    records = servers.until(lambda: len(found := lines()) == len(served) and found,  # (written in batches)
                            5, lambda: f"{len(lines())} usage lines of {len(served)}")
    assert sum(r["usage"]["input_tokens"] + r["usage"]["output_tokens"] for r in records) <= 1000


def test_passthrough_requests_per_address_hold_for_the_whole_fleet(replicas):
    """A provider's own key (passthrough) is limited per client address, fleet-wide."""
    answers = spread(replicas, "sk-provider-own-key", 10, model="gpt-4o-mini")
    assert [r.status_code for r in answers].count(200) == 4
    refused = next(r for r in answers if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1 and "client address" in refused.json()["error"]["message"]


def cooling_keys(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith("aurax_cooling_keys")))


def test_a_key_that_fails_rests_on_every_replica(replicas):
    a, b = replicas
    attempts = []
    for _ in range(4):  # the keys are taken in turn: within two requests A meets the failing one
        response = chat(a.url, "sk-ax-rich", "flaky-model")
        assert response.status_code == 200
        attempts.append(servers.usage_record(a, response.headers["x-request-id"])["attempts"])
    assert 2 in attempts
    # (B reads the fleet's key health every 0.2 s here)
    servers.until(lambda: cooling_keys(b.url) >= 1, 5, lambda: "replica B never saw the resting key")
    for _ in range(6):
        response = chat(b.url, "sk-ax-rich", "flaky-model")
        assert servers.usage_record(b, response.headers["x-request-id"])["attempts"] == 1


def test_a_403_tries_another_key_but_rests_none(replicas):
    a, _ = replicas
    before = cooling_keys(a.url)
    for _ in range(3):
        response = chat(a.url, "sk-ax-rich", "picky-model")
        assert response.status_code == 200
    assert cooling_keys(a.url) == before  # a client could provoke those 403s: our keys do not rest


def test_a_store_killed_and_restarted_loses_no_cent(upstream, tmp_path_factory):
    """Requests on both replicas while the store dies (SIGKILL) and comes back: served on local
    counts meanwhile, the deductions journaled and written back; after both replicas stop, the
    store's spend equals the sum of billed_usd in their usage lines."""
    redis = RedisServer(tmp_path_factory.mktemp("redis-outage"), persist=True)
    try:
        with start_replicas(upstream, redis, tmp_path_factory) as pair:
            served = []
            for phase in ("before", "during", "after"):
                if phase == "during":
                    redis.kill()
                elif phase == "after":
                    redis = RedisServer(redis.directory, port=redis.port, persist=True)
                for i in range(12):
                    response = chat(pair[i % 2].url, "sk-ax-rich", "gpt-4o-mini", text=f"{phase} {i}")
                    assert response.status_code == 200, response.text
                    served.append(response.headers["x-request-id"])
            assert [server.stop() for server in pair] == [0, 0]  # SIGTERM: the journal is written before exit
        records = [r for server in pair for r in servers.usage_records(server) if r["request_id"] in served]
        assert len(records) == 36 and all(r["billed_usd"] > 0 for r in records)
        found = account(redis.url, "rich")
        assert found.spent_usd == pytest.approx(sum(r["billed_usd"] for r in records), abs=1e-8)
        assert found.balance_usd == pytest.approx(1000 - found.spent_usd, abs=1e-8)
        assert found.requests_today == 36
    finally:
        redis.stop()
