"""A hostile upstream (tests/hostile_upstream.py) through the proxy: no key it quotes reaches a
client or a record, and answers without usage that can be trusted are estimated, never billed
from the upstream's word."""

from __future__ import annotations

import httpx
import orjson
import pytest

import servers

DIALECT_TYPES = {"oa": "openai", "an": "anthropic", "ge": "gemini"}
MODES = ["leak-stream", "leak-200", "leak-header", "no-usage", "negative-usage", "empty-200", "not-json", "deltas"]
SECRET = "CHANNELSECRET-7f3a9c"


def channel_key(mode: str) -> str:
    return f"{mode}:{SECRET}-{mode}"


def config(up: str) -> str:
    lines = ['[passthrough]', f'openai = "{up}/v1"', f'anthropic = "{up}"', f'gemini = "{up}"',
             '[groups.default]', 'multiplier = 2',
             '[[tokens]]', 'name = "mallory"', 'key = "sk-ax-mallory-token"', 'group = "default"',
             '[prices]', '"*" = { input = 1, output = 2 }']
    for short, kind in DIALECT_TYPES.items():
        for mode in MODES:
            base = f"{up}/v1" if kind == "openai" else up
            lines += ["[[channels]]", f'name = "{short}-{mode}"', f'type = "{kind}"', f'base_url = "{base}"',
                      f'keys = ["{channel_key(mode)}"]', f'models = ["{short}-{mode}"]']
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    server = servers.Server([*servers.UVICORN, "--app-dir", "tests", "hostile_upstream:app", "--no-access-log",
                             "--log-level", "warning"], log_dir=tmp_path_factory.mktemp("hostile"), name="hostile")
    server.wait_ready("/_health")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(hostile, tmp_path_factory):
    server = servers.proxy(config(hostile.url), tmp_path_factory.mktemp("hostile-proxy"))
    yield server
    server.stop()
    assert "Traceback" not in server.stderr()
    assert SECRET not in server.stderr() and SECRET not in server.stdout()


TOKEN = {"authorization": "Bearer sk-ax-mallory-token"}


def ask(proxy, client: str, model: str, stream: bool, sse: bool = True) -> httpx.Request:
    """A request in the `client` dialect for `model`."""
    if client == "openai":
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        return httpx.Request("POST", f"{proxy.url}/v1/chat/completions", json=body, headers=TOKEN)
    if client == "anthropic":
        body = {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        return httpx.Request("POST", f"{proxy.url}/v1/messages", json=body,
                             headers={"x-api-key": "sk-ax-mallory-token", "anthropic-version": "2023-06-01"})
    method = "streamGenerateContent" if stream else "generateContent"
    query = "?alt=sse" if stream and sse else ""
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    return httpx.Request("POST", f"{proxy.url}/v1beta/models/{model}:{method}{query}", json=body,
                         headers={"x-goog-api-key": "sk-ax-mallory-token"})


def send(request: httpx.Request) -> httpx.Response:
    with httpx.Client(timeout=20) as client:
        return client.send(request)


PAIRS = [("openai", "oa"), ("anthropic", "an"), ("gemini", "ge"), ("openai", "an"), ("openai", "ge"),
         ("anthropic", "oa")]


@pytest.mark.parametrize("client, channel", PAIRS)
def test_a_key_inside_a_stream_error_event_never_reaches_the_client(proxy, client, channel):
    response = send(ask(proxy, client, f"{channel}-leak-stream", stream=True))
    assert response.status_code == 200
    assert SECRET not in response.text
    assert "w0" in response.text and "error" in response.text  # the stream went on, then ended with an error
    record = servers.usage_record(proxy, response.headers["x-request-id"])
    assert record["error"] and SECRET not in record["error"]


def test_a_key_inside_a_gemini_json_array_stream_never_reaches_the_client(proxy):
    response = send(ask(proxy, "gemini", "ge-leak-stream", stream=True, sse=False))
    assert response.status_code == 200 and SECRET not in response.text
    assert orjson.loads(response.content)[-1]["error"]["code"] == 500  # a whole, valid JSON array


@pytest.mark.parametrize("client, channel", PAIRS)
def test_a_key_inside_a_200_error_body_never_reaches_the_client(proxy, client, channel):
    response = send(ask(proxy, client, f"{channel}-leak-200", stream=False))
    assert SECRET not in response.text
    assert response.status_code == (200 if client == {"oa": "openai", "an": "anthropic", "ge": "gemini"}[channel]
                                    else 502)
    record = servers.usage_record(proxy, response.headers["x-request-id"])
    assert SECRET not in orjson.dumps(record).decode()


@pytest.mark.parametrize("client, channel", [("openai", "oa"), ("anthropic", "an"), ("gemini", "ge")])
def test_an_upstream_header_that_echoes_the_key_is_dropped(proxy, client, channel):
    response = send(ask(proxy, client, f"{channel}-leak-header", stream=False))
    assert response.status_code == 200
    assert "x-debug-key" not in response.headers
    assert all(SECRET not in value for value in response.headers.values())


@pytest.mark.parametrize("client, channel", [("openai", "oa"), ("anthropic", "an"), ("gemini", "ge"),
                                             ("openai", "an"), ("anthropic", "oa")])
def test_an_aborted_stream_is_billed_for_what_the_client_received(proxy, client, channel):
    """300 one-word deltas; the client leaves after ~100. The record must not say 1 token (what
    Anthropic's message_start claims) but about what was sent, and say it is an estimate."""
    request = ask(proxy, client, f"{channel}-deltas", stream=True)
    words = 0
    with httpx.Client(timeout=20) as http, http.stream(request.method, request.url, headers=request.headers,
                                                       content=request.content) as response:
        request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            words += line.count(" w")
            if words >= 100:
                break
    record = servers.usage_record(proxy, request_id)
    assert record["estimated"] is True and record["status"] == 499
    assert 100 <= record["usage"]["output_tokens"] <= 200, record["usage"]
    assert record["billed_usd"] > 0


@pytest.mark.parametrize("mode", ["no-usage", "negative-usage", "empty-200", "not-json"])
@pytest.mark.parametrize("client, channel", [("openai", "oa"), ("anthropic", "an"), ("gemini", "ge")])
def test_an_answer_without_trustworthy_usage_is_estimated(proxy, client, channel, mode):
    response = send(ask(proxy, client, f"{channel}-{mode}", stream=False))
    assert response.status_code == 200  # the same dialect: the client gets what the upstream said
    record = servers.usage_record(proxy, response.headers["x-request-id"])
    assert record["estimated"] is True
    usage = record["usage"]
    assert usage["input_tokens"] >= 1 and usage["output_tokens"] >= 0
    assert all(value >= 0 for value in usage.values())
    assert record["billed_usd"] is not None and record["billed_usd"] >= 0


@pytest.mark.parametrize("mode", ["no-usage", "negative-usage"])
def test_a_translated_answer_without_trustworthy_usage_is_estimated(proxy, mode):
    response = send(ask(proxy, "anthropic", f"oa-{mode}", stream=False))
    assert response.status_code == 200
    assert response.json()["usage"]["output_tokens"] >= 0
    record = servers.usage_record(proxy, response.headers["x-request-id"])
    assert record["estimated"] is True and record["usage"]["output_tokens"] > 0


@pytest.mark.parametrize("client", ["openai", "anthropic", "gemini"])
def test_a_passthrough_key_of_any_shape_and_its_masked_echo_are_redacted(proxy, client):
    """The client's own key, in no known provider's shape, quoted back masked by the upstream."""
    key = "masked:zq7-Weird_Key.Shape-91xa4kq2"
    request = ask(proxy, client, "any-model", stream=False)
    for name in ("authorization", "x-api-key", "x-goog-api-key"):
        if name in request.headers:
            request.headers[name] = f"Bearer {key}" if name == "authorization" else key
    response = send(request)
    assert response.status_code == 401
    assert "zq7-" not in response.text and "4kq2" not in response.text and "redacted" in response.text
    record = servers.usage_record(proxy, response.headers["x-request-id"])
    assert "4kq2" not in orjson.dumps(record).decode()
