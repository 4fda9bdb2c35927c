"""Hostile input end to end (issue #16 item 7): Hypothesis-spoiled requests of every translated
client route through a real uvicorn proxy to the fake upstream, which checks each dialect's wire
format as the providers do. The proxy's stderr never shows a traceback, and no usage record says
0 (an exception escaped) or 500.

The in-process fuzz (test_fuzz_app.py) sends many more; this one proves the same of the real
server: its logging, its event loop, its HTTP parser.
"""

from __future__ import annotations

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import servers
from fuzz_cases import paths, spoiled
from fuzz_proxy import ROUTES, error_shape

CONFIG = """
[groups.default]
multiplier = 1
[[tokens]]
name = "fuzz"
key = "sk-ax-fuzz"
group = "default"
[[channels]]
name = "gpt"
type = "openai"
base_url = "{up}/v1"
keys = ["oa-key"]
models = ["deepseek-*"]
[[channels]]
name = "claude"
type = "anthropic"
base_url = "{up}"
keys = ["ant-key"]
models = ["claude-*"]
[[channels]]
name = "gemini"
type = "gemini"
base_url = "{up}"
keys = ["gem-key"]
models = ["gemini-*"]
"""
MODELS = {"openai": "deepseek-chat", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}
TRANSLATED = [(route, channel) for route, r in ROUTES.items() for channel in MODELS if r.dialect != channel]


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    server = servers.proxy(CONFIG.format(up=upstream.url), tmp_path_factory.mktemp("fuzz"))
    yield server
    server.stop()
    assert "Traceback" not in server.stderr(), server.stderr()[-3000:]


@st.composite
def cases(draw):
    route, channel = draw(st.sampled_from(TRANSLATED))
    body = ROUTES[route].request(MODELS[channel])
    changed, _ = draw(spoiled(body, list(paths(body))))
    return route, channel, changed


def test_the_valid_requests_are_served(proxy) -> None:
    with httpx.Client(base_url=proxy.url, headers={"authorization": "Bearer sk-ax-fuzz"}, timeout=20) as client:
        for route, channel in TRANSLATED:
            r = ROUTES[route]
            response = client.post(r.url(MODELS[channel]), content=orjson.dumps(r.request(MODELS[channel])))
            assert response.status_code == 200, (route, channel, response.text[:500])


def test_spoiled_requests_never_crash_the_real_server(proxy) -> None:
    sent = 0
    with httpx.Client(base_url=proxy.url, headers={"authorization": "Bearer sk-ax-fuzz"}, timeout=20) as client:

        @settings(max_examples=max(settings.default.max_examples, 10) * 2)
        @given(cases())
        def send(case) -> None:
            nonlocal sent
            route, channel, body = case
            r = ROUTES[route]
            response = client.post(r.url(MODELS[channel]), content=orjson.dumps(body))
            sent += 1
            assert response.status_code < 500, (route, channel, response.status_code, response.text[:500])
            if response.status_code >= 400:
                assert error_shape(r.dialect, response.json()), response.text[:500]

        send()
    print(f"\nfuzz, end to end: {sent} requests")
    records = servers.wait_records(proxy, lambda record: True, sent)
    assert not [r for r in records if r["status"] in (0, 500)]
    assert "Traceback" not in proxy.stderr(), proxy.stderr()[-3000:]
