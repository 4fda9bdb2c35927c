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
