"""End to end, same dialect: every request example of the public doc through a real proxy process
(uvicorn on a real port) to the fake upstream, driven by the official SDKs."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types

import servers
from fake_upstream import speech_bytes

CONFIG = """
[proxy]
keepalive_s = 15
[passthrough]
openai = "{up}/v1"
anthropic = "{up}"
gemini = "{up}"
[groups.default]
multiplier = 1
[groups.az]
multiplier = 1.5
[groups.claude-direct]
multiplier = 16
[[tokens]]
name = "alice"
key = "sk-ax-alice"
group = "default"
[[tokens]]
name = "bob"
key = "sk-ax-bob"
group = "az"
models = ["gpt-4o*"]
[[tokens]]
name = "carol"
key = "sk-ax-carol"
group = "claude-direct"
[[channels]]
name = "openai"
type = "openai"
base_url = "{up}/v1"
keys = ["oa-key"]
responses = true  # (the fake serves /v1/responses, as OpenAI does)
models = ["gpt-*", "o3-mini", "text-embedding-3-large", "whisper-1", "omni-moderation-latest", "dall-e-3",
          "deepseek-*", "gpt-3.5-turbo-instruct"]
model_map = {{ "gpt-4o-mapped" = "gpt-4o-2024-11-20", "whisper-mapped" = "whisper-1" }}
headers = {{ "OpenAI-Organization" = "org-channel" }}
[[channels]]
name = "azure"
type = "azure"
base_url = "{up}"
api_version = "2024-10-21"
keys = ["az-key"]
models = ["gpt-4o", "gpt-4o-mini"]
groups = ["az"]
model_map = {{ "gpt-4o" = "prod-gpt4o" }}
[[channels]]
name = "anthropic"
type = "anthropic"
base_url = "{up}"
keys = ["ant-key"]
models = ["claude-*"]
groups = ["default", "claude-direct"]
[[channels]]
name = "gemini"
type = "gemini"
base_url = "{up}"
keys = ["gem-key"]
models = ["gemini-*"]
model_map = {{ "gemini-latest" = "gemini-2.5-pro" }}
"""


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    server = servers.proxy(CONFIG.format(up=upstream.url), tmp_path_factory.mktemp("relay"), access_log=True)
    yield server
    server.stop()


def oai(proxy, key="sk-ax-alice", base="/v1", **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + base, api_key=key, max_retries=0, timeout=20, **kw)


def claude(proxy, key="sk-ax-alice") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key=key, max_retries=0, timeout=20)


def gemini(proxy, key="sk-ax-alice", version: str | None = None) -> genai.Client:
    options = types.HttpOptions(base_url=proxy.url, api_version=version, timeout=20_000)
    return genai.Client(api_key=key, http_options=options)


def body_of(record: dict) -> dict:
    return json.loads(record["body"])


# -- OpenAI ------------------------------------------------------------------------------------

def test_chat_non_stream_rewrites_key_and_headers(proxy, received):
    raw = oai(proxy, default_headers={"Cookie": "session=1", "CF-Connecting-IP": "9.9.9.9",
                                      "X-Forwarded-Host": "evil.example"}).chat.completions.with_raw_response
    response = raw.create(model="gpt-4o", messages=[{"role": "user", "content": "nihao。"}], max_tokens=1000)
    completion = response.parse()
    assert completion.choices[0].message.content == "echo: nihao。"
    assert completion.usage.prompt_tokens == 10
    assert len(response.headers["x-request-id"]) == 32
    assert "set-cookie" not in response.headers
    seen = received.last()
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == "Bearer oa-key"
    assert seen["headers"]["openai-organization"] == "org-channel"
    for gone in ("cookie", "cf-connecting-ip", "x-forwarded-host", "x-forwarded-for"):
        assert gone not in seen["headers"]
    assert body_of(seen) == {"model": "gpt-4o", "messages": [{"role": "user", "content": "nihao。"}],
                             "max_tokens": 1000}


def test_chat_stream_with_usage_as_the_doc_shows(proxy, received):
    stream = oai(proxy).chat.completions.create(
        model="gpt-4o-mini", temperature=1, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "system", "content": "You are a helpful assistant."},
                  {"role": "user", "content": "你好 / Hello"}],
    )
    assert stream.response.headers["cache-control"] == "no-cache"  # nothing between may buffer it
    assert stream.response.headers["x-accel-buffering"] == "no"
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: 你好 / Hello"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 15
    assert body_of(received.last())["stream_options"] == {"include_usage": True}


def test_model_map_applies_in_the_body(proxy, received):
    oai(proxy).chat.completions.create(model="gpt-4o-mapped", messages=[{"role": "user", "content": "x"}])
    assert body_of(received.last())["model"] == "gpt-4o-2024-11-20"


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "What's in this image?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/image.png"}}]}]}, id="vision"),
        pytest.param({"model": "gpt-4o-image-vip", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "美化一下這種圖片"},
            {"type": "image_url", "image_url": {"url": "https://example.com/image.png"}}]}]}, id="image-via-chat"),
        pytest.param({"model": "gpt-4.5-preview", "response_format": {"type": "json_schema", "json_schema": {
            "name": "content_compliance", "strict": True, "schema": {
                "type": "object", "additionalProperties": False, "required": ["is_violating", "category"],
                "properties": {"is_violating": {"type": "boolean"}, "category": {"type": "string"}}}}}},
            id="structured-outputs"),
        pytest.param({"model": "o3-mini", "reasoning_effort": "medium"}, id="reasoning-effort"),
        pytest.param({"model": "gpt-4o", "x_custom_field": {"nested": [1, 2]}, "service_tier": "flex"},
                     id="unknown-fields"),
    ],
)
def test_doc_examples_pass_through_untouched(proxy, received, extra):
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], **extra}
    completion = oai(proxy).chat.completions.create(**{k: v for k, v in request.items()
                                                       if k not in ("x_custom_field",)},
                                                    extra_body={k: v for k, v in request.items()
                                                                if k == "x_custom_field"})
    assert completion.choices[0].message.content
    assert body_of(received.last()) == request
    if "response_format" in extra:
        assert set(json.loads(completion.choices[0].message.content)) == {"is_violating", "category"}


def test_tools_doc_example(proxy, received):
    tools = [{"type": "function", "function": {
        "name": "get_current_weather", "description": "Get the current weather in a given location",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"},
                                                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                       "required": ["location"]}}}]
    completion = oai(proxy).chat.completions.create(
        model="gpt-4o", tools=tools,
        messages=[{"role": "user", "content": "北京今天天氣怎麼樣 / How is the weather in Beijing?"}])
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_current_weather" and json.loads(call.function.arguments) == {"location": "test"}
    assert completion.choices[0].finish_reason == "tool_calls"
    assert body_of(received.last())["tools"] == tools


def test_deepseek_thinking_and_reasoning_content(proxy, received):
    stream = oai(proxy).chat.completions.create(model="deepseek-reasoner", stream=True,
                                                messages=[{"role": "user", "content": "你好 / Hello"}],
                                                extra_body={"thinking": {"type": "enabled"}})
    chunks = list(stream)
    thinking = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert thinking == "thinking: echo: 你好 / Hello"
    assert body_of(received.last())["thinking"] == {"type": "enabled"}


def test_audio_modalities(proxy, received):
    completion = oai(proxy).chat.completions.create(
        model="gpt-4o-audio-preview", modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"},
        messages=[{"role": "user", "content": "Is a golden retriever a good family dog?"}])
    assert base64.b64decode(completion.choices[0].message.audio.data)[:4] == b"RIFF"
    assert body_of(received.last())["audio"] == {"voice": "alloy", "format": "wav"}


def test_legacy_completions(proxy, received):
    completion = oai(proxy).completions.create(model="gpt-3.5-turbo-instruct", prompt="你好, / Hello,",
                                               max_tokens=30, temperature=0)
    assert completion.choices[0].text
    assert received.last()["path"] == "/v1/completions"


def test_embeddings_base64_as_the_sdk_sends(proxy, received):
    result = oai(proxy).embeddings.create(model="text-embedding-3-large", input="喵喵喵 / Meow meow meow")
    assert len(result.data[0].embedding) == 8 and result.usage.prompt_tokens == 10
    assert body_of(received.last())["encoding_format"] == "base64"


def test_responses_api_stream_and_not(proxy, received):
    client = oai(proxy)
    response = client.responses.create(model="gpt-4o", input="Say this is a test!")
    assert response.output_text == "echo: Say this is a test!"
    with client.responses.stream(model="gpt-4o", input="again") as stream:
        final = stream.get_final_response()
    assert final.output_text == "echo: again" and final.usage.input_tokens == 10
    assert received.last()["path"] == "/v1/responses"


def test_moderations_and_images(proxy, received):
    client = oai(proxy)
    assert client.moderations.create(model="omni-moderation-latest", input="hello").results[0].flagged is False
    image = client.images.generate(model="dall-e-3", prompt="a pig with wings")
    assert base64.b64decode(image.data[0].b64_json)[:4] == b"\x89PNG"
    assert [r["path"] for r in received.all()] == ["/v1/moderations", "/v1/images/generations"]


def test_audio_speech_binary_streamed(proxy, received):
    text = "The quick brown fox jumped over the lazy dog."
    with oai(proxy).audio.speech.with_streaming_response.create(model="gpt-4o-mini-tts", input=text,
                                                                voice="alloy") as response:
        assert response.headers["content-type"] == "audio/mpeg"
        audio = b"".join(response.iter_bytes())
    assert audio == speech_bytes(text)


@pytest.mark.parametrize("endpoint", ["transcriptions", "translations"])
def test_audio_multipart_forwarded_byte_exact(proxy, received, endpoint):
    audio = bytes(range(256)) * 500  # 128 KB of every byte value
    client = oai(proxy)
    create = getattr(client.audio, endpoint).create
    kwargs = {"language": "zh"} if endpoint == "transcriptions" else {}
    result = create(model="whisper-1", file=("a.mp3", audio, "audio/mpeg"), response_format="json", **kwargs)
    assert f"transcribed {len(audio)} bytes sha256={hashlib.sha256(audio).hexdigest()} model=whisper-1" in result.text
    seen = received.last()
    assert seen["path"] == f"/v1/audio/{endpoint}"
    assert audio in base64.b64decode(seen["body_b64"])


def test_multipart_model_map(proxy, received):
    result = oai(proxy).audio.transcriptions.create(model="whisper-mapped", file=("a.wav", b"RIFF1234", "audio/wav"))
    assert "model=whisper-1" in result.text


def test_models_list_and_retrieve_filtered_by_token(proxy):
    alice = {m.id for m in oai(proxy).models.list()}
    assert {"o3-mini", "text-embedding-3-large", "whisper-1", "gpt-4o-mapped", "whisper-mapped"} <= alice
    bob = {m.id for m in oai(proxy, key="sk-ax-bob").models.list()}
    assert bob == {"gpt-4o", "gpt-4o-mini"}
    assert oai(proxy, key="sk-ax-bob").models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        oai(proxy, key="sk-ax-bob").models.retrieve("o3-mini")


def test_azure_channel_deployment_url_and_key(proxy, received):
    completion = oai(proxy, key="sk-ax-bob").chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "echo: hi"
    seen = received.last()
    assert seen["path"] == "/openai/deployments/prod-gpt4o/chat/completions"
    assert seen["query"] == "api-version=2024-10-21"
    assert seen["headers"]["api-key"] == "az-key" and "authorization" not in seen["headers"]


# -- Anthropic ---------------------------------------------------------------------------------

def test_claude_extended_thinking_stream(proxy, received):
    with claude(proxy).messages.stream(
        model="claude-sonnet-4-20250514", max_tokens=8000, system="你是一个智能AI助手,叫小王",
        thinking={"type": "enabled", "budget_tokens": 1200}, messages=[{"role": "user", "content": "你是谁?!"}],
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    ) as stream:
        message = stream.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[1].text == "echo: 你是谁?!"
    seen = received.last()
    assert seen["path"] == "/v1/messages"
    assert seen["headers"]["x-api-key"] == "ant-key" and "authorization" not in seen["headers"]
    assert seen["headers"]["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert seen["headers"]["anthropic-version"]  # the SDK's own version is kept


def test_anthropic_version_added_when_the_client_sends_none(proxy, received):
    response = httpx.post(f"{proxy.url}/v1/messages", headers={"x-api-key": "sk-ax-alice"}, timeout=20,
                          json={"model": "claude-3-7-sonnet-20250219", "max_tokens": 5,
                                "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    assert received.last()["headers"]["anthropic-version"] == "2023-06-01"


def test_claude_tool_use_and_count_tokens(proxy, received):
    client = claude(proxy, key="sk-ax-carol")
    tools = [{"name": "get_weather", "description": "weather", "input_schema": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    message = client.messages.create(model="claude-3-7-sonnet-20250219", max_tokens=100, tools=tools,
                                     messages=[{"role": "user", "content": "weather?"}])
    assert message.stop_reason == "tool_use" and message.content[0].input == {"city": "test"}
    count = client.messages.count_tokens(model="claude-3-7-sonnet-20250219",
                                         messages=[{"role": "user", "content": "hello"}])
    assert count.input_tokens > 0
    assert received.last()["path"] == "/v1/messages/count_tokens"


def test_anthropic_models_list(proxy):
    ids = [m.id for m in claude(proxy, key="sk-ax-carol").models.list()]
    assert ids == []  # claude-direct has only a glob: nothing exact to list
    with pytest.raises(anthropic.AuthenticationError):
        claude(proxy, key="sk-ax-nobody").models.list()


# -- Gemini ------------------------------------------------------------------------------------

DOC_GEMINI = {
    "system_instruction": "你是一直小猪.你会在回复开始的时候 加一个'哼哼'",
    "temperature": 1, "top_p": 1,
    "thinking_config": types.ThinkingConfig(include_thoughts=True, thinking_budget=26240),
}


@pytest.mark.parametrize("version", [None, "v1beta"])
def test_gemini_generate_content(proxy, received, version):
    client = gemini(proxy, version=version)
    result = client.models.generate_content(
        model="gemini-2.5-pro", contents="你是谁?", config=types.GenerateContentConfig(**DOC_GEMINI))
    assert result.text == "echo: 你是谁?"
    assert result.candidates[0].content.parts[0].thought is True
    seen = received.last()
    assert seen["path"] == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert seen["headers"]["x-goog-api-key"] == "gem-key"
    thinking = body_of(seen)["generationConfig"]["thinkingConfig"]  # the SDK's own spelling, untouched
    assert sorted(thinking.values()) == [True, 26240]


def test_gemini_stream_sse_and_model_map(proxy, received):
    client = gemini(proxy)
    chunks = list(client.models.generate_content_stream(
        model="gemini-latest", contents="Hello there",
        config=types.GenerateContentConfig(system_instruction="You are a cat. Your name is Neko.")))
    assert "".join(c.text or "" for c in chunks) == "echo: Hello there"
    seen = received.last()
    assert seen["path"] == "/v1beta/models/gemini-2.5-pro:streamGenerateContent" and seen["query"] == "alt=sse"


def test_gemini_stream_json_array_without_alt_sse(proxy, received):
    body = {"contents": [{"role": "user", "parts": [{"text": "1+2+3+4+5+....+999?"}]}],
            "systemInstruction": {"parts": [{"text": "hi"}], "role": "user"},
            "generationConfig": {"temperature": 1, "topP": 1,
                                 "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 26240}}}
    response = httpx.post(f"{proxy.url}/v1beta/models/gemini-2.5-pro:streamGenerateContent",
                          headers={"x-goog-api-key": "sk-ax-alice"}, json=body, timeout=20)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    items = response.json()
    assert isinstance(items, list) and items[-1]["candidates"][0]["finishReason"] == "STOP"
    text = "".join(p["text"] for i in items for p in i["candidates"][0]["content"]["parts"] if not p.get("thought"))
    assert text == "echo: 1+2+3+4+5+....+999?"


def test_gemini_count_embed_and_models(proxy, received):
    client = gemini(proxy)
    assert client.models.count_tokens(model="gemini-2.5-pro", contents="hello").total_tokens > 0
    result = client.models.embed_content(model="gemini-embedding-001", contents="hello")
    assert len(result.embeddings[0].values) > 0
    beta = gemini(proxy, version="v1beta")
    names = [m.name for m in beta.models.list()]
    assert "models/gemini-latest" in names and not any("*" in n for n in names)  # globs are not listed
    assert "models/o3-mini" in names  # a Gemini client may use the OpenAI channel's models too
    bob = gemini(proxy, key="sk-ax-bob")
    with pytest.raises(genai.errors.ClientError) as info:
        bob.models.generate_content(model="gemini-2.5-pro", contents="x")
    assert info.value.code == 403


def test_gemini_key_in_query_string(proxy, received):
    response = httpx.post(f"{proxy.url}/v1beta/models/gemini-2.5-pro:generateContent?key=sk-ax-alice",
                          json={"contents": [{"role": "user", "parts": [{"text": "q"}]}]}, timeout=20)
    assert response.status_code == 200
    seen = received.last()
    assert "sk-ax-alice" not in json.dumps(seen)
    assert seen["headers"]["x-goog-api-key"] == "gem-key"


# -- Passthrough, base URLs, browsers, streaming ---------------------------------------------------

def test_passthrough_keeps_the_clients_key(proxy, received):
    oai(proxy, key="sk-proj-client-own").chat.completions.create(
        model="any-model", messages=[{"role": "user", "content": "hi"}])
    claude(proxy, key="sk-ant-client-own").messages.create(
        model="claude-any", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    client = gemini(proxy, key="AIza-client-own")
    client.models.generate_content(model="gemini-any", contents="hi")
    records = received.all()
    assert [r["credential"] for r in records] == ["sk-proj-client-own", "sk-ant-client-own", "AIza-client-own"]
    assert body_of(records[0])["model"] == "any-model"


@pytest.mark.parametrize("base", ["", "/v1", "/v1/v1"])
def test_base_url_variants(proxy, received, base):
    completion = openai.OpenAI(base_url=proxy.url + base, api_key="sk-ax-alice", max_retries=0).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "echo: hi"
    message = anthropic.Anthropic(base_url=proxy.url + base, api_key="sk-ax-alice", max_retries=0).messages.create(
        model="claude-sonnet-4-20250514", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "echo: hi"


def test_full_url_as_base_url(proxy):
    response = httpx.post(f"{proxy.url}/v1/chat/completions", json={"model": "gpt-4o", "messages": [
        {"role": "user", "content": "hi"}]}, headers={"Authorization": "Bearer sk-ax-alice"}, timeout=20)
    assert response.status_code == 200
    client = openai.OpenAI(base_url=proxy.url + "/v1/chat/completions", api_key="sk-ax-alice", max_retries=0)
    assert client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}]).choices


def test_cors_preflight_and_exposed_request_id(proxy):
    preflight = httpx.options(f"{proxy.url}/v1/chat/completions", headers={
        "Origin": "https://chat.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"}, timeout=10)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    response = httpx.get(f"{proxy.url}/v1/models", headers={"Origin": "https://chat.example",
                                                             "Authorization": "Bearer sk-ax-alice"}, timeout=10)
    assert response.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in response.headers["access-control-expose-headers"]


def test_first_chunk_arrives_before_the_upstream_finishes(proxy, received):
    """`hangstream` sends one event and then nothing until its client leaves: a buffering proxy
    would never deliver it. Closing the client must close the upstream request too."""
    client = oai(proxy, key="hangstream")  # passthrough: the key picks the fake upstream's fault
    stream = client.chat.completions.create(model="gpt-4o", stream=True,
                                            messages=[{"role": "user", "content": "hi"}])
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    stream.close()
    assert received.wait_event("disconnected")


def test_upstream_cookies_never_stored_or_forwarded(proxy, received):
    for key in ("sk-ax-alice", "sk-ax-carol", "sk-ax-alice"):
        response = httpx.post(f"{proxy.url}/v1/messages", headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                              json={"model": "claude-3-7-sonnet-20250219", "max_tokens": 5,
                                    "messages": [{"role": "user", "content": "hi"}]}, timeout=20)
        assert response.status_code == 200 and "set-cookie" not in response.headers
    assert [r["headers"].get("cookie") for r in received.all()] == [None, None, None]


def test_access_log_never_shows_a_key(proxy):
    httpx.post(f"{proxy.url}/v1beta/models/gemini-2.5-pro:generateContent?key=sk-ax-alice&alt=json",
               json={"contents": [{"role": "user", "parts": [{"text": "q"}]}]}, timeout=20)
    httpx.get(f"{proxy.url}/v1beta/models?key=AIzaSecretClientKey", timeout=20)
    servers.wait_stdout(proxy, '"GET /v1beta/models?key=[redacted] HTTP/1.1" 200 OK')
    logs = proxy.stderr() + proxy.stdout()
    assert '"POST /v1beta/models/gemini-2.5-pro:generateContent?key=[redacted]&alt=json HTTP/1.1" 200 OK' in logs
    assert "sk-ax-alice" not in logs and "AIzaSecretClientKey" not in logs


def test_access_log_one_line_per_answer_as_uvicorn_writes_it(proxy):
    """The app writes uvicorn's access lines itself (in batches): same format, the path as the
    client sent it (before the base-URL spelling is mapped), and uvicorn's own lines are off."""
    tag = uuid.uuid4().hex
    answer = httpx.post(f"{proxy.url}/chat/completions?tag={tag}", headers={"authorization": "Bearer sk-ax-alice"},
                        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}, timeout=20)
    assert answer.status_code == 200
    httpx.options(f"{proxy.url}/v1/models?tag={tag}", headers={
        "origin": "https://chat.example", "access-control-request-method": "GET"}, timeout=20)
    httpx.get(f"{proxy.url}/nowhere?tag={tag}", timeout=20)
    out = servers.wait_stdout(proxy, f'"GET /nowhere?tag={tag} HTTP/1.1" 404 Not Found')
    lines = [line for line in out.splitlines() if tag in line]
    assert len(lines) == 3, lines
    assert re.fullmatch(rf'INFO:     127\.0\.0\.1:\d+ - "POST /chat/completions\?tag={tag} HTTP/1\.1" 200 OK', lines[0])
    assert lines[1].endswith(f'"OPTIONS /v1/models?tag={tag} HTTP/1.1" 200 OK')
    assert tag not in proxy.stderr()
