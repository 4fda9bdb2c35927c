"""Bad input of every kind gets a clear error in the client's own dialect: never a 500, never a
traceback, never forwarded."""

from __future__ import annotations

import json
import socket
from urllib.parse import unquote

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types

import servers

CONFIG = """
[proxy]
max_body_mb = 0.01
[passthrough]
openai = "{up}/v1"
[groups.default]
multiplier = 1
[groups.az]
multiplier = 1.5
[[tokens]]
name = "alice"
key = "sk-ax-alice"
group = "default"
models = ["gpt-4o*", "claude-*", "gemini-*"]
[[tokens]]
name = "old"
key = "sk-ax-old"
group = "default"
expires = 2021-01-01T00:00:00Z
[[tokens]]
name = "azure-user"
key = "sk-ax-az"
group = "az"
[[channels]]
name = "openai"
type = "openai"
base_url = "{up}/v1"
keys = ["oa-key"]
models = ["gpt-4o", "gpt-4o-mini"]
[[channels]]
name = "bad-key"
type = "openai"
base_url = "{up}/v1"
keys = ["fail-401"]
models = ["gpt-4o-badkey"]
[[channels]]
name = "client-error"
type = "openai"
base_url = "{up}/v1"
keys = ["fail-400"]
models = ["gpt-4o-invalid"]
[[channels]]
name = "anthropic"
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

OPENAI_SHAPE = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    server = servers.proxy(CONFIG.format(up=upstream.url), tmp_path_factory.mktemp("errors"))
    yield server
    assert "Traceback" not in server.stderr()
    server.stop()


def post(proxy, path: str, body, headers: dict | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(proxy.url + path, content=content, timeout=20,
                      headers={"content-type": "application/json", **(headers or {})})


OPENAI = ("/v1/chat/completions", {"authorization": "Bearer sk-ax-alice"})
ANTHROPIC = ("/v1/messages", {"x-api-key": "sk-ax-alice", "anthropic-version": "2023-06-01"})
GEMINI = ("/v1beta/models/gemini-2.5-pro:generateContent", {"x-goog-api-key": "sk-ax-alice"})


def check(response: httpx.Response, dialect: str, status: int, text: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-request-id"]
    body = response.json()
    if dialect == "openai":
        assert set(body["error"]) == OPENAI_SHAPE
        message = body["error"]["message"]
    elif dialect == "anthropic":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
        message = body["error"]["message"]
    else:
        assert set(body["error"]) == {"code", "message", "status"} and body["error"]["code"] == status
        message = body["error"]["message"]
    assert text in message, message


@pytest.mark.parametrize("dialect, route", [("openai", OPENAI), ("anthropic", ANTHROPIC), ("gemini", GEMINI)])
@pytest.mark.parametrize(
    "body, status, text",
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2, 3]", 400, "must be a JSON object"),
        (b"", 400, "empty"),
    ],
)
def test_bad_bodies(proxy, received, dialect, route, body, status, text):
    path, headers = route
    check(post(proxy, path, body, headers), dialect, status, text)
    assert received.all() == []


@pytest.mark.parametrize("dialect, route", [("openai", OPENAI), ("anthropic", ANTHROPIC)])
@pytest.mark.parametrize("body, text", [({"messages": []}, "'model' is missing"),
                                        ({"model": 42}, "'model' must be a non-empty string")])
def test_missing_model(proxy, received, dialect, route, body, text):
    path, headers = route
    check(post(proxy, path, body, headers), dialect, 400, text)


@pytest.mark.parametrize("dialect, route", [("openai", OPENAI), ("anthropic", ANTHROPIC), ("gemini", GEMINI)])
def test_body_over_limit_is_413_and_not_forwarded(proxy, received, dialect, route):
    path, headers = route
    big = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 20_000}]}
    check(post(proxy, path, big, headers), dialect, 413, "larger than")
    # without a Content-Length too (chunked upload)
    chunked = httpx.post(proxy.url + path, content=iter([json.dumps(big).encode()]), timeout=20,
                         headers={"content-type": "application/json", **headers})
    check(chunked, dialect, 413, "larger than")
    assert received.all() == []


@pytest.mark.parametrize(
    "path, headers, dialect",
    [
        ("/v1/nothing-here", {"authorization": "Bearer sk-ax-alice"}, "openai"),
        ("/v1/messages/nothing", {"x-api-key": "sk-ax-alice", "anthropic-version": "2023-06-01"}, "anthropic"),
        ("/v1beta/models/gemini-2.5-pro:noSuchMethod", {"x-goog-api-key": "sk-ax-alice"}, "gemini"),
    ],
)
def test_unknown_path_is_404(proxy, path, headers, dialect):
    check(post(proxy, path, {}, headers), dialect, 404, "Unknown path")


def test_wrong_method_is_405(proxy):
    check(httpx.get(f"{proxy.url}/v1/chat/completions", timeout=10), "openai", 405, "Method GET is not allowed")
    check(httpx.put(f"{proxy.url}/v1/messages", headers={"anthropic-version": "2023-06-01"}, timeout=10),
          "anthropic", 405, "not allowed")


def test_no_channel_names_model_and_group(proxy, received):
    response = post(proxy, "/v1/chat/completions", {"model": "gpt-4o", "messages": []},
                    {"authorization": "Bearer sk-ax-az"})
    check(response, "openai", 404, "The model 'gpt-4o' is not available in group 'az'")
    assert response.json()["error"]["code"] == "model_not_found"


def test_auth_errors_through_the_openai_sdk(proxy):
    def client(key):
        return openai.OpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)

    messages = [{"role": "user", "content": "hi"}]
    cases = [("sk-ax-unknown", openai.AuthenticationError, "unknown key"),
             ("sk-ax-old", openai.AuthenticationError, "has expired"),
             ("sk-ax-alice", openai.PermissionDeniedError, "'o3-mini' is not allowed for token 'alice'")]
    for key, error, text in cases:
        with pytest.raises(error) as info:
            client(key).chat.completions.create(model="o3-mini" if "alice" in key else "gpt-4o", messages=messages)
        assert text in info.value.message
    response = httpx.post(f"{proxy.url}/v1/chat/completions", json={"model": "gpt-4o"}, timeout=10)
    check(response, "openai", 401, "Missing API key")


@pytest.mark.parametrize("value", ["sk-ax-alice", "Bearer  sk-ax-alice", "Basic sk-ax-alice", "Bearer"])
def test_invalid_authorization_header_message(proxy, value):
    response = post(proxy, "/v1/chat/completions", {"model": "gpt-4o"}, {"authorization": value})
    check(response, "openai", 401, "Invalid authorization header")
    assert response.json()["error"]["message"] == "Invalid authorization header"


def test_auth_errors_through_the_anthropic_and_gemini_sdks(proxy):
    with pytest.raises(anthropic.AuthenticationError) as info:
        anthropic.Anthropic(base_url=proxy.url, api_key="sk-ax-old", max_retries=0).messages.create(
            model="claude-3-7-sonnet-20250219", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert "expired" in str(info.value)
    # no-login passthrough is configured for OpenAI only
    with pytest.raises(anthropic.AuthenticationError) as info:
        anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-real", max_retries=0).messages.create(
            model="claude-3-7-sonnet-20250219", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert "passthrough is off for anthropic" in str(info.value)
    client = genai.Client(api_key="sk-ax-alice", http_options=types.HttpOptions(base_url=proxy.url))
    with pytest.raises(genai.errors.ClientError) as info:
        client.models.generate_content(model="gpt-4o-secret", contents="x")
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"


def test_upstream_client_error_passed_back_in_dialect(proxy, received):
    with pytest.raises(openai.BadRequestError) as info:
        openai.OpenAI(base_url=proxy.url + "/v1", api_key="sk-ax-alice", max_retries=0).chat.completions.create(
            model="gpt-4o-invalid", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 400
    assert len(received.all()) == 1  # a client error is not retried


def test_upstream_401_message_is_redacted(proxy, received):
    response = post(proxy, "/v1/chat/completions", {"model": "gpt-4o-badkey", "messages": []},
                    {"authorization": "Bearer sk-ax-alice"})
    assert response.status_code == 401
    assert "fail-401" not in response.text and "[redacted]" in response.text


def raw_request(proxy, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def test_conflicting_content_length_and_transfer_encoding_refused(proxy, received):
    body = b'{"model":"gpt-4o","messages":[]}'
    answer = raw_request(proxy, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                                b"Authorization: Bearer sk-ax-alice\r\nContent-Type: application/json\r\n"
                                b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body)
                         + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 4"), answer[:100]
    assert received.all() == []


def test_oversized_headers_refused(proxy, received):
    answer = raw_request(proxy, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                                b"Authorization: Bearer sk-ax-alice\r\nContent-Length: 2\r\n"
                                + b"X-Big: " + b"a" * 200_000 + b"\r\n\r\n{}")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert received.all() == []


def test_model_name_cannot_inject_a_path(proxy, received):
    statuses = []
    for model in ("..%2F..%2Fadmin", "gemini-x%3FsetKey%3D1%26alt%3Dsse", "gemini-x%2F..%2F..%2Fv1%2Fsecrets",
                  "gemini-x%23frag"):
        response = httpx.post(f"{proxy.url}/v1beta/models/{model}:generateContent",
                              headers={"x-goog-api-key": "sk-ax-alice"}, timeout=10,
                              json={"contents": [{"role": "user", "parts": [{"text": "x"}]}]})
        statuses.append(response.status_code)
    assert statuses == [404, 200, 404, 200]  # a "/" never reaches a route; "?" and "#" stay in the name
    records = received.all()
    assert [unquote(r["path"]) for r in records] == ["/v1beta/models/gemini-x?setKey=1&alt=sse:generateContent",
                                            "/v1beta/models/gemini-x#frag:generateContent"]
    assert [r["query"] for r in records] == ["", ""]


def test_host_headers_do_not_choose_the_upstream(proxy, received):
    response = post(proxy, "/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
                    {"authorization": "Bearer sk-ax-alice", "host": "evil.example",
                     "x-forwarded-host": "evil.example"})
    assert response.status_code == 200
    assert received.last()["headers"]["host"].startswith("127.0.0.1")
