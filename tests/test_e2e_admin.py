"""A prepaid token sold through the admin API, end to end, as an operator and its users see it:
the proxy in its own process against the fake upstream, driven by curl-like calls and the
official SDKs; then two replicas sharing one real redis-server; then /readyz with a closed store."""

from __future__ import annotations

import time

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

import servers
from redis_server import RedisServer, fresh_prefix, free_port, redis_url  # noqa: F401  (a fixture)
from relay.state import NANO

ADMIN_KEY = "e2e-admin-key-0123456789abcdef"
MULTIPLIER = 1.65  # the doc's example: official $1 at ×1.65, the platform deducts $1.65
CONFIG = """
[proxy]
signing_secret = "e2e-admin-signing-secret"
[groups.resale]
multiplier = 1.65
[[channels]]
name = "openai"
type = "openai"
base_url = "{up}/v1"
keys = ["channel-key-openai"]
models = ["gpt-4o"]
groups = ["resale"]
[[channels]]
name = "anthropic"
type = "anthropic"
base_url = "{up}"
keys = ["channel-key-anthropic"]
models = ["claude-sonnet-4-20250514"]
groups = ["resale"]
[[channels]]
name = "gemini"
type = "gemini"
base_url = "{up}"
keys = ["channel-key-gemini"]
models = ["gemini-2.5-pro"]
groups = ["resale"]
[prices]
"gpt-4o" = {{ input = 2.5, cached_input = 1.25, output = 10 }}
"claude-sonnet-4-20250514" = {{ input = 3, cached_input = 0.3, output = 15 }}
"gemini-2.5-pro" = {{ input = 1.25, cached_input = 0.125, output = 10 }}
{extra}
"""
WITH_ADMIN = f'[admin]\nkey = "{ADMIN_KEY}"\n'
USAGE = {"x-fake-usage": "1000,500,200,0"}  # 1000 input of which 200 cached, 500 output
HI = [{"role": "user", "content": "hi"}]


def config(upstream, extra: str = WITH_ADMIN) -> str:
    return CONFIG.format(up=upstream.url, extra=extra)


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    server = servers.proxy(config(upstream), tmp_path_factory.mktemp("admin"))
    yield server
    server.stop()


# -- the operator's side: plain HTTP, as curl does it ----------------------------------------------

def admin(server, method: str, path: str, key: str = ADMIN_KEY, **kw) -> httpx.Response:
    return httpx.request(method, server.url + path, headers={"authorization": f"Bearer {key}"}, timeout=10, **kw)


def sell(server, name: str, usd: float) -> str:
    response = admin(server, "POST", "/admin/tokens", json={"name": name, "group": "resale", "balance_usd": usd})
    assert response.status_code == 201, response.text
    return response.json()["token"]


def account(server, name: str) -> dict:
    response = admin(server, "GET", f"/admin/tokens/{name}")
    assert response.status_code == 200, response.text
    return response.json()


def until(found, timeout: float = 5.0, what: str = "the condition"):
    return servers.until(found, timeout, lambda: f"{what} did not happen within {timeout} s")


def nano(usd: float) -> int:
    return round(usd * NANO)


# -- the user's side: the official SDKs, and what NextChat asks ------------------------------------

def ask_openai(server, token: str) -> None:
    openai.OpenAI(base_url=server.url + "/v1", api_key=token, max_retries=0, timeout=20,
                  default_headers=USAGE).chat.completions.create(model="gpt-4o", messages=HI)


def ask_anthropic(server, token: str) -> None:
    client = anthropic.Anthropic(base_url=server.url, api_key=token, max_retries=0, timeout=20,
                                 default_headers=USAGE)
    with client.messages.stream(model="claude-sonnet-4-20250514", max_tokens=100, messages=HI) as stream:
        stream.until_done()


def ask_gemini(server, token: str) -> None:
    # (held in a name: a client nobody refers to closes its connections under the call)
    client = genai.Client(api_key=token, http_options=types.HttpOptions(base_url=server.url, headers=USAGE))
    client.models.generate_content(model="gemini-2.5-pro", contents="hi")


def nextchat(server, token: str) -> tuple[dict, dict]:
    """What NextChat fetches (in parallel) to show "used $X of $Y" — without the query string, as
    its server-side forwarder sends it."""
    headers = {"authorization": f"Bearer {token}"}
    subscription = httpx.get(f"{server.url}/dashboard/billing/subscription", headers=headers, timeout=10)
    usage = httpx.get(f"{server.url}/dashboard/billing/usage", headers=headers, timeout=10)
    assert subscription.status_code == usage.status_code == 200, (subscription.text, usage.text)
    return subscription.json(), usage.json()


def test_a_prepaid_token_falls_by_official_price_times_multiplier(proxy):
    token = sell(proxy, "nina", 1.0)
    assert account(proxy, "nina") == {"name": "nina", "balance_usd": 1.0, "reserved_usd": 0.0, "spent_usd": 0.0,
                                      "spent_today_usd": 0.0, "requests_today": 0, "revoked": False}
    billed = 0
    for n, ask in enumerate((ask_openai, ask_anthropic, ask_gemini), 1):
        ask(proxy, token)
        record = servers.wait_records(proxy, lambda r: r["token"] == "nina", n)[-1]
        assert record["status"] == 200 and record["multiplier"] == MULTIPLIER
        assert nano(record["billed_usd"]) == nano(record["official_usd"] * MULTIPLIER)
        billed += nano(record["billed_usd"])
        seen = until(lambda: (a := account(proxy, "nina"))["requests_today"] == n and a,
                     what=f"request {n} settled")
        assert nano(seen["balance_usd"]) == NANO - billed and nano(seen["spent_usd"]) == billed
        assert nano(seen["spent_today_usd"]) == billed and seen["reserved_usd"] == 0
        subscription, usage = nextchat(proxy, token)
        assert subscription["hard_limit_usd"] == 1.0  # the credit: balance + spent
        assert round(usage["total_usage"] * NANO / 100) == billed  # cents
        assert sum(d["line_items"][0]["cost"] for d in usage["daily_costs"]) == pytest.approx(usage["total_usage"])
    # official: 0.00725 (OpenAI), 0.00996 (Anthropic), 0.006025 (Gemini); × 1.65
    assert billed == nano((0.00725 + 0.00996 + 0.006025) * MULTIPLIER)
    # NextChat shows "used $0.04 of $1" (it rounds cents)
    assert (round(usage["total_usage"]) / 100, round(subscription["hard_limit_usd"] * 100) / 100) == (0.04, 1.0)

    topped = admin(proxy, "POST", "/admin/tokens/nina/credit", json={"usd": 2})
    assert topped.status_code == 200 and nano(topped.json()["balance_usd"]) == 3 * NANO - billed
    debited = admin(proxy, "POST", "/admin/tokens/nina/credit", json={"usd": -0.5})
    assert nano(debited.json()["balance_usd"]) == nano(2.5) - billed
    assert nextchat(proxy, token)[0]["hard_limit_usd"] == 2.5


def test_revoke_refuses_the_next_request_and_unrevoke_lets_it_in(proxy):
    token = sell(proxy, "oscar", 1.0)
    ask_openai(proxy, token)
    assert admin(proxy, "POST", "/admin/tokens/oscar/revoke").json() == {"name": "oscar", "revoked": True}
    with pytest.raises(openai.AuthenticationError) as info:
        ask_openai(proxy, token)
    assert info.value.code == "token_revoked"
    with pytest.raises(anthropic.AuthenticationError):
        ask_anthropic(proxy, token)
    billing = httpx.get(f"{proxy.url}/v1/dashboard/billing/subscription", headers={"authorization": f"Bearer {token}"})
    assert billing.status_code == 401 and billing.json()["error"]["code"] == "token_revoked"
    assert account(proxy, "oscar")["revoked"] is True
    assert admin(proxy, "POST", "/admin/tokens/oscar/unrevoke").json() == {"name": "oscar", "revoked": False}
    ask_openai(proxy, token)
    ask_gemini(proxy, token)


def test_out_of_balance_is_each_dialects_own_refusal(proxy):
    token = sell(proxy, "petra", 0.0001)  # less than any request here reserves
    with pytest.raises(openai.RateLimitError) as oai_error:
        ask_openai(proxy, token)
    assert oai_error.value.status_code == 429 and oai_error.value.code == "insufficient_quota"
    with pytest.raises(anthropic.BadRequestError) as claude_error:
        ask_anthropic(proxy, token)
    assert "credit balance is too low" in claude_error.value.message
    with pytest.raises(genai_errors.ClientError) as gemini_error:
        ask_gemini(proxy, token)
    assert gemini_error.value.code == 429 and gemini_error.value.status == "RESOURCE_EXHAUSTED"
    assert admin(proxy, "POST", "/admin/tokens/petra/credit", json={"usd": 1}).status_code == 200
    ask_openai(proxy, token)  # topped up: served again
    assert until(lambda: account(proxy, "petra")["requests_today"] == 1, what="the settlement")


def test_what_the_operator_gets_wrong(proxy):
    assert admin(proxy, "GET", "/admin/tokens/nina", key="not-the-key").status_code == 401
    assert httpx.get(f"{proxy.url}/admin/tokens/nina", timeout=10).status_code == 401
    bad = admin(proxy, "POST", "/admin/tokens", content=b'{"name": "q", "group": ')
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    unknown = admin(proxy, "POST", "/admin/tokens", json={"name": "q", "group": "resale", "credit": 5})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "credit"
    assert admin(proxy, "GET", "/admin/tokens/never-heard-of").status_code == 404
    assert ADMIN_KEY not in proxy.stdout() + proxy.stderr()


def test_no_admin_key_no_admin_api(upstream, tmp_path):
    with servers.proxy(config(upstream, extra=""), tmp_path) as server:
        for method, path in (("POST", "/admin/tokens"), ("GET", "/admin/tokens/nina")):
            response = admin(server, method, path, json={})
            assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_path"


# -- a fleet: two replicas, one redis-server ------------------------------------------------------

def test_two_replicas_share_balances_and_revocations(upstream, tmp_path, redis_url):  # noqa: F811
    shared = config(upstream, WITH_ADMIN + f'[state]\nurl = "{redis_url}"\nprefix = "{fresh_prefix()}"\n')
    with servers.proxy(shared, tmp_path) as a, servers.proxy(shared, tmp_path) as b:
        token = sell(a, "quinn", 1.0)
        ask_openai(b, token)
        billed = nano(servers.wait_records(b, lambda r: r["token"] == "quinn", 1)[0]["billed_usd"])
        seen = until(lambda: (x := account(a, "quinn"))["requests_today"] == 1 and x, what="B's spend seen on A")
        assert nano(seen["balance_usd"]) == NANO - billed
        assert round(nextchat(a, token)[1]["total_usage"] * NANO / 100) == billed

        assert admin(a, "POST", "/admin/tokens/quinn/revoke").status_code == 200
        revoked_at = time.monotonic()

        def refused_on_b():
            try:
                ask_openai(b, token)
            except openai.AuthenticationError as exc:
                return exc.code == "token_revoked"
            return False

        until(refused_on_b, timeout=1.0, what="the revocation on replica B")
        assert time.monotonic() - revoked_at < 1.0
        assert admin(a, "POST", "/admin/tokens/quinn/unrevoke").status_code == 200
        ask_openai(b, token)


# -- readiness ----------------------------------------------------------------------------------

def test_readyz_is_503_while_a_closed_store_is_down(upstream, tmp_path):
    port = free_port()  # nothing listens there yet: the store is down from the start
    state = f'[state]\nurl = "redis://127.0.0.1:{port}"\nhealth_refresh_s = 0.1\n'
    closed = config(upstream, state + 'on_outage = "closed"\n')
    with servers.proxy(closed, tmp_path) as server, servers.proxy(config(upstream, state), tmp_path) as open_one:
        def ready(s) -> httpx.Response:
            return httpx.get(f"{s.url}/readyz", timeout=10)

        down = until(lambda: (r := ready(server)).status_code == 503 and r, what="the closed replica going unready")
        assert down.json() == {"status": "state store unavailable"}
        assert ready(open_one).status_code == 200  # it serves on its own counts meanwhile
        redis = RedisServer(tmp_path, port=port)
        try:
            until(lambda: ready(server).status_code == 200, timeout=10, what="readiness once the store is back")
        finally:
            redis.stop()
