"""Honest billing from a stateless replica, end to end: usage from every dialect in the usage lines
the proxy writes, official price × group multiplier, metrics, limits, signed tokens, webhook."""

from __future__ import annotations

import http.server
import json
import re
import threading
import time

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types

import servers
from relay.tokens import mint

SECRET = "signing-secret-for-tests"
CONFIG = """
[proxy]
signing_secret = "{secret}"
trust_cloudflare = true
[passthrough]
openai = "{up}/v1"
[groups.default]
multiplier = 1
[groups.az]
multiplier = 1.5
[groups.claude-direct]
multiplier = 16
[[tokens]]
name = "azure-team"
key = "sk-ax-az-secret-1"
group = "az"
[[tokens]]
name = "claude-team"
key = "sk-ax-claude-secret-2"
group = "claude-direct"
[[tokens]]
name = "default-team"
key = "sk-ax-default-secret-3"
group = "default"
[[tokens]]
name = "limited"
key = "sk-ax-limited-secret-4"
group = "default"
rpm = 2
[[tokens]]
name = "thrifty"
key = "sk-ax-thrifty-secret-5"
group = "default"
tpm = 100
[[revoked]]
name = "fired"
[[channels]]
name = "openai"
type = "openai"
base_url = "{up}/v1"
keys = ["channel-key-openai-zz"]
responses = true  # (the fake serves /v1/responses, as OpenAI does)
models = ["gpt-4o", "gpt-4o-mini", "no-price-model", "text-embedding-3-large"]
groups = ["default", "az"]
[[channels]]
name = "openai-cut"
type = "openai"
base_url = "{up}/v1"
keys = ["cut-channel-key"]
models = ["gpt-cut"]
groups = ["default"]
[[channels]]
name = "anthropic"
type = "anthropic"
base_url = "{up}"
keys = ["channel-key-anthropic-zz"]
models = ["claude-sonnet-4-20250514"]
groups = ["default", "claude-direct"]
[[channels]]
name = "gemini"
type = "gemini"
base_url = "{up}"
keys = ["channel-key-gemini-zz"]
models = ["gemini-2.5-pro"]
groups = ["default"]
[prices]
"gpt-4o" = {{ input = 2.5, cached_input = 1.25, output = 10 }}
"gpt-4o-mini" = {{ input = 0.15, cached_input = 0.075, output = 0.6 }}
"gpt-cut" = {{ input = 1, output = 1 }}
"claude-sonnet-4-20250514" = {{ input = 3, cached_input = 0.3, output = 15 }}
"gemini-2.5-pro" = {{ input = 1.25, cached_input = 0.125, output = 10 }}
"text-embedding-3-large" = {{ input = 0.13 }}
{usage}
"""
USAGE = {"x-fake-usage": "1000,500,200,0"}  # 1000 input of which 200 cached, 500 output


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    server = servers.proxy(CONFIG.format(up=upstream.url, secret=SECRET, usage=""), tmp_path_factory.mktemp("billing"))
    yield server
    server.stop()


def oai(proxy, key: str, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0, timeout=20, **kw)


def record_for(proxy, headers) -> dict:
    return servers.usage_record(proxy, headers["x-request-id"])


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_az_group_pays_official_times_1_5_with_cached_rate(proxy, stream):
    raw = oai(proxy, "sk-ax-az-secret-1", default_headers=USAGE).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=stream)
    chunks = list(raw.parse()) if stream else None
    if stream:
        assert all(c.usage is None for c in chunks)  # the client did not ask: the usage chunk is removed
    record = record_for(proxy, raw.headers)
    assert record["usage"] == {"input_tokens": 1000, "output_tokens": 500, "cached_input_tokens": 200,
                               "reasoning_tokens": 0, "cache_write_tokens": 0}
    # (800 × 2.5 + 200 × 1.25 + 500 × 10) / 1e6 = 0.00725; × 1.5
    assert record["official_usd"] == 0.00725 and record["multiplier"] == 1.5 and record["billed_usd"] == 0.010875
    assert record["group"] == "az" and record["token"] == "azure-team" and record["estimated"] is False
    assert record["stream"] is stream and record["status"] == 200


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_claude_direct_pays_official_times_16(proxy, stream):
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ax-claude-secret-2", max_retries=0,
                                 default_headers=USAGE)
    kwargs = dict(model="claude-sonnet-4-20250514", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    if stream:
        with client.messages.with_streaming_response.create(stream=True, **kwargs) as response:
            request_id = response.headers["x-request-id"]
            response.read()
    else:
        request_id = client.messages.with_raw_response.create(**kwargs).headers["x-request-id"]
    record = servers.usage_record(proxy, request_id)
    assert record["usage"] == {"input_tokens": 1000, "output_tokens": 500, "cached_input_tokens": 200,
                               "reasoning_tokens": 0, "cache_write_tokens": 0}
    # (800 × 3 + 200 × 0.3 + 500 × 15) / 1e6 = 0.00996; × 16
    assert record["official_usd"] == 0.00996 and record["billed_usd"] == 0.15936
    assert record["channel"] == "anthropic" and record["dialect"] == "anthropic"


def test_openai_client_asking_for_usage_gets_it(proxy):
    chunks = list(oai(proxy, "sk-ax-default-secret-3", default_headers=USAGE).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True}))
    assert chunks[-1].usage.prompt_tokens == 1000 and chunks[-1].usage.prompt_tokens_details.cached_tokens == 200


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_gemini_usage_with_thoughts(proxy, stream):
    client = genai.Client(api_key="sk-ax-default-secret-3", http_options=types.HttpOptions(
        base_url=proxy.url, headers={"x-fake-usage": "1000,500,200,100"}))
    if stream:
        list(client.models.generate_content_stream(model="gemini-2.5-pro", contents="hi"))
    else:
        client.models.generate_content(model="gemini-2.5-pro", contents="hi")
    record = servers.wait_records(proxy, lambda r: r["model"] == "gemini-2.5-pro" and r["stream"] is stream, 1)[-1]
    assert record["usage"] == {"input_tokens": 1000, "output_tokens": 500, "cached_input_tokens": 200,
                               "reasoning_tokens": 100, "cache_write_tokens": 0}
    # (800 × 1.25 + 200 × 0.125 + 500 × 10) / 1e6
    assert record["official_usd"] == 0.006025 and record["billed_usd"] == 0.006025


def test_responses_and_embeddings_usage(proxy):
    client = oai(proxy, "sk-ax-default-secret-3", default_headers=USAGE)
    raw = client.responses.with_raw_response.create(model="gpt-4o", input="hi")
    assert record_for(proxy, raw.headers)["usage"]["cached_input_tokens"] == 200
    raw = client.embeddings.with_raw_response.create(model="text-embedding-3-large", input="hi")
    record = record_for(proxy, raw.headers)
    assert record["usage"]["input_tokens"] == 1000 and record["official_usd"] == 0.00013


def test_cut_stream_is_estimated(proxy):
    with pytest.raises(openai.APIError):
        list(oai(proxy, "sk-ax-default-secret-3").chat.completions.create(
            model="gpt-cut", messages=[{"role": "user", "content": "a fairly long question " * 10}], stream=True))
    record = servers.wait_records(proxy, lambda r: r["model"] == "gpt-cut", 1)[-1]
    assert record["estimated"] is True and record["usage"]["input_tokens"] > 0
    assert record["error"] and record["status"] == 200


def test_a_stream_the_client_stops_early_is_still_billed(proxy):
    """NextChat's "stop" button: the tokens sent so far were used (and the upstream charges them)."""
    with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", timeout=20,
                      headers={"authorization": "Bearer sk-ax-az-secret-1", "x-fake-chunks": "20",
                               "x-fake-gap-ms": "50"},
                      json={"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "long"}]}
                      ) as response:
        request_id = response.headers["x-request-id"]
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
    record = servers.usage_record(proxy, request_id)
    assert record["status"] == 499 and record["estimated"] is True
    assert record["usage"]["input_tokens"] > 0 and record["billed_usd"] > 0


def test_unpriced_model_is_billed_null_and_counted(proxy):
    raw = oai(proxy, "sk-ax-default-secret-3").chat.completions.with_raw_response.create(
        model="no-price-model", messages=[{"role": "user", "content": "hi"}])
    record = record_for(proxy, raw.headers)
    assert record["billed_usd"] is None and record["official_usd"] is None
    metrics = httpx.get(f"{proxy.url}/metrics", timeout=10).text
    assert 'aurax_unpriced_requests_total{model="no-price-model"} 1.0' in metrics


def test_passthrough_is_logged_not_billed(proxy):
    raw = oai(proxy, "sk-proj-own-key", default_headers=USAGE).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    record = record_for(proxy, raw.headers)
    assert record["passthrough"] is True and record["usage"]["input_tokens"] == 1000
    assert record["official_usd"] is None and record["billed_usd"] is None and record["token"] is None


def test_client_ip_from_cloudflare_when_trusted(proxy, received):
    raw = oai(proxy, "sk-ax-default-secret-3", default_headers={"CF-Connecting-IP": "203.0.113.50",
                                                               "CF-Ray": "8c1d", "CF-IPCountry": "NL"}
              ).chat.completions.with_raw_response.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert record_for(proxy, raw.headers)["client_ip"] == "203.0.113.50"
    assert not [h for h in received.last()["headers"] if h.startswith("cf-")]  # never sent upstream


def test_failed_and_refused_requests_have_records_too(proxy):
    response = httpx.post(f"{proxy.url}/v1/chat/completions", headers={"authorization": "Bearer sk-ax-nobody"},
                          json={"model": "gpt-4o", "messages": []}, timeout=10)
    record = record_for(proxy, response.headers)
    assert record["status"] == 401 and record["billed_usd"] is None and record["token"] is None


def test_metrics_by_group_model_channel_status(proxy):
    oai(proxy, "sk-ax-az-secret-1", default_headers=USAGE).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    text = httpx.get(f"{proxy.url}/metrics", timeout=10).text
    assert 'aurax_requests_total{channel="openai",dialect="openai",group="az",model="gpt-4o",status="200"}' in text
    assert 'aurax_tokens_total{channel="openai",group="az",kind="cached_input",model="gpt-4o"}' in text
    assert 'aurax_billed_usd_total{group="az",model="gpt-4o"}' in text
    assert 'aurax_upstream_attempts_total{channel="openai"}' in text
    for name in ("aurax_cooling_keys", "aurax_open_streams", "aurax_request_seconds_bucket",
                 "aurax_usage_webhook_dropped_total"):
        assert name in text


def test_rpm_limit_429_with_retry_after_in_each_dialect(proxy):
    client = oai(proxy, "sk-ax-limited-secret-4")
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert "2 requests per minute" in info.value.message and int(info.value.response.headers["retry-after"]) >= 1
    with pytest.raises(anthropic.RateLimitError) as info:
        anthropic.Anthropic(base_url=proxy.url, api_key="sk-ax-limited-secret-4", max_retries=0).messages.create(
            model="claude-sonnet-4-20250514", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["type"] == "rate_limit_error"


def test_tpm_limit(proxy):
    client = oai(proxy, "sk-ax-thrifty-secret-5", default_headers=USAGE)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    record_for(proxy, raw.headers)  # its 1500 tokens are charged when the request finishes
    with pytest.raises(openai.RateLimitError, match="100 tokens per minute"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


def test_signed_tokens(proxy):
    good = mint(SECRET, name="signed-bob", group="az", models=["gpt-4o*"], exp=int(time.time()) + 600)
    raw = oai(proxy, good, default_headers=USAGE).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    record = record_for(proxy, raw.headers)
    assert record["token"] == "signed-bob" and record["group"] == "az" and record["billed_usd"] == 0.010875
    with pytest.raises(openai.PermissionDeniedError):
        oai(proxy, good).chat.completions.create(model="claude-sonnet-4-20250514",
                                                 messages=[{"role": "user", "content": "hi"}])
    payload, mac = good[len("sk-ax-"):].split(".")
    tampered = payload[:8] + ("B" if payload[8] == "A" else "A") + payload[9:]
    refused = {
        f"sk-ax-{tampered}.{mac}": "bad signature",
        f"sk-ax-{payload}x.{mac}": "invalid proxy token",  # another length: not base64url, or not signed
        mint(SECRET, name="old", group="az", exp=int(time.time()) - 1): "expired",
        mint(SECRET, name="fired", group="az"): "revoked",
        mint(SECRET, name="x", group="platinum"): "unknown group",
        mint("another-secret", name="x", group="az"): "bad signature",
    }
    for key, reason in refused.items():
        with pytest.raises(openai.AuthenticationError) as info:
            oai(proxy, key).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert reason in info.value.message


def test_no_key_or_token_secret_anywhere(proxy):
    oai(proxy, "sk-ax-az-secret-1").chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    httpx.post(f"{proxy.url}/v1beta/models/gemini-2.5-pro:generateContent?key=sk-ax-default-secret-3",
               json={"contents": [{"role": "user", "parts": [{"text": "q"}]}]}, timeout=10)
    everything = proxy.stdout() + proxy.stderr() + httpx.get(f"{proxy.url}/metrics", timeout=10).text
    for secret in ("az-secret-1", "claude-secret-2", "default-secret-3", "limited-secret-4", "thrifty-secret-5",
                   "channel-key-openai-zz", "channel-key-anthropic-zz", "channel-key-gemini-zz", "sk-proj-own-key",
                   SECRET):
        assert secret not in everything


class Collector(http.server.BaseHTTPRequestHandler):
    batches: list = []
    hold = threading.Event()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.path == "/slow":
            self.hold.wait(30)
        type(self).batches.append((self.headers.get("authorization"), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def collector():
    Collector.batches = []
    Collector.hold = threading.Event()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    Collector.hold.set()
    server.shutdown()


def test_webhook_ships_the_same_records_in_batches(upstream, tmp_path, collector):
    usage = f'[usage]\nwebhook = "{collector}/collect"\nbatch = 3\nflush_s = 0.2\nheaders = {{ "Authorization" = "Bearer collector" }}'
    with servers.proxy(CONFIG.format(up=upstream.url, secret=SECRET, usage=usage), tmp_path) as proxy:
        ids = []
        client = oai(proxy, "sk-ax-az-secret-1", default_headers=USAGE)
        for _ in range(4):
            ids.append(client.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}]).headers["x-request-id"])
        deadline = time.monotonic() + 5
        while sum(len(b) for _, b in Collector.batches) < 4:
            assert time.monotonic() < deadline, "the webhook did not deliver"
            time.sleep(0.02)
        lines = {r["request_id"]: r for r in servers.usage_records(proxy)}
    shipped = [r for _, batch in Collector.batches for r in batch]
    assert [r["request_id"] for r in shipped] == ids
    assert all(r == lines[r["request_id"]] for r in shipped)  # the same records as stdout
    assert all(len(batch) <= 3 for _, batch in Collector.batches)
    assert {auth for auth, _ in Collector.batches} == {"Bearer collector"}


def test_webhook_ships_what_is_waiting_when_the_proxy_stops(upstream, tmp_path, collector):
    usage = f'[usage]\nwebhook = "{collector}/collect"\nbatch = 100\nflush_s = 30'
    with servers.proxy(CONFIG.format(up=upstream.url, secret=SECRET, usage=usage), tmp_path) as proxy:
        client = oai(proxy, "sk-ax-default-secret-3")
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert Collector.batches == []  # a partial batch waits for flush_s...
    assert [len(batch) for _, batch in Collector.batches] == [3]  # ...unless the proxy stops first


def test_webhook_never_blocks_and_counts_drops(upstream, tmp_path, collector):
    usage = f'[usage]\nwebhook = "{collector}/slow"\nbatch = 1\nflush_s = 0.1\nqueue = 2'
    with servers.proxy(CONFIG.format(up=upstream.url, secret=SECRET, usage=usage), tmp_path) as proxy:
        client = oai(proxy, "sk-ax-default-secret-3")
        started = time.monotonic()
        for _ in range(8):
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert time.monotonic() - started < 5  # the collector hangs; requests do not wait for it
        deadline = time.monotonic() + 5
        while True:
            metrics = httpx.get(f"{proxy.url}/metrics", timeout=10).text
            dropped = float(re.search(r"^aurax_usage_webhook_dropped_total (\S+)$", metrics, re.M).group(1))
            if dropped >= 5:
                break
            assert time.monotonic() < deadline, metrics
            time.sleep(0.02)
        Collector.hold.set()
    assert dropped == 5  # 8 records: one in flight, two queued, five dropped
