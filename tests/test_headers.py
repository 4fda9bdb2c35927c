"""Header rewriting per channel type: credentials swapped, hop-by-hop and identity dropped."""

from __future__ import annotations

import httpx
import pytest

from relay import headers
from relay.config import parse

CLIENT = [
    (b"authorization", b"Bearer sk-ax-client"),
    (b"x-api-key", b"sk-ax-client"),
    (b"x-goog-api-key", b"sk-ax-client"),
    (b"host", b"proxy.example"),
    (b"content-type", b"application/json"),
    (b"content-length", b"12"),
    (b"connection", b"keep-alive"),
    (b"transfer-encoding", b"chunked"),
    (b"cookie", b"session=abc"),
    (b"cf-connecting-ip", b"1.2.3.4"),
    (b"cf-ray", b"abc"),
    (b"x-forwarded-for", b"1.2.3.4"),
    (b"x-forwarded-host", b"evil.example"),
    (b"origin", b"https://app.example"),
    (b"openai-organization", b"org-client"),
    (b"anthropic-beta", b"prompt-caching-2024-07-31"),
    (b"user-agent", b"OpenAI/Python 3"),
    (b"accept-encoding", b"gzip, br"),
    (b"x-stainless-lang", b"python"),
]


def channel(kind: str, extra: str = ""):
    base = {"azure": 'base_url = "https://r.openai.azure.com"\napi_version = "2024-10-21"\n'}.get(kind, "")
    config = parse(f"""
[groups.default]
multiplier = 1
[[channels]]
name = "c"
type = "{kind}"
keys = ["upstream-key"]
models = ["*"]
{base}{extra}
""")
    return config.channels[0]


@pytest.mark.parametrize(
    "kind, credential",
    [
        ("openai", (b"authorization", b"Bearer upstream-key")),
        ("azure", (b"api-key", b"upstream-key")),
        ("anthropic", (b"x-api-key", b"upstream-key")),
        ("gemini", (b"x-goog-api-key", b"upstream-key")),
    ],
)
def test_relay_headers_per_channel_type(kind, credential):
    out = headers.upstream(CLIENT, channel(kind), "upstream-key")
    names = [n for n, _ in out]
    assert credential in out
    assert [n for n in names if n in headers.CREDENTIALS] == [credential[0]]  # only the channel's
    for gone in (b"host", b"content-length", b"connection", b"transfer-encoding", b"cookie", b"cf-ray",
                 b"cf-connecting-ip", b"x-forwarded-for", b"x-forwarded-host", b"origin",
                 b"openai-organization"):
        assert gone not in names
    for kept in (b"content-type", b"anthropic-beta", b"user-agent", b"x-stainless-lang"):
        assert kept in names
    assert (b"accept-encoding", b"identity") in out
    assert ((b"anthropic-version", b"2023-06-01") in out) == (kind == "anthropic")


def test_client_anthropic_version_wins():
    out = headers.upstream(CLIENT + [(b"anthropic-version", b"2024-01-01")], channel("anthropic"), "k")
    assert [v for n, v in out if n == b"anthropic-version"] == [b"2024-01-01"]


def test_channel_headers_added():
    out = headers.upstream(CLIENT, channel("openai", 'headers = { "OpenAI-Organization" = "org-x" }'), "k")
    assert (b"openai-organization", b"org-x") in out


def test_passthrough_keeps_client_credentials():
    out = headers.upstream(CLIENT, channel("openai"), None)
    assert (b"authorization", b"Bearer sk-ax-client") in out
    assert (b"openai-organization", b"org-client") in out
    assert b"cookie" not in [n for n, _ in out]


def test_downstream_drops_cookies_and_hop_by_hop():
    answer = [
        (b"Content-Type", b"application/json"),
        (b"Set-Cookie", b"__cf_bm=abc; path=/"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Connection", b"keep-alive"),
        (b"Content-Length", b"10"),
        (b"x-request-id", b"req_upstream"),
        (b"openai-organization", b"org-channel"),
        (b"x-ratelimit-remaining-requests", b"99"),
        (b"CF-RAY", b"1"),
        (b"Alt-Svc", b'h3=":443"'),
        (b"retry-after", b"3"),
    ]
    out = headers.downstream(answer)
    assert out == [(b"content-type", b"application/json"), (b"x-ratelimit-remaining-requests", b"99"),
                   (b"retry-after", b"3")]


def test_fast_httpx_headers_equal_httpx_own():
    from relay.transport import headers_from

    pairs = [(b"Content-Type", b"application/json"), (b"x-ratelimit-remaining", b"9"), (b"Set-Cookie", b"a=1"),
             (b"set-cookie", b"b=2")]
    fast, slow = headers_from(pairs), __import__("httpx").Headers(pairs)
    assert fast == slow and fast.raw == slow.raw
    assert fast.get_list("set-cookie") == ["a=1", "b=2"] and fast["content-type"] == "application/json"


@pytest.mark.parametrize("pairs", [
    [(b"Content-Type", b"application/json"), (b"X-Title", b"plain"), (b"x-title", b"again")],
    [(b"x-user", "Zoë 日本".encode())],  # UTF-8
    [(b"x-user", b"caf\xe9"), (b"x-other", b"ascii")],  # not UTF-8: httpx falls back to latin-1
])
def test_fast_lookups_answer_as_httpx_does(pairs):
    from relay.transport import header, headers_from, str_pairs

    fast, slow = headers_from(pairs), httpx.Headers(pairs)
    assert str_pairs(fast) == slow.multi_items()
    assert header(fast, b"absent") is None
    if all(value.isascii() for _, value in pairs):  # (the headers the proxy reads are ASCII)
        assert header(fast, b"content-type") == slow.get("content-type")
        assert header(fast, b"x-title") == "plain"  # the first (httpx joins them: "plain, again")


def test_channel_headers_replace_the_clients_and_expect_is_dropped():
    client = CLIENT + [(b"http-referer", b"https://client.example"), (b"expect", b"100-continue")]
    out = headers.upstream(client, channel("openai", 'headers = { "HTTP-Referer" = "https://aurax.example" }'), "k")
    assert [v for n, v in out if n == b"http-referer"] == [b"https://aurax.example"]
    assert b"expect" not in [n for n, _ in out]


def test_keyless_channel_sends_no_credential_and_never_the_clients():
    out = headers.upstream(CLIENT, channel("openai"), "")
    assert not [n for n, _ in out if n in headers.CREDENTIALS]
