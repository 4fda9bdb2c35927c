"""Who is asking, behind Cloudflare or other proxies; oversized headers; request ids."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app import build_app
from relay.config import parse
from relay.edge import client_ip

BASE = "[groups.default]\nmultiplier = 1\n"


def proxy_settings(extra: str = ""):
    return parse(f"[proxy]\n{extra}\n" + BASE).proxy


SCOPE = {"client": ("198.51.100.7", 5555)}


@pytest.mark.parametrize(
    "settings, headers, expected",
    [
        ("", {}, "198.51.100.7"),
        ("", {"cf-connecting-ip": "203.0.113.1"}, "198.51.100.7"),  # not trusted: a client could forge it
        ("trust_cloudflare = true", {"cf-connecting-ip": "203.0.113.1"}, "203.0.113.1"),
        ("trust_cloudflare = true", {}, "198.51.100.7"),
        ("", {"x-forwarded-for": "203.0.113.9"}, "198.51.100.7"),  # from an untrusted peer: ignored
        ('trusted_proxies = ["198.51.100.0/24"]', {"x-forwarded-for": "203.0.113.9, 10.0.0.2, 198.51.100.3"},
         "10.0.0.2"),
        ('trusted_proxies = ["198.51.100.0/24", "10.0.0.0/8"]', {"x-forwarded-for": "203.0.113.9, 10.0.0.2"},
         "203.0.113.9"),
        ('trusted_proxies = ["10.0.0.0/8"]', {"x-forwarded-for": "203.0.113.9"}, "198.51.100.7"),
    ],
)
def test_client_ip(settings, headers, expected):
    assert client_ip(SCOPE, headers, proxy_settings(settings)) == expected


def test_oversized_headers_get_431_in_dialect():
    app = build_app(parse(BASE))

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://p") as client:
            return await client.post("/v1/messages", headers={"x-big": "a" * 40_000, "anthropic-version": "x"})

    response = asyncio.run(go())
    assert response.status_code == 431 and response.json()["type"] == "error"
    assert response.headers["x-request-id"]


def _call(app, method, path, headers):
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://p") as client:
            return await client.request(method, path, headers=headers)

    return asyncio.run(go())


def test_cors_with_a_list_of_origins():
    app = build_app(parse('[proxy]\ncors_origins = ["https://chat.example"]\n' + BASE))
    preflight = _call(app, "OPTIONS", "/v1/chat/completions", {
        "origin": "https://chat.example", "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://chat.example"
    assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
    assert preflight.headers["vary"] == "Origin"
    other = _call(app, "OPTIONS", "/v1/chat/completions", {
        "origin": "https://evil.example", "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in other.headers and other.status_code == 405
    answer = _call(app, "GET", "/v1/models", {"origin": "https://chat.example"})
    assert answer.status_code == 401 and answer.headers["access-control-expose-headers"] == "x-request-id"


def test_a_bug_becomes_a_500_in_the_clients_dialect(caplog):
    from relay.edge import RequestEdge

    async def broken(scope, receive, send):
        raise RuntimeError("boom")

    app = RequestEdge(broken, lambda path: path)
    response = _call(app, "POST", "/v1/messages", {"x-api-key": "k"})
    assert response.status_code == 500 and response.json()["type"] == "error"
    assert response.headers["x-request-id"] in response.json()["error"]["message"]
    assert "boom" not in response.text and "boom" in caplog.text
