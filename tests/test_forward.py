"""The forwarder against respx: what goes upstream for each channel type, and what comes back."""

from __future__ import annotations

import asyncio
import socket
import zlib
import io
import json

import httpx
import orjson
import pytest
import respx

from app import build_app
from relay.config import parse

CONFIG = """
[passthrough]
openai = "https://api.openai.test/v1"
gemini = "https://gemini.test"
[groups.default]
multiplier = 1
[[tokens]]
name = "alice"
key = "sk-ax-alice"
group = "default"
[[channels]]
name = "oa"
type = "openai"
base_url = "https://oa.test/v1"
keys = ["oa-1"]
models = ["gpt-4o"]
model_map = { "gpt-4o" = "gpt-4o-2024-11-20" }
[[channels]]
name = "az"
type = "azure"
base_url = "https://res.openai.azure.com"
api_version = "2024-10-21"
keys = ["az-1"]
models = ["gpt-az"]
model_map = { "gpt-az" = "my deployment" }
[[channels]]
name = "ant"
type = "anthropic"
base_url = "https://ant.test"
keys = ["ant-1"]
models = ["claude-x"]
[[channels]]
name = "gem"
type = "gemini"
base_url = "https://gem.test"
keys = ["gem-1"]
models = ["gemini-x"]
[[channels]]
name = "local"
type = "openai"
base_url = "https://local.test/v1"
keys = [""]
models = ["local-llm"]
[[channels]]
name = "dead"
type = "openai"
base_url = "https://dead.test/v1"
keys = ["d1", "d2", "d3"]
models = ["gpt-failover"]
priority = 10
[[channels]]
name = "alive"
type = "openai"
base_url = "https://alive.test/v1"
keys = ["a1"]
models = ["gpt-failover"]
[[channels]]
name = "nousage"
type = "openai"
base_url = "https://vllm.test/v1"
keys = ["v-1"]
models = ["llama"]
stream_usage = false
"""

SSE_USAGE = (
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}\n\n'
    b"data: [DONE]\n\n"
)


class Harness:
    def __init__(self) -> None:
        self.router = respx.MockRouter(assert_all_called=False)
        self.usage = io.BytesIO()
        self.app = build_app(parse(CONFIG), transport=httpx.MockTransport(self.router.async_handler),
                             usage_out=self.usage)

    async def post(self, path: str, body, key: str = "sk-ax-alice", **headers) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(self.app), base_url="http://proxy") as client:
            return await client.post(path, json=body, headers={"authorization": f"Bearer {key}", **headers})

    def records(self) -> list[dict]:
        self.app.runtime.usage_log.flush()
        return [json.loads(line) for line in self.usage.getvalue().splitlines()]


@pytest.fixture()
def harness() -> Harness:
    return Harness()


def run(coro):
    return asyncio.run(coro)


def test_openai_url_key_and_model_map(harness):
    route = harness.router.post("https://oa.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, json={"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}))
    response = run(harness.post("/v1/chat/completions", {"model": "gpt-4o", "messages": []}))
    assert response.status_code == 200
    sent = route.calls.last.request
    assert sent.headers["authorization"] == "Bearer oa-1"
    assert orjson.loads(sent.content)["model"] == "gpt-4o-2024-11-20"
    record = harness.records()[0]
    assert record["usage"] == {"input_tokens": 3, "output_tokens": 4, "cached_input_tokens": 0, "reasoning_tokens": 0,
                               "cache_write_tokens": 0}
    assert record["channel"] == "oa" and record["upstream_model"] == "gpt-4o-2024-11-20"
    assert record["request_id"] == response.headers["x-request-id"]


def test_azure_deployment_url_is_quoted(harness):
    route = harness.router.post(url__startswith="https://res.openai.azure.com/openai/deployments/").mock(
        return_value=httpx.Response(200, json={"choices": []}))
    run(harness.post("/v1/chat/completions", {"model": "gpt-az", "messages": []}))
    sent = route.calls.last.request
    assert sent.url.raw_path == b"/openai/deployments/my%20deployment/chat/completions?api-version=2024-10-21"
    assert sent.headers["api-key"] == "az-1" and "authorization" not in sent.headers


def test_anthropic_and_gemini_urls(harness):
    ant = harness.router.post("https://ant.test/v1/messages").mock(return_value=httpx.Response(200, json={}))
    gem = harness.router.post("https://gem.test/v1beta/models/gemini-x:streamGenerateContent").mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"},
                                    content=b'data: {"candidates":[{"finishReason":"STOP"}]}\r\n\r\n'))
    run(harness.post("/v1/messages", {"model": "claude-x", "max_tokens": 5, "messages": []}, key="sk-ax-alice"))
    assert ant.calls.last.request.headers["x-api-key"] == "ant-1"
    run(harness.post("/v1beta/models/gemini-x:streamGenerateContent?key=sk-ax-alice", {"contents": []}))
    sent = gem.calls.last.request
    assert sent.url.query == b"alt=sse"  # the proxy token in ?key= is gone; SSE asked for
    assert sent.headers["x-goog-api-key"] == "gem-1"


def test_stream_usage_asked_for_and_removed_when_the_client_did_not(harness):
    route = harness.router.post("https://oa.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, content=SSE_USAGE))
    response = run(harness.post("/v1/chat/completions", {"model": "gpt-4o", "messages": [], "stream": True}))
    assert orjson.loads(route.calls.last.request.content)["stream_options"] == {"include_usage": True}
    assert b'"choices":[]' not in response.content and response.content.endswith(b"data: [DONE]\n\n")
    assert harness.records()[0]["usage"]["input_tokens"] == 7
    asked = run(harness.post("/v1/chat/completions", {"model": "gpt-4o", "messages": [], "stream": True,
                                                      "stream_options": {"include_usage": True}}))
    assert asked.content == SSE_USAGE


def test_stream_usage_option_off_for_a_channel(harness):
    route = harness.router.post("https://vllm.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, content=SSE_USAGE[:200] + b"\n\ndata: [DONE]\n\n"))
    run(harness.post("/v1/chat/completions", {"model": "llama", "messages": [{"role": "user", "content": "12345678"}],
                                              "stream": True}))
    assert "stream_options" not in orjson.loads(route.calls.last.request.content)
    record = harness.records()[0]
    assert record["estimated"] is True and record["usage"]["output_tokens"] == 1


def test_truncated_stream_ends_with_an_error_event(harness):
    harness.router.post("https://oa.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, content=SSE_USAGE[:150]))
    response = run(harness.post("/v1/chat/completions", {"model": "gpt-4o", "messages": [], "stream": True}))
    last = response.content.strip().split(b"\n\n")[-1]
    assert last.startswith(b"data: ") and orjson.loads(last[6:])["error"]["message"].startswith("The upstream stream ended")
    assert harness.records()[0]["error"] == "upstream stream ended before it was complete"


def test_upstream_error_passed_back_redacted(harness):
    harness.router.post("https://oa.test/v1/chat/completions").mock(return_value=httpx.Response(
        400, json={"error": {"message": "context too long for key oa-1", "type": "invalid_request_error",
                             "param": "messages", "code": "context_length_exceeded"}}))
    response = run(harness.post("/v1/chat/completions", {"model": "gpt-4o", "messages": []}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded" and "oa-1" not in error["message"]


def test_passthrough_goes_to_the_official_api_untouched(harness):
    route = harness.router.post("https://api.openai.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, json={"choices": []}))
    body = {"model": "whatever", "messages": [], "stream_options": None}
    run(harness.post("/v1/chat/completions", body, key="sk-proj-own", **{"openai-organization": "org-own"}))
    sent = route.calls.last.request
    assert sent.headers["authorization"] == "Bearer sk-proj-own" and sent.headers["openai-organization"] == "org-own"
    assert orjson.loads(sent.content) == body
    record = harness.records()[0]
    assert record["passthrough"] is True and record["token"] is None and record["billed_usd"] is None


def test_network_error_is_502_in_dialect(harness):
    harness.router.post("https://ant.test/v1/messages").mock(side_effect=httpx.ConnectError("refused"))
    response = run(harness.post("/v1/messages", {"model": "claude-x", "max_tokens": 5, "messages": []}))
    assert response.status_code == 502
    assert response.json()["type"] == "error"
    assert response.json()["error"]["message"] == "The anthropic upstream could not be reached (connection refused)"


def test_no_cookie_jar_on_the_upstream_client():
    from relay.transport import UpstreamClient

    client = UpstreamClient()
    response = httpx.Response(200, headers={"set-cookie": "a=b; Path=/"}, request=httpx.Request("GET", "https://x.test/"))
    client.cookies.extract_cookies(response)
    assert dict(client.cookies) == {}


def test_keyless_channel_never_gets_the_proxy_token(harness):
    route = harness.router.post("https://local.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, json={"choices": []}))
    run(harness.post("/v1/chat/completions?key=sk-ax-alice", {"model": "local-llm", "messages": []}))
    sent = route.calls.last.request
    assert "authorization" not in sent.headers and b"sk-ax-alice" not in bytes(sent.url.raw_path)


def test_an_unreachable_channel_costs_one_attempt_not_one_per_key(harness):
    dead = harness.router.post(url__startswith="https://dead.test/").mock(side_effect=httpx.ConnectError("refused"))
    harness.router.post("https://alive.test/v1/chat/completions").mock(return_value=httpx.Response(200, json={}))
    response = run(harness.post("/v1/chat/completions", {"model": "gpt-failover", "messages": []}))
    assert response.status_code == 200 and dead.call_count == 1
    assert harness.records()[0]["attempts"] == 2 and harness.records()[0]["channel"] == "alive"


def test_last_event_without_its_blank_line_still_reaches_the_client(harness):
    body = SSE_USAGE.replace(b"data: [DONE]\n\n", b"data: [DONE]\n")
    harness.router.post("https://oa.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body))
    response = run(harness.post("/v1/chat/completions", {"model": "gpt-4o", "messages": [], "stream": True}))
    assert response.content.endswith(b"data: [DONE]\n\n") and b'"choices":[]' not in response.content


def test_upstream_error_bodies_are_passed_on_compact():
    from routes.upstream_answer import _error_body

    assert _error_body(b'{\n  "error": {\n    "message": "x"\n  }\n}') == b'{"error":{"message":"x"}}'
    assert _error_body(b"<html>bad gateway</html>") is None


def test_image_streams_end_with_their_completed_event():
    from relay.streams import Events
    from relay.dialects import OPENAI

    pipe = Events(OPENAI, OPENAI.meter())
    pipe.feed(b'event: image_generation.partial_image\ndata: {"type":"image_generation.partial_image"}\n\n')
    pipe.feed(b'event: image_generation.completed\ndata: {"type":"image_generation.completed",'
              b'"usage":{"input_tokens":5,"output_tokens":9}}\n\n')
    assert pipe.end() == b"" and pipe.complete and pipe.meter.usage.output_tokens == 9


def test_two_model_keys_are_refused_before_anything_goes_upstream(harness):
    route = harness.router.post(url__startswith="https://").mock(return_value=httpx.Response(200, json={}))

    async def post(path: str, body: bytes, **headers) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(harness.app), base_url="http://proxy") as client:
            return await client.post(path, content=body, headers={"authorization": "Bearer sk-ax-alice", **headers})

    openai = run(post("/v1/chat/completions", b'{"model":"gpt-4o","messages":[],"model":"gpt-failover"}'))
    assert openai.status_code == 400 and openai.json()["error"]["param"] == "model"
    anthropic = run(post("/v1/messages", b'{"model":"claude-x","max_tokens":5,"messages":[],"mod\\u0065l":"x"}'))
    assert anthropic.status_code == 400 and anthropic.json()["type"] == "error"
    assert "'model' is given more than once" in anthropic.json()["error"]["message"]
    form = (b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n\r\nxx\r\n'
            b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-2\r\n--b--\r\n')
    audio = run(post("/v1/audio/transcriptions", form, **{"content-type": "multipart/form-data; boundary=b"}))
    assert audio.status_code == 400 and "Form field 'model' is given more than once" in audio.json()["error"]["message"]
    assert route.call_count == 0


def test_no_proxy_token_reaches_a_passthrough_upstream(harness):
    """A provider key brought by the client, and beside it a proxy token anywhere (issue #16, 10)."""
    oai = harness.router.post(url__startswith="https://api.openai.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, json={"choices": []}))
    gem = harness.router.post(url__startswith="https://gemini.test/v1beta/models/g:generateContent").mock(
        return_value=httpx.Response(200, json={"candidates": []}))
    smuggled = {"x-api-key": "sk-ax-alice", "x-goog-api-key": "sk-ax-alice", "api-key": "sk-ax-alice",
                "x-note": "token=sk-ax-alice", "x-other": "Bearer sk-ax-alice, sk-ax-bob"}
    response = run(harness.post("/v1/chat/completions?key=sk-ax-alice&api_key=sk%2Dax%2Dalice&keep=1",
                                {"model": "gpt-4o", "messages": []}, key="sk-proj-own", **smuggled))
    assert response.status_code == 200
    sent = oai.calls.last.request
    assert sent.headers["authorization"] == "Bearer sk-proj-own"
    assert not [v for v in sent.headers.values() if "sk-ax-" in v], sent.headers
    assert sent.url.query == b"keep=1"

    async def gemini() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(harness.app), base_url="http://proxy") as client:
            return await client.post("/v1beta/models/g:generateContent?key=AIza-own&token=sk-ax-alice",
                                     json={"contents": []}, headers={"x-note": "sk-ax-alice"})

    assert run(gemini()).status_code == 200
    sent = gem.calls.last.request
    assert sent.url.query == b"key=AIza-own" and "x-note" not in sent.headers


def test_a_proxy_token_as_a_query_parameters_name_does_not_reach_the_upstream_either(harness):
    route = harness.router.post(url__startswith="https://api.openai.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, json={"choices": []}))
    response = run(harness.post("/v1/chat/completions?sk-ax-alice&sk%2Dax%2Dbob=1&keep=1&my-sk-ax-word=2",
                                {"model": "gpt-4o", "messages": []}, key="sk-proj-own"))
    assert response.status_code == 200
    assert route.calls.last.request.url.query == b"keep=1&my-sk-ax-word=2"


def test_a_proxy_token_in_another_header_does_not_reach_the_channel_either(harness):
    route = harness.router.post("https://oa.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, json={"choices": []}))
    run(harness.post("/v1/chat/completions?x=sk-ax-alice", {"model": "gpt-4o", "messages": []},
                     **{"x-note": "sk-ax-alice", "x-own-sk-ax-thing": "fine-sk-ax-in-a-word"}))
    sent = route.calls.last.request
    assert sent.headers["authorization"] == "Bearer oa-1" and "x-note" not in sent.headers
    assert sent.headers["x-own-sk-ax-thing"] == "fine-sk-ax-in-a-word"  # not a token: it does not start one
    assert b"sk-ax" not in sent.url.query


def test_no_proxy_token_reaches_a_passthrough_model_list(harness):
    route = harness.router.get(url__startswith="https://gemini.test/v1beta/models").mock(
        return_value=httpx.Response(200, json={"models": []}))

    async def models() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(harness.app), base_url="http://proxy") as client:
            return await client.get("/v1beta/models?key=AIza-own&pageSize=5&t=sk-ax-alice",
                                    headers={"x-note": "Bearer sk-ax-alice"})

    assert run(models()).status_code == 200
    sent = route.calls.last.request
    assert sent.url.query == b"key=AIza-own&pageSize=5" and "x-note" not in sent.headers


def test_unreachable_and_silent_upstreams_are_named_by_dialect_only(caplog):
    """Real sockets through the real transport: a closed port and a listener that never answers."""

    usage = io.BytesIO()

    async def scenario():
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
        closed.close()
        held: list[asyncio.StreamWriter] = []

        async def hold(reader, writer) -> None:  # reads the request, never answers
            held.append(writer)

        silent = await asyncio.start_server(hold, "127.0.0.1", 0)
        silent_port = silent.sockets[0].getsockname()[1]
        config = parse(f"""
[proxy]
first_byte_timeout_s = 0.3
[groups.default]
multiplier = 1
[[tokens]]
name = "alice"
key = "sk-ax-alice"
[[channels]]
name = "secret-backend-eu"
type = "anthropic"
base_url = "http://127.0.0.1:{dead_port}"
keys = ["ant-key-123456789"]
models = ["claude-x"]
[[channels]]
name = "quiet-backend-us"
type = "gemini"
base_url = "http://127.0.0.1:{silent_port}"
keys = ["gem-key-123456789"]
models = ["gemini-x"]
""")
        app = build_app(config, usage_out=usage)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://proxy",
                                         headers={"authorization": "Bearer sk-ax-alice"}, timeout=10) as client:
                refused = await client.post("/v1/messages", json={"model": "claude-x", "max_tokens": 5, "messages": []})
                silence = await client.post("/v1beta/models/gemini-x:generateContent", json={"contents": []})
        finally:
            await app.runtime.aclose()
            silent.close()
            for writer in held:
                writer.close()
        app.runtime.usage_log.flush()
        records = [json.loads(line) for line in usage.getvalue().splitlines()]
        return refused, silence, records, dead_port, silent_port

    with caplog.at_level("WARNING", logger="uvicorn.error"):
        refused, silence, records, dead_port, silent_port = run(scenario())
    assert refused.status_code == 502
    assert refused.json()["error"]["message"] == "The anthropic upstream could not be reached (connection refused)"
    assert silence.status_code == 504
    assert silence.json()["error"]["message"] == "The gemini upstream timed out before answering"
    for response in (refused, silence):
        assert "backend" not in response.text and "127.0.0.1" not in response.text
    logged = caplog.text
    assert "secret-backend-eu" in logged and f"127.0.0.1:{dead_port}" in logged and "quiet-backend-us" in logged
    assert "key-123456789" not in logged
    assert [r["error"] for r in records] == [refused.json()["error"]["message"], silence.json()["error"]["message"]]
    assert not any("key-123456789" in json.dumps(r) for r in records)


def _gzip(data: bytes, wbits: int = 31) -> bytes:
    packer = zlib.compressobj(wbits=wbits)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize("encoding, wbits", [("gzip", 31), ("deflate", 15), ("deflate", -15)])
def test_compressed_answers_are_decoded_although_identity_was_asked(harness, encoding, wbits):
    """An upstream that compresses anyway (issue #16, 8): the client gets the plain body."""
    route = harness.router.post("https://oa.test/v1/chat/completions")
    route.side_effect = [
        httpx.Response(200, headers={"content-type": "text/event-stream", "content-encoding": encoding},
                       content=_gzip(SSE_USAGE, wbits)),
        httpx.Response(200, headers={"content-type": "application/json", "content-encoding": encoding},
                       content=_gzip(b'{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}', wbits)),
        httpx.Response(400, headers={"content-type": "application/json", "content-encoding": encoding},
                       content=_gzip(b'{"error":{"message":"too long","type":"invalid_request_error",'
                                     b'"code":"context_length_exceeded"}}', wbits)),
    ]
    streamed = run(harness.post("/v1/chat/completions", {"model": "gpt-4o", "messages": [], "stream": True}))
    assert route.calls.last.request.headers["accept-encoding"] == "identity"
    assert "content-encoding" not in streamed.headers
    assert streamed.content.startswith(b"data: {") and streamed.content.endswith(b"data: [DONE]\n\n")
    whole = run(harness.post("/v1/chat/completions", {"model": "gpt-4o", "messages": []}))
    assert "content-encoding" not in whole.headers and whole.json()["usage"]["completion_tokens"] == 4
    assert whole.headers["content-length"] == str(len(whole.content))
    refused = run(harness.post("/v1/chat/completions", {"model": "gpt-4o", "messages": []}))
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "context_length_exceeded"
    usage = [r["usage"] for r in harness.records()]
    assert usage[0]["input_tokens"] == 7 and usage[1]["output_tokens"] == 4


def test_other_compressed_bodies_pass_through_untouched(harness):
    audio = _gzip(bytes(range(256)) * 64)
    harness.router.post("https://oa.test/v1/audio/speech").mock(return_value=httpx.Response(
        200, headers={"content-type": "audio/mpeg", "content-encoding": "gzip", "content-length": str(len(audio))},
        content=audio))
    response = run(harness.post("/v1/audio/speech", {"model": "gpt-4o", "input": "hi", "voice": "alloy"}))
    assert response.headers["content-encoding"] == "gzip" and response.headers["content-length"] == str(len(audio))
    assert response.content == bytes(range(256)) * 64  # (httpx decodes it here, as any client would)


class RawUpstream:
    """An upstream on a real socket that answers each request with the next of `answers`:
    (head, pieces) sent with chunked transfer-encoding; a piece that is an asyncio.Event is
    waited for (with a timeout) before the rest is sent."""

    def __init__(self, answers: list) -> None:
        self.answers = answers
        self.server = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    async def _serve(self, reader, writer) -> None:
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), b"0"))
                await reader.readexactly(length)
                headers, pieces = self.answers.pop(0)
                writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n" + headers + b"\r\n")
                for piece in pieces:
                    if isinstance(piece, asyncio.Event):
                        await writer.drain()
                        await asyncio.wait_for(piece.wait(), 5)
                    elif piece:
                        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _raw_config(base_url: str) -> str:
    return f"""
[groups.default]
multiplier = 1
[[tokens]]
name = "alice"
key = "sk-ax-alice"
[[channels]]
name = "oa"
type = "openai"
base_url = "{base_url}/v1"
keys = ["oa-1"]
models = ["gpt-4o"]
"""


def test_compressed_streams_are_decoded_as_they_arrive_through_the_real_transport():
    first, rest = SSE_USAGE.split(b"\n\n", 1)
    packer = zlib.compressobj(wbits=31)
    head = packer.compress(first + b"\n\n") + packer.flush(zlib.Z_SYNC_FLUSH)
    tail = packer.compress(rest) + packer.flush()
    seen_first = asyncio.Event()
    sse = b"content-type: text/event-stream\r\ncontent-encoding: gzip\r\n"

    async def scenario() -> tuple[list, bytes]:
        # The app called as a server would (httpx's ASGITransport gives nothing before the end).
        body = orjson.dumps({"model": "gpt-4o", "messages": [], "stream": True})
        scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
                 "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
                 "client": ("127.0.0.1", 5000), "server": ("proxy", 80),
                 "headers": [(b"authorization", b"Bearer sk-ax-alice"), (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())]}
        messages, never = [], asyncio.Event()

        async def receive():
            if not messages:
                messages.append(None)
                return {"type": "http.request", "body": body, "more_body": False}
            await never.wait()

        async def send(message) -> None:
            messages.append(message)
            if message["type"] == "http.response.body" and message["body"] and not seen_first.is_set():
                assert message["body"].startswith(b'data: {"id":"c"') and message["body"].endswith(b"\n\n")
                seen_first.set()  # the upstream sends the rest only now

        async with RawUpstream([(sse, [head, seen_first, tail])]) as base:
            app = build_app(parse(_raw_config(base)), usage_out=io.BytesIO())
            try:
                await asyncio.wait_for(app(scope, receive, send), 10)
            finally:
                await app.runtime.aclose()
        start = messages[1]
        return start["headers"], b"".join(m["body"] for m in messages[2:])

    headers, got = run(scenario())
    assert not [v for n, v in headers if n == b"content-encoding"]
    assert got.startswith(b"data: {") and got.endswith(b"data: [DONE]\n\n")



def test_a_broken_compressed_answer_is_a_clean_error():
    good = _gzip(SSE_USAGE)
    sse = b"content-type: text/event-stream\r\ncontent-encoding: gzip\r\n"
    json_ = b"content-type: application/json\r\ncontent-encoding: gzip\r\n"
    answers = [(sse, [good[:40], b"garbage" * 10]), (json_, [b"not gzip at all"]), (sse, [good[: len(good) // 2]])]

    async def scenario() -> list[httpx.Response]:
        async with RawUpstream(answers) as base:
            app = build_app(parse(_raw_config(base)), usage_out=io.BytesIO())
            try:
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://proxy",
                                             headers={"authorization": "Bearer sk-ax-alice"}, timeout=10) as client:
                    return [await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [],
                                                                            "stream": stream})
                            for stream in (True, False, True)]
            finally:
                await app.runtime.aclose()

    broken, whole, cut = run(scenario())
    assert broken.status_code == 200 and "content-encoding" not in broken.headers
    assert b'"error"' in broken.content.strip().split(b"\n\n")[-1]
    assert whole.status_code == 502 and "content-encoding" not in whole.headers
    assert whole.json()["error"]["message"] == "The upstream's answer could not be decoded (gzip)"
    assert b'"error"' in cut.content.strip().split(b"\n\n")[-1]
