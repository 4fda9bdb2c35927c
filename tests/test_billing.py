"""The billing endpoints apps read: date ranges, the shapes, who may ask, and browsers."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx
import pytest

from app import build_app
from relay.config import parse
from relay.errors import ProxyError
from relay.state import Account, Ask, Settlement, utc_today
from relay.tokens import mint
from routes.billing import (
    MAX_RANGE_DAYS, UNLIMITED_USD, credit_of, parse_day, subscription, usage, usage_range,
)

TODAY = date(2025, 3, 14)


@pytest.mark.parametrize("start, end, expected", [
    (None, None, (date(2025, 3, 1), date(2025, 3, 15))),  # NextChat's forwarder drops the query
    ("2025-03-01", "2025-03-15", (date(2025, 3, 1), date(2025, 3, 15))),
    ("2025-02-01", None, (date(2025, 2, 1), date(2025, 3, 15))),
    (None, "2025-03-10", (date(2025, 3, 1), date(2025, 3, 10))),
    ("2025-03-05", "2025-03-05", (date(2025, 3, 5), date(2025, 3, 5))),  # empty: the end is excluded
    ("2024-12-01", "2025-03-11", (date(2024, 12, 1), date(2025, 3, 11))),  # 100 days exactly
])
def test_usage_range(start, end, expected):
    assert usage_range(start, end, TODAY) == expected


def test_the_default_range_crosses_a_month_end():
    assert usage_range(None, None, date(2025, 1, 31)) == (date(2025, 1, 1), date(2025, 2, 1))
    assert usage_range(None, None, date(2024, 12, 31)) == (date(2024, 12, 1), date(2025, 1, 1))


@pytest.mark.parametrize("start, end, param", [
    ("2025-3-1", None, "start_date"),
    ("20250301", None, "start_date"),  # ISO, but not the form asked for
    ("2025-03-01T00:00", None, "start_date"),
    ("2025-02-30", None, "start_date"),
    ("", None, "start_date"),
    ("２０２５-03-01", None, "start_date"),  # fullwidth digits match \d
    (None, "tomorrow", "end_date"),
    ("2025-03-10", "2025-03-09", "end_date"),
    ("2024-12-01", "2025-03-12", "end_date"),  # 101 days
])
def test_bad_dates_and_ranges_are_400(start, end, param):
    with pytest.raises(ProxyError) as caught:
        usage_range(start, end, TODAY)
    assert caught.value.status == 400 and caught.value.param == param


def test_parse_day():
    assert parse_day("2024-02-29", "start_date") == date(2024, 2, 29)
    with pytest.raises(ProxyError):
        parse_day("2023-02-29", "start_date")
    assert MAX_RANGE_DAYS == 100


def test_usage_in_cents_with_a_line_a_day():
    spend = {"2025-03-01": 0.010875, "2025-03-03": 1.25, "2025-02-28": 9.0}
    body = usage(spend, date(2025, 3, 1), date(2025, 3, 4))
    assert body["object"] == "list"
    assert body["total_usage"] == pytest.approx(126.0875)
    assert [d["timestamp"] for d in body["daily_costs"]] == [1740787200, 1740873600, 1740960000]
    assert [d["line_items"][0]["cost"] for d in body["daily_costs"]] == pytest.approx([1.0875, 0, 125])
    assert usage(spend, date(2025, 3, 5), date(2025, 3, 5)) == {"object": "list", "total_usage": 0.0,
                                                                "daily_costs": []}


def test_subscription_shape():
    assert subscription(5.0, 1767225600.5) == {
        "object": "billing_subscription", "has_payment_method": True, "soft_limit_usd": 5.0,
        "hard_limit_usd": 5.0, "system_hard_limit_usd": 5.0, "access_until": 1767225600}
    unlimited = subscription(None, None)
    assert unlimited["hard_limit_usd"] == UNLIMITED_USD == 100_000_000 and unlimited["access_until"] == 0


def test_credit_is_balance_plus_spent():
    account = Account("a", balance_usd=4.989125, reserved_usd=0.2, spent_usd=0.010875, spent_today_usd=0.010875,
                      requests_today=1, revoked=False)
    assert credit_of(account, 1.0) == 5.0  # the store's balance wins over the opening credit
    assert credit_of(None, 2.5) == 2.5  # never used: its opening credit
    assert credit_of(None, None) is None
    unlimited = Account("a", None, 0.0, 3.0, 0.0, 0, False)
    assert credit_of(unlimited, None) is None


# -- in process, through the whole app ------------------------------------------------------------

SECRET = "billing-test-secret"
CONFIG = f"""
[proxy]
signing_secret = "{SECRET}"
[passthrough]
openai = "https://api.openai.test/v1"
[groups.default]
multiplier = 1
[[tokens]]
name = "paid"
key = "sk-ax-paid-1"
group = "default"
balance_usd = 5
[[tokens]]
name = "free"
key = "sk-ax-free-2"
group = "default"
"""


def run(app, requests):
    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://proxy") as client:
            return [await client.request(method, path, headers=headers) for method, path, headers in requests]

    return asyncio.run(main())


def make_app():
    return build_app(parse(CONFIG, env={}), transport=httpx.MockTransport(lambda r: httpx.Response(500)))


def bearer(key: str) -> dict:
    return {"authorization": f"Bearer {key}"}


@pytest.mark.parametrize("path", ["/dashboard/billing/subscription", "/v1/dashboard/billing/subscription",
                                  "/v1/v1/dashboard/billing/subscription", "/dashboard/billing/subscription/"])
def test_every_spelling_of_the_path(path):
    (response,) = run(make_app(), [("GET", path, bearer("sk-ax-paid-1"))])
    assert response.status_code == 200, response.text
    assert response.json()["hard_limit_usd"] == 5.0
    assert response.headers["cache-control"] == "no-store"


def test_what_the_store_says_once_spent():
    app = make_app()
    store = app.runtime.fleet.store
    day = utc_today().isoformat()
    for request_id, name, opening in (("r1", "paid", 5.0), ("r2", "free", None)):  # as the proxy admits
        assert store.admit_now(Ask(request_id, name, usd=1.0, opening_usd=opening)).ok
    store.settle_now([Settlement("r1", "paid", day, 0.75, 10), Settlement("r2", "free", day, 0.25, 10)])
    sub, use, free_sub, free_use = run(app, [
        ("GET", "/v1/dashboard/billing/subscription", bearer("sk-ax-paid-1")),
        ("GET", "/v1/dashboard/billing/usage", bearer("sk-ax-paid-1")),
        ("GET", "/dashboard/billing/subscription", bearer("sk-ax-free-2")),
        ("GET", "/dashboard/billing/usage", bearer("sk-ax-free-2")),
    ])
    # 4.25 left, 0.75 spent
    assert sub.json()["hard_limit_usd"] == 5.0
    assert use.json()["total_usage"] == pytest.approx(75.0)
    assert free_sub.json()["hard_limit_usd"] == UNLIMITED_USD
    assert free_use.json()["total_usage"] == pytest.approx(25.0)


def test_a_signed_tokens_claims():
    token = mint(SECRET, name="signed", group="default", exp=1893456000, balance_usd=12.5)
    (response,) = run(make_app(), [("GET", "/dashboard/billing/subscription", bearer(token))])
    assert response.json()["hard_limit_usd"] == 12.5 and response.json()["access_until"] == 1893456000


@pytest.mark.parametrize("headers, code", [
    ({}, "missing_api_key"),
    (bearer("sk-ax-nobody"), "invalid_api_key"),
    (bearer("sk-provider-key-123"), "invalid_api_key"),  # passthrough keys have no balance here
    ({"authorization": "Basic abc"}, "invalid_authorization_header"),
])
def test_only_a_proxy_token_may_ask(headers, code):
    for path in ("/dashboard/billing/subscription", "/dashboard/billing/usage?start_date=bad"):
        (response,) = run(make_app(), [("GET", path, headers)])
        assert response.status_code == 401
        assert response.json()["error"]["code"] == code  # OpenAI's shape


def test_a_revoked_token_is_401():
    app = make_app()
    asyncio.run(app.runtime.fleet.revoke("paid"))
    (response,) = run(app, [("GET", "/dashboard/billing/subscription", bearer("sk-ax-paid-1"))])
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_revoked"


def test_bad_dates_are_400_in_openais_shape():
    (response,) = run(make_app(), [("GET", "/dashboard/billing/usage?start_date=2025-01-01&end_date=2025-06-01",
                                    bearer("sk-ax-paid-1"))])
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "end_date" and "100" in response.json()["error"]["message"]


def test_a_browser_preflight_with_authorization_succeeds():
    app = make_app()
    preflight = {"origin": "https://chat.example.com", "access-control-request-method": "GET",
                 "access-control-request-headers": "authorization, content-type"}
    for path in ("/dashboard/billing/usage", "/v1/dashboard/billing/subscription"):
        options, get = run(app, [("OPTIONS", path, preflight),
                                 ("GET", path, {"origin": "https://chat.example.com", **bearer("sk-ax-paid-1")})])
        assert options.status_code == 200
        assert options.headers["access-control-allow-origin"] == "*"
        assert "authorization" in options.headers["access-control-allow-headers"]
        assert "GET" in options.headers["access-control-allow-methods"]
        assert get.status_code == 200 and get.headers["access-control-allow-origin"] == "*"


def test_post_is_405():
    (response,) = run(make_app(), [("POST", "/dashboard/billing/usage", bearer("sk-ax-paid-1"))])
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"
