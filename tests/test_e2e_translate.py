"""End to end across dialects: OpenAI clients on Anthropic and Gemini channels, Anthropic clients
(Claude Code) on OpenAI channels. The SDKs' own stream accumulators must rebuild the right answer."""

from __future__ import annotations

import base64
import json

import anthropic
import httpx
import openai
import pytest

import servers

CONFIG = """
[groups.default]
multiplier = 1
[[tokens]]
name = "alice"
key = "sk-ax-alice"
group = "default"
[[channels]]
name = "claude"
type = "anthropic"
base_url = "{up}"
keys = ["ant-key"]
models = ["claude-*"]
[[channels]]
name = "claude-busy"
type = "anthropic"
base_url = "{up}"
keys = ["fail-429"]
models = ["busy-claude"]
[[channels]]
name = "claude-cut"
type = "anthropic"
base_url = "{up}"
keys = ["cut"]
models = ["cut-claude"]
[[channels]]
name = "gemini"
type = "gemini"
base_url = "{up}"
keys = ["gem-key"]
models = ["gemini-*"]
[[channels]]
name = "gpt"
type = "openai"
base_url = "{up}/v1"
keys = ["oa-key"]
models = ["gpt-*", "deepseek-*"]
"""

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Local time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "tz": {"type": "string"}},
                   "required": ["city", "tz"]}}}
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")).decode()


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    server = servers.proxy(CONFIG.format(up=upstream.url), tmp_path_factory.mktemp("translate"))
    yield server
    assert "Traceback" not in server.stderr()
    server.stop()


def oai(proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key="sk-ax-alice", max_retries=0, timeout=20)


def claude(proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key="sk-ax-alice", max_retries=0, timeout=20)


def sent(received) -> dict:
    return json.loads(received.last()["body"])


# -- OpenAI client, Anthropic channel -------------------------------------------------------------

def test_openai_on_claude_text(proxy, received):
    raw = oai(proxy).chat.completions.with_raw_response.create(
        model="claude-sonnet-4-20250514",
        messages=[{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hello!"}])
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: Hello!"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "claude-sonnet-4-20250514" and completion.usage.prompt_tokens == 10
    body = sent(received)
    assert received.last()["path"] == "/v1/messages"
    assert body["system"] in ("You are a helpful assistant.", [{"type": "text", "text": "You are a helpful assistant."}])
    assert body["messages"] == [{"role": "user", "content": "Hello!"}] or body["messages"][0]["role"] == "user"
    assert body["max_tokens"] > 0
    record = servers.usage_record(proxy, raw.headers["x-request-id"])
    assert record["channel"] == "claude" and record["usage"]["input_tokens"] == 10


def test_openai_on_claude_stream_with_usage(proxy, received):
    with oai(proxy).chat.completions.stream(
        model="claude-3-7-sonnet-20250219", stream_options={"include_usage": True},
        messages=[{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hello!"}],
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "echo: Hello!"
    assert final.usage.prompt_tokens == 10 and final.usage.completion_tokens == 5
    assert sent(received)["stream"] is True


def test_openai_on_claude_vision_both_url_kinds(proxy, received):
    completion = oai(proxy).chat.completions.create(model="claude-sonnet-4-20250514", messages=[{"role": "user", "content": [
        {"type": "text", "text": "这张图片里有什么?请详细描述。"},
        {"type": "image_url", "image_url": {"url": "https://example.com/image.png"}},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}])
    assert completion.choices[0].message.content.startswith("echo: ")
    blocks = sent(received)["messages"][0]["content"]
    sources = [b["source"] for b in blocks if b["type"] == "image"]
    assert sources == [{"type": "url", "url": "https://example.com/image.png"},
                       {"type": "base64", "media_type": "image/png", "data": PNG}]


@pytest.mark.parametrize("model", ["claude-sonnet-4-20250514", "claude-parallel-4-20250514"])
def test_openai_on_claude_tool_round_trip_streamed(proxy, received, model):
    client = oai(proxy)
    messages = [{"role": "user", "content": "Weather and time in Beijing?"}]
    with client.chat.completions.stream(model=model, messages=messages, tools=[WEATHER, TIME]) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert final.choices[0].finish_reason == "tool_calls"
    assert len(calls) == (2 if "parallel" in model else 1)
    for call in calls:
        assert call.id and json.loads(call.function.arguments)["city"] == "test"
    messages.append(final.choices[0].message.model_dump(exclude_none=True, exclude={"parsed"}))
    messages += [{"role": "tool", "tool_call_id": c.id, "content": f"sunny ({i})"} for i, c in enumerate(calls)]
    answer = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER, TIME])
    assert answer.choices[0].message.content.startswith("tool result: sunny")
    turns = sent(received)["messages"]
    results = [b for b in turns[-1]["content"] if b["type"] == "tool_result"]
    assert [r["tool_use_id"] for r in results] == [c.id for c in calls]  # one user turn, ids kept


def test_openai_on_claude_reasoning_effort(proxy, received):
    with oai(proxy).chat.completions.stream(model="claude-sonnet-4-20250514", reasoning_effort="medium",
                                            messages=[{"role": "user", "content": "2+2?"}]) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    reasoning = "".join(getattr(e.chunk.choices[0].delta, "reasoning_content", None) or ""
                        for e in events if e.type == "chunk" and e.chunk.choices)
    assert reasoning == "thinking: echo: 2+2?"
    assert final.choices[0].message.content == "echo: 2+2?"
    body = sent(received)
    assert body["thinking"]["type"] in ("enabled", "adaptive") and "temperature" not in body


def test_openai_on_claude_json_schema(proxy, received):
    schema = {"type": "object", "properties": {"is_violating": {"type": "boolean"}, "category": {"type": "string"}},
              "required": ["is_violating", "category"], "additionalProperties": False}
    completion = oai(proxy).chat.completions.create(
        model="claude-sonnet-4-20250514", messages=[{"role": "user", "content": "How do I prepare for a job interview?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "content_compliance", "schema": schema,
                                                                 "strict": True}})
    assert set(json.loads(completion.choices[0].message.content)) == {"is_violating", "category"}
    assert completion.choices[0].finish_reason == "stop"


def test_openai_on_claude_errors_in_openai_dialect(proxy, received):
    with pytest.raises(openai.RateLimitError) as info:
        oai(proxy).chat.completions.create(model="busy-claude", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 429 and info.value.body["type"] == "rate_limit_error"
    with pytest.raises(openai.APIError):
        list(oai(proxy).chat.completions.create(model="cut-claude", stream=True,
                                                messages=[{"role": "user", "content": "x"}]))
    with pytest.raises(openai.BadRequestError) as info:
        oai(proxy).chat.completions.create(model="claude-sonnet-4-20250514", n=2,
                                           messages=[{"role": "user", "content": "x"}])
    assert "n" in info.value.message


# -- OpenAI client, Gemini channel ---------------------------------------------------------------

def test_openai_on_gemini_text_and_stream(proxy, received):
    client = oai(proxy)
    completion = client.chat.completions.create(
        model="gemini-2.5-pro", messages=[{"role": "system", "content": "You are a cat."},
                                          {"role": "user", "content": "Hello there"}])
    assert completion.choices[0].message.content == "echo: Hello there"
    body = sent(received)
    assert received.last()["path"] == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert body["systemInstruction"]["parts"][0]["text"] == "You are a cat."
    with client.chat.completions.stream(model="gemini-2.5-pro", stream_options={"include_usage": True},
                                        messages=[{"role": "user", "content": "Hello there"}]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "echo: Hello there" and final.usage.total_tokens == 15
    assert received.last()["path"].endswith(":streamGenerateContent") and received.last()["query"] == "alt=sse"


def test_openai_on_gemini_tools_images_thinking_schema(proxy, received):
    client = oai(proxy)
    messages = [{"role": "user", "content": [{"type": "text", "text": "Weather here?"},
                                             {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]
    first = client.chat.completions.create(model="gemini-2.5-pro", messages=messages, tools=[WEATHER],
                                           reasoning_effort="low")
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls" and json.loads(call.function.arguments) == {"city": "test"}
    body = sent(received)
    assert body["contents"][0]["parts"][1]["inlineData"] == {"mimeType": "image/png", "data": PNG}
    assert body["generationConfig"]["thinkingConfig"]["includeThoughts"] is True
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'})
    second = client.chat.completions.create(model="gemini-2.5-pro", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content.startswith("tool result:")
    parts = sent(received)["contents"][1]["parts"]
    assert parts[0]["functionCall"]["name"] == "get_weather" and parts[0].get("thoughtSignature")
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    shaped = client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "ok?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}})
    assert json.loads(shaped.choices[0].message.content) == {"ok": True}
    assert sent(received)["generationConfig"]["responseMimeType"] == "application/json"


# -- Anthropic client (Claude Code), OpenAI channel ----------------------------------------------

CLAUDE_CODE_TOOLS = [
    {"name": "Read", "description": "Read a file", "input_schema": {
        "type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}},
    {"name": "Bash", "description": "Run a command", "input_schema": {
        "type": "object", "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
        "required": ["command"]}},
]


def test_claude_code_on_gpt_streamed_multi_tool_conversation(proxy, received):
    client = claude(proxy)
    system = [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}]
    messages = [{"role": "user", "content": [{"type": "text", "text": "Look at the repo"}]}]
    with client.messages.stream(model="gpt-4o-parallel", max_tokens=4096, system=system, tools=CLAUDE_CODE_TOOLS,
                                messages=messages) as stream:
        first = stream.get_final_message()
    uses = [b for b in first.content if b.type == "tool_use"]
    assert first.stop_reason == "tool_use" and [u.name for u in uses] == ["Read", "Bash"]
    assert uses[0].input == {"file_path": "test"} and uses[1].input == {"command": "test"}
    body = sent(received)
    assert received.last()["path"] == "/v1/chat/completions"
    assert body["messages"][0] == {"role": "system", "content": "You are Claude Code."}
    assert body["stream_options"] == {"include_usage": True}
    assert [t["function"]["name"] for t in body["tools"]] == ["Read", "Bash"]
    messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]})
    messages.append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": uses[0].id, "content": "README contents"},
        {"type": "tool_result", "tool_use_id": uses[1].id, "content": [{"type": "text", "text": "ok"}]},
        {"type": "text", "text": "continue"}]})
    with client.messages.stream(model="gpt-4o", max_tokens=4096, system=system, messages=messages,
                                tools=CLAUDE_CODE_TOOLS) as stream:
        second = stream.get_final_message()
    assert second.stop_reason in ("end_turn", "tool_use") and second.usage.input_tokens + second.usage.output_tokens > 0
    turns = sent(received)["messages"]
    tool_turns = [t for t in turns if t["role"] == "tool"]
    assert [t["tool_call_id"] for t in tool_turns] == [uses[0].id, uses[1].id]


def test_anthropic_client_on_deepseek_thinking(proxy, received):
    message = claude(proxy).messages.create(model="deepseek-reasoner", max_tokens=2048,
                                            thinking={"type": "enabled", "budget_tokens": 1024},
                                            messages=[{"role": "user", "content": "hi"}])
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "thinking: echo: hi" and message.content[1].text == "echo: hi"


def test_claude_code_count_tokens_on_gpt_channel_is_estimated(proxy, received):
    count = claude(proxy).messages.count_tokens(model="gpt-4o", messages=[{"role": "user", "content": "x" * 400}])
    assert 90 <= count.input_tokens <= 120
    assert received.all() == []


def test_anthropic_client_errors_in_anthropic_dialect(proxy):
    response = httpx.post(f"{proxy.url}/v1/messages", headers={"x-api-key": "sk-ax-alice",
                                                               "anthropic-version": "2023-06-01"},
                          json={"model": "gpt-4o", "max_tokens": 5, "messages": []}, timeout=20)
    assert response.status_code == 400 and response.json()["type"] == "error"
