"""Gemini client -> chat completions: request, answer and stream translation.

Answers and stream events are checked with google-genai's own types and read back through its
client (`generate_content`, `generate_content_stream` over an httpx MockTransport).
"""

from __future__ import annotations

import httpx
import orjson
import pytest
from google import genai
from google.genai import types

from relay.errors import ProxyError
from wrong_types import variants
from relay.dialects import gemini_client, gemini_client_stream, anthropic_channel, anthropic_channel_stream
from relay.dialects.common import pack_thinking
from relay.dialects.gemini_channel import SKIP_SIGNATURE

BLOCKS = [{"type": "thinking", "thinking": "The user wants the weather.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}]
GOOGLE_SIG = "CiQBVKhc7+Lw/Rjz0sw1PvSqYQfpMXLHZ8/eKqtNRg5G8hLqVbcSLwGt5xE="
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}, "days": {"type": "INTEGER", "nullable": True}},
                          "required": ["city"], "propertyOrdering": ["city", "days"]}}
WEATHER_JSON = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": ["integer", "null"]}}, "required": ["city"]}
TIME = {"name": "get_time", "parametersJsonSchema": {"type": "object", "properties": {"tz": {"type": "string"}}, "additionalProperties": False}}
TOOLS = [{"functionDeclarations": [WEATHER, TIME]}]


def body(*contents: dict, **fields: object) -> dict:
    return {"contents": list(contents) or [{"role": "user", "parts": [{"text": "Hi"}]}], **fields}


def user(*parts: dict) -> dict:
    return {"role": "user", "parts": list(parts)}


def model(*parts: dict) -> dict:
    return {"role": "model", "parts": list(parts)}


def chunk(finish: str | None = None, **delta: object) -> dict:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [choice]}


def call(index: int, arguments: str, call_id: str | None = None, name: str | None = None) -> dict:
    out: dict = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        out.update(id=call_id, type="function")
        out["function"]["name"] = name
    return out


USAGE = {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [],
         "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160, "prompt_tokens_details": {"cached_tokens": 100},
                   "completion_tokens_details": {"reasoning_tokens": 25}}}


def completion(message: dict, finish: str, usage: dict | None = None) -> dict:
    return {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "logprobs": None, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}


def sdk_client(payload: bytes, content_type: str) -> genai.Client:
    """A google-genai client whose server answers with `payload`."""

    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": content_type}, content=payload)

    options = types.HttpOptions(base_url="http://proxy.test", httpx_client=httpx.Client(transport=httpx.MockTransport(handler)))
    return genai.Client(api_key="sk-ax-test", http_options=options)


def sdk_stream(events: list[dict]) -> list[types.GenerateContentResponse]:
    raw = b"".join(b"data: " + orjson.dumps(event) + b"\r\n\r\n" for event in events)
    return list(sdk_client(raw, "text/event-stream").models.generate_content_stream(model="gpt-4o", contents="Hi"))


def run(chunks: list[dict], request: dict) -> list[dict]:
    translator = gemini_client_stream.stream(request, "gpt-4o")
    events = [event for c in chunks for event in translator.feed(c)] + translator.finish()
    assert translator.finish() == []
    for event in events:
        types.GenerateContentResponse.model_validate(event)
        # Gemini CLI drops a whole event whose parts hold an empty non-thought text.
        assert all(part.get("text") != "" for part in event["candidates"][0]["content"]["parts"])
    assert all("finishReason" not in e["candidates"][0] for e in events[:-1]) and "finishReason" in events[-1]["candidates"][0]
    return events


# ---- request -------------------------------------------------------------------------------

def test_conversation_with_media_calls_and_results() -> None:
    out = gemini_client.request(body(
        user({"text": "What is this?"},
             {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
             {"inline_data": {"mime_type": "audio/mpeg", "data": "SUQz"}},
             {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x", "displayName": "spec.pdf"}},
             {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}},
             {"fileData": {"fileUri": "data:image/gif;base64,R0lGOD"}}),
        model({"text": "Let me think.", "thought": True},
              {"text": "Checking both."},
              {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": SKIP_SIGNATURE},
              {"function_call": {"id": "fc-7", "name": "get_time", "args": {}}}),
        user({"functionResponse": {"id": "fc-7", "name": "get_time", "response": {"output": "14:02"}}},
             {"functionResponse": {"name": "get_weather", "response": {"temp": 4},
                                   "parts": [{"inlineData": {"mimeType": "image/png", "data": "bWFw"}}]}},
             {"text": "And tomorrow?"}),
        user({"functionResponse": {"name": "get_weather", "response": {"output": "compacted"}}}),
        system_instruction={"parts": [{"text": "Be brief."}, {"text": "Metric units."}]},
        safetySettings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        labels={"team": "a"},
    ), "deepseek-chat")
    assert out == {"model": "deepseek-chat", "messages": [
        {"role": "system", "content": "Be brief.\n\nMetric units."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}},
            {"type": "file", "file": {"filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lGOD"}},
        ]},
        {"role": "assistant", "content": "Checking both.", "reasoning_content": "Let me think.", "tool_calls": [
            {"id": "call_1_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "fc-7", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "fc-7", "content": "14:02"},
        {"role": "tool", "tool_call_id": "call_1_2", "content": '{"temp":4}'},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,bWFw"}}, {"type": "text", "text": "And tomorrow?"}]},
        {"role": "user", "content": '(result of get_weather) compacted'},
    ]}


def test_calls_are_matched_by_name_and_order() -> None:
    history = body(
        user({"text": "Two cities"}),
        model({"functionCall": {"name": "get_weather", "args": {"city": "A"}}}, {"functionCall": {"name": "get_weather", "args": {"city": "B"}}}),
        user({"functionResponse": {"name": "get_weather", "response": {"output": "a"}}},
             {"functionResponse": {"name": "get_weather", "response": {"output": "b"}}}),
    )
    out = gemini_client.request(history, "m")
    assert [(m.get("tool_call_id"), m["content"]) for m in out["messages"][2:]] == [("call_1_0", "a"), ("call_1_1", "b")]
    # The same history gives the same ids on the next turn: the prompt prefix stays cacheable.
    assert gemini_client.request(history, "m") == out


@pytest.mark.parametrize(
    ("config", "model_name", "expected"),
    [
        pytest.param({"maxOutputTokens": 100, "temperature": 0.3, "topP": 0.9, "topK": 40, "presencePenalty": 0.5, "frequencyPenalty": 0.2, "seed": 7,
                      "stopSequences": ["", " ", "a", "b", "c", "d", "e"]}, "gpt-4o",
                     {"max_tokens": 100, "temperature": 0.3, "top_p": 0.9, "presence_penalty": 0.5, "frequency_penalty": 0.2, "seed": 7,
                      "stop": ["a", "b", "c", "d"]}, id="sampling"),
        pytest.param({"max_output_tokens": 100, "temperature": 0.3, "thinking_config": {"thinking_budget": 1024}}, "o4-mini",
                     {"max_completion_tokens": 100, "reasoning_effort": "low"}, id="reasoning-model-snake-case"),
        pytest.param({"responseMimeType": "application/json", "responseSchema": {"type": "OBJECT", "properties": {"t": {"type": "NUMBER"}},
                                                                                 "any_of": [{"type": "STRING"}]}}, "m",
                     {"response_format": {"type": "json_schema", "json_schema": {"name": "response", "schema": {
                         "type": "object", "properties": {"t": {"type": "number"}}, "anyOf": [{"type": "string"}]}}}}, id="response-schema"),
        pytest.param({"responseMimeType": "application/json", "responseJsonSchema": WEATHER_JSON}, "m",
                     {"response_format": {"type": "json_schema", "json_schema": {"name": "response", "schema": WEATHER_JSON}}}, id="json-schema"),
        pytest.param({"responseMimeType": "application/json"}, "m", {"response_format": {"type": "json_object"}}, id="json-object"),
        pytest.param({"responseMimeType": "text/plain", "responseModalities": ["TEXT"]}, "m", {}, id="text"),
        pytest.param({"thinkingConfig": {"thinkingBudget": 20000, "includeThoughts": True}}, "deepseek-reasoner", {"reasoning_effort": "high"}, id="budget-high"),
        pytest.param({"thinkingConfig": {"thinkingBudget": -1}}, "m", {"reasoning_effort": "medium"}, id="budget-dynamic"),
        pytest.param({"thinkingConfig": {"thinkingBudget": 0}}, "m", {}, id="budget-off"),
        pytest.param({"thinkingConfig": {"thinkingLevel": "LOW"}}, "gpt-5", {"reasoning_effort": "low"}, id="level"),
        pytest.param({"thinkingConfig": {"thinkingLevel": "high"}}, "gpt-4o", {}, id="no-effort-for-gpt-4o"),
        pytest.param({"thinkingConfig": {"includeThoughts": True}}, "m", {}, id="only-show-thoughts"),
    ],
)
def test_generation_config(config: dict, model_name: str, expected: dict) -> None:
    out = gemini_client.request(body(generationConfig=config), model_name)
    assert {k: v for k, v in out.items() if k not in ("model", "messages")} == expected


@pytest.mark.parametrize(
    ("tool_config", "names", "choice"),
    [
        pytest.param(None, ["get_weather", "get_time"], None, id="default"),
        pytest.param({"functionCallingConfig": {"mode": "AUTO"}}, ["get_weather", "get_time"], None, id="auto"),
        pytest.param({"functionCallingConfig": {"mode": "NONE"}}, ["get_weather", "get_time"], "none", id="none"),
        pytest.param({"functionCallingConfig": {"mode": "ANY"}}, ["get_weather", "get_time"], "required", id="any"),
        pytest.param({"function_calling_config": {"mode": "ANY", "allowed_function_names": ["get_time"]}}, ["get_time"],
                     {"type": "function", "function": {"name": "get_time"}}, id="any-one"),
        pytest.param({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time", "get_weather"]}}, ["get_weather", "get_time"],
                     "required", id="any-several"),
        pytest.param({"functionCallingConfig": {"mode": "VALIDATED", "allowedFunctionNames": ["get_weather"]}}, ["get_weather"], None, id="validated"),
    ],
)
def test_tools_and_tool_config(tool_config: dict | None, names: list[str], choice: object) -> None:
    fields = {"tools": TOOLS, **({"toolConfig": tool_config} if tool_config else {})}
    out = gemini_client.request(body(**fields), "m")
    assert [tool["function"]["name"] for tool in out["tools"]] == names
    assert out.get("tool_choice") == choice
    weather = next(tool["function"] for tool in out["tools"] if tool["function"]["name"] == "get_weather") if "get_weather" in names else None
    if weather:
        assert weather == {"name": "get_weather", "parameters": WEATHER_JSON, "description": "Weather in a city"}


def test_stream_flag_asks_for_usage() -> None:
    out = gemini_client.request(body(), "m", stream=True)
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert "stream" not in gemini_client.request(body(), "m")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        pytest.param({"cachedContent": "cachedContents/abc"}, "cachedContent", id="cached-content"),
        pytest.param({"generationConfig": {"candidateCount": 2}}, "generationConfig.candidateCount", id="candidates"),
        pytest.param({"generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}, "generationConfig.responseModalities", id="image-out"),
        pytest.param({"generationConfig": {"responseLogprobs": True}}, "generationConfig.responseLogprobs", id="logprobs"),
        *[pytest.param({"tools": [{"functionDeclarations": [TIME]}, {name: {}}]}, f"tools[1].{name}", id=name) for name in (
            "googleSearch", "google_search", "googleSearchRetrieval", "codeExecution", "urlContext", "computerUse", "fileSearch", "googleMaps")],
        pytest.param({"tools": [{"functionDeclarations": [{"description": "x"}]}]}, "tools[0].functionDeclarations[0].name", id="nameless"),
        pytest.param({"contents": []}, "contents", id="no-contents"),
        pytest.param({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "contents[0].role", id="bad-role"),
        pytest.param({"contents": [{"role": "user", "parts": "x"}]}, "contents[0].parts", id="parts-not-a-list"),
        pytest.param({"contents": [user({"functionCall": {"name": "f", "args": {}}})]}, "contents[0].parts[0]", id="call-in-user-turn"),
        pytest.param({"contents": [user({"text": "run"}), model({"executableCode": {"language": "PYTHON", "code": "1"}})]}, "contents[1].parts[0]",
                     id="executable-code"),
        pytest.param({"contents": [user({"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc", "mimeType": "application/pdf"}})]},
                     "contents[0].parts[0]", id="files-api"),
        pytest.param({"contents": [user({"fileData": {"fileUri": "gs://bucket/a.png", "mimeType": "image/png"}})]}, "contents[0].parts[0]", id="gcs"),
        pytest.param({"contents": [user({"fileData": {"fileUri": "https://youtu.be/x", "mimeType": "video/mp4"}})]}, "contents[0].parts[0]", id="video-url"),
    ],
)
def test_request_refused(fields: dict, param: str) -> None:
    with pytest.raises(ProxyError) as err:
        gemini_client.request(body(**fields), "m")
    assert err.value.status == 400 and err.value.param == param and err.value.message.startswith(param)


def test_signatures_come_back() -> None:
    out = gemini_client.request(body(
        user({"text": "Weather?"}),
        model({"functionCall": {"id": "toolu_01", "name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": pack_thinking(BLOCKS)},
              {"functionCall": {"id": "call_g", "name": "get_time", "args": {}}, "thoughtSignature": GOOGLE_SIG}),
        user({"functionResponse": {"id": "toolu_01", "name": "get_weather", "response": {"output": "4C"}}},
             {"functionResponse": {"id": "call_g", "name": "get_time", "response": {"output": "9:00"}}}),
    ), "claude-sonnet-4-5")
    assistant = out["messages"][1]
    assert assistant["thinking_blocks"] == BLOCKS
    assert "extra_content" not in assistant["tool_calls"][0]
    assert assistant["tool_calls"][1]["extra_content"] == {"google": {"thought_signature": GOOGLE_SIG}}
    # Gemini CLI on Claude: the signed thinking goes back first and thinking stays on in the tool loop.
    claude = anthropic_channel.request({**out, "reasoning_effort": "medium"}, "claude-sonnet-4-5")
    assert claude["messages"][1]["content"][0] == {"type": "thinking", **BLOCKS[0]} and claude["thinking"]["type"] == "enabled"


# ---- answer --------------------------------------------------------------------------------

THINKING = {"generationConfig": {"thinkingConfig": {"includeThoughts": True}}}


def test_answer_with_thoughts_text_and_calls() -> None:
    answer = completion({"content": "Checking.", "reasoning_content": "Two calls.", "thinking_blocks": BLOCKS, "tool_calls": [
        {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
        {"id": "toolu_02", "type": "function", "function": {"name": "get_time", "arguments": ""}},
    ]}, "tool_calls", USAGE["usage"])
    out = gemini_client.response(answer, "claude-sonnet-4-5", body(**THINKING))
    assert out["candidates"][0]["content"]["parts"] == [
        {"text": "Two calls.", "thought": True},
        {"text": "Checking."},
        {"functionCall": {"id": "toolu_01", "name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": pack_thinking(BLOCKS)},
        {"functionCall": {"id": "toolu_02", "name": "get_time", "args": {}}},
    ]
    read = sdk_client(orjson.dumps(out), "application/json").models.generate_content(model="claude-sonnet-4-5", contents="Hi")
    assert read.text == "Checking." and read.candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    assert [(c.id, c.name, c.args) for c in read.function_calls] == [("toolu_01", "get_weather", {"city": "Oslo"}), ("toolu_02", "get_time", {})]  # type: ignore[union-attr]
    assert read.usage_metadata.model_dump(exclude_none=True) == {  # type: ignore[union-attr]
        "prompt_token_count": 120, "candidates_token_count": 15, "thoughts_token_count": 25, "total_token_count": 160,
        "cached_content_token_count": 100}
    assert read.model_version == "claude-sonnet-4-5" and read.response_id == "B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    # Without includeThoughts, Gemini shows no thoughts.
    assert gemini_client.response(answer, "m", body())["candidates"][0]["content"]["parts"][0] == {"text": "Checking."}


def test_a_google_signature_stays_on_its_call() -> None:
    answer = completion({"content": None, "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "get_time", "arguments": "{}"},
         "extra_content": {"google": {"thought_signature": GOOGLE_SIG}}}]}, "tool_calls")
    part = gemini_client.response(answer, "m", body())["candidates"][0]["content"]["parts"][0]
    assert part["thoughtSignature"] == GOOGLE_SIG


@pytest.mark.parametrize(
    ("finish", "message", "reason"),
    [("stop", {"content": "Hi"}, "STOP"), ("length", {"content": "Once"}, "MAX_TOKENS"),
     ("tool_calls", {"content": None, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, "STOP"),
     ("content_filter", {"content": None}, "SAFETY"), ("content_filter", {"content": "", "refusal": "I can't."}, "SAFETY")],
)
def test_every_finish_reason(finish: str, message: dict, reason: str) -> None:
    out = gemini_client.response(completion(message, finish), "m", body())
    types.GenerateContentResponse.model_validate(out)
    assert out["candidates"][0]["finishReason"] == reason
    assert all(part.get("text") != "" for part in out["candidates"][0]["content"]["parts"])


def test_error_body_raises() -> None:
    with pytest.raises(ProxyError) as err:
        gemini_client.response({"error": {"message": "The server is overloaded", "type": "server_error", "code": "overloaded"}}, "m", body())
    assert err.value.status == 503


# ---- stream --------------------------------------------------------------------------------

def fragments(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def interleaved(size: int) -> list[dict]:
    weather, clock = '{"city": "Zürich"}', '{"tz": "CET"}'
    chunks = [chunk(role="assistant", content=""), chunk(reasoning_content="Both "), chunk(reasoning_content="at once."),
              chunk(content="Checking ☀️ "), chunk(content="now."),
              chunk(tool_calls=[call(0, "", "call_w", "get_weather")]), chunk(tool_calls=[call(1, "", "call_t", "get_time")])]
    a, b = fragments(weather, size), fragments(clock, size)
    for i in range(max(len(a), len(b))):
        chunks += [chunk(tool_calls=[call(0, a[i])])] if i < len(a) else []
        chunks += [chunk(tool_calls=[call(1, b[i])])] if i < len(b) else []
    return chunks + [chunk("tool_calls"), USAGE]


@pytest.mark.parametrize("size", [1, 4, 1000])
def test_stream_with_interleaved_calls(size: int) -> None:
    events = run(interleaved(size), body(**THINKING))
    read = sdk_stream(events)
    parts = [part for event in read for part in event.candidates[0].content.parts or []]  # type: ignore[index, union-attr]
    assert "".join(p.text for p in parts if p.thought) == "Both at once."  # type: ignore[misc]
    assert "".join(p.text for p in parts if p.text and not p.thought) == "Checking ☀️ now."
    calls = [p.function_call for p in parts if p.function_call]
    assert [(c.id, c.name, c.args) for c in calls] == [("call_w", "get_weather", {"city": "Zürich"}), ("call_t", "get_time", {"tz": "CET"})]  # type: ignore[union-attr]
    last = read[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    assert last.usage_metadata.total_token_count == 160 and last.usage_metadata.thoughts_token_count == 25  # type: ignore[union-attr]
    assert last.response_id == "B9MBs8CjcvOU2jLn4n570S5qMJKcT" and last.model_version == "gpt-4o"
    # A call goes out once whole, never in pieces, and never before an earlier one.
    assert all(len(e["candidates"][0]["content"]["parts"]) for e in events[:-1])


def test_a_call_goes_out_as_soon_as_it_is_whole() -> None:
    translator = gemini_client_stream.stream(body(), "m")
    assert translator.feed(chunk(tool_calls=[call(0, '{"city":', "call_1", "get_weather")])) == []
    out = translator.feed(chunk(tool_calls=[call(0, ' "Oslo"}')]))
    assert out[0]["candidates"][0]["content"]["parts"] == [{"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Oslo"}}}]
    assert translator.feed(chunk(tool_calls=[call(0, "  ")])) == []


@pytest.mark.parametrize(
    ("chunks", "reason", "texts"),
    [
        pytest.param([chunk("stop"), USAGE], "STOP", [], id="empty-answer"),
        pytest.param([], "STOP", [], id="nothing-at-all"),
        pytest.param([chunk(content="Once"), chunk(content=" upon"), chunk("length")], "MAX_TOKENS", ["Once", " upon"], id="length"),
        pytest.param([chunk(content=None), chunk("content_filter")], "SAFETY", [], id="content-filter"),
        pytest.param([chunk(content="Hi")], "STOP", ["Hi"], id="no-finish-reason"),
        pytest.param([chunk(reasoning_content="hidden"), chunk(content="Hi"), chunk("stop")], "STOP", ["Hi"], id="thoughts-not-asked-for"),
        pytest.param([chunk(tool_calls=[call(0, '{"a": ', "c", "f")]), chunk("length")], "MAX_TOKENS", [], id="cut-call"),
    ],
)
def test_stream_endings(chunks: list[dict], reason: str, texts: list[str]) -> None:
    events = run(chunks, body())
    read = sdk_stream(events)
    assert read[-1].candidates[0].finish_reason == getattr(types.FinishReason, reason)  # type: ignore[index]
    assert [p.text for e in read for p in e.candidates[0].content.parts or [] if p.text] == texts  # type: ignore[index, union-attr]


def test_calls_that_share_one_index_stay_apart() -> None:
    chunks = [chunk(tool_calls=[call(0, '{"city": "A"}', "call_a", "get_weather")]),
              chunk(tool_calls=[call(0, '{"city": "B"}', "call_b", "get_weather")]), chunk("tool_calls")]
    calls = [p["functionCall"] for e in run(chunks, body()) for p in e["candidates"][0]["content"]["parts"]]
    assert [(c["id"], c["args"]) for c in calls] == [("call_a", {"city": "A"}), ("call_b", {"city": "B"})]


def test_gemini_cli_on_claude_keeps_thinking_through_a_tool_loop() -> None:
    """Anthropic events -> chat chunks (existing module) -> Gemini events -> the next request."""
    anthropic_events = [
        {"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude", "content": [],
                                              "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 50, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": BLOCKS[0]["thinking"]}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": BLOCKS[0]["signature"]}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city": "Oslo"}'}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 30}},
        {"type": "message_stop"},
    ]
    first = body(user({"text": "Weather in Oslo?"}), tools=TOOLS, **THINKING)
    chat = gemini_client.request(first, "claude-sonnet-4-5", stream=True)
    to_chat = anthropic_channel_stream.stream(chat, "claude-sonnet-4-5")
    chunks = [c for event in anthropic_events for c in to_chat.feed(event)] + to_chat.finish()
    read = sdk_stream(run(chunks, first))
    # What Gemini CLI keeps of the turn: every part but the thoughts, signatures included.
    kept = [p.model_dump(mode="json", by_alias=True, exclude_none=True) for e in read for p in e.candidates[0].content.parts or [] if not p.thought]  # type: ignore[index, union-attr]
    assert read[-1].usage_metadata.prompt_token_count == 50  # type: ignore[union-attr]
    follow = body(user({"text": "Weather in Oslo?"}), model(*kept),
                  user({"functionResponse": {"id": "toolu_01", "name": "get_weather", "response": {"output": "4C"}}}), tools=TOOLS, **THINKING)
    chat = gemini_client.request(follow, "claude-sonnet-4-5")
    assert chat["messages"][1]["thinking_blocks"] == BLOCKS and chat["messages"][2]["tool_call_id"] == "toolu_01"
    claude = anthropic_channel.request({**chat, "reasoning_effort": "medium"}, "claude-sonnet-4-5")
    assert [block["type"] for block in claude["messages"][1]["content"]] == ["thinking", "tool_use"]


def test_stream_error_chunk_raises() -> None:
    translator = gemini_client_stream.stream(body(), "m")
    translator.feed(chunk(content="Hi"))
    with pytest.raises(ProxyError) as err:
        translator.feed({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})
    assert err.value.status == 429


# ---- any type in any field -----------------------------------------------------------------

EVERYTHING = body(
    user({"text": "a"}, {"inlineData": {"mimeType": "image/png", "data": "AA"}}, {"fileData": {"fileUri": "https://x/a.png", "mimeType": "image/png"}}),
    model({"text": "t", "thought": True}, {"text": "x"},
          {"functionCall": {"id": "i", "name": "get_weather", "args": {"a": 1}}, "thoughtSignature": pack_thinking(BLOCKS)}),
    user({"functionResponse": {"id": "i", "name": "get_weather", "response": {"output": "o"},
                               "parts": [{"inlineData": {"mimeType": "image/png", "data": "AA"}}]}}),
    systemInstruction={"parts": [{"text": "s"}]}, tools=TOOLS,
    toolConfig={"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
    generationConfig={"maxOutputTokens": 5, "temperature": 1, "stopSequences": ["a"], "responseMimeType": "application/json",
                      "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "STRING", "nullable": True}}, "anyOf": [{"type": "STRING"}]},
                      "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 100, "thinkingLevel": "LOW"}})


def test_no_type_in_any_field_of_a_request_is_a_crash() -> None:
    for path, changed in variants(EVERYTHING):
        try:
            gemini_client.request(changed, "m")  # type: ignore[arg-type]
        except ProxyError as err:
            assert err.status == 400, path


def test_no_type_in_any_field_of_an_answer_or_chunk_is_a_crash() -> None:
    answer = completion({"content": "x", "reasoning_content": "r", "thinking_blocks": BLOCKS, "refusal": "no", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}, "extra_content": {"google": {"thought_signature": "s"}}}]},
        "tool_calls", USAGE["usage"])
    for path, changed in variants(answer):
        try:
            gemini_client.response(changed, "m", EVERYTHING)  # type: ignore[arg-type]
        except ProxyError:
            pass
    for path, chunks in variants([*interleaved(5)[:10], USAGE], depth=2):
        translator = gemini_client_stream.stream(EVERYTHING, "m")
        try:
            for c in chunks:  # type: ignore[union-attr]
                translator.feed(c)
        except ProxyError:
            pass
        translator.finish()
