"""OpenAI chat client -> Gemini channel: request, answer and stream translation."""

from __future__ import annotations

import orjson
import pytest
from google.genai import types
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from relay import sse
from relay.errors import ProxyError
from translations import pair
from relay.dialects.gemini_channel import SIGNATURE_SEP, SKIP_SIGNATURE

T = pair("openai", "gemini")
SIG = "CiQBVKhc7+Lw/Rjz0sw1PvSqYQfpMXLHZ8/eKqtNRg5G8hLqVbcSLwGt5xE="
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                   "properties": {"city": {"type": ["string", "null"]}}, "required": ["city"], "additionalProperties": False},
}}


def body(*messages: dict, **fields: object) -> dict:
    return {"model": "gemini", "messages": list(messages) or [{"role": "user", "content": "Hi"}], **fields}


def user(content: object) -> dict:
    return {"role": "user", "content": content}


def valid_request(out: dict) -> dict:
    """Every part of the request must fit the google-genai types (which forbid unknown fields)."""
    for content in out["contents"] + ([out["systemInstruction"]] if "systemInstruction" in out else []):
        types.Content.model_validate(content)
    types.GenerationConfig.model_validate(out.get("generationConfig") or {})
    for tool in out.get("tools") or []:
        types.Tool.model_validate(tool)
    types.ToolConfig.model_validate(out.get("toolConfig") or {})
    return out


def reassemble(chunks: list[dict]) -> ChatCompletion:
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    return state.get_final_completion()


# ---- request -------------------------------------------------------------------------------

def test_conversation_with_media_tools_and_results() -> None:
    out = valid_request(T.request(body(
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Metric units."}]},
        user([
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/photos/cat.PNG?size=2"}},
            {"type": "image_url", "image_url": "https://example.com/photo"},
            {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
        ]),
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 4, "sky": "snow"}'},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "14:02"}]},
        user("And tomorrow?"),
    ), "gemini-2.5-flash"))
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Metric units."}]}
    assert out["contents"] == [
        {"role": "user", "parts": [
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
            {"fileData": {"fileUri": "https://example.com/photos/cat.PNG?size=2", "mimeType": "image/png"}},
            {"fileData": {"fileUri": "https://example.com/photo", "mimeType": "image/jpeg"}},
            {"inlineData": {"mimeType": "audio/mp3", "data": "SUQz"}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}},
        ]},
        {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
            {"functionCall": {"name": "get_time", "args": {}}},
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 4, "sky": "snow"}}},
            {"functionResponse": {"name": "get_time", "response": {"output": "14:02"}}},
            {"text": "And tomorrow?"},
        ]},
    ]


@pytest.mark.parametrize(
    ("fields", "model", "config"),
    [
        pytest.param({"max_tokens": 100, "temperature": 1.7, "top_p": 0.9, "seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.1},
                     "gemini-2.5-flash",
                     {"maxOutputTokens": 100, "temperature": 1.7, "topP": 0.9, "seed": 7, "presencePenalty": 0.5, "frequencyPenalty": 0.1},
                     id="sampling"),
        pytest.param({"max_completion_tokens": 50, "max_tokens": 10, "stop": ["", " ", "a", "b", "c", "d", "e", "f"]}, "gemini-2.5-flash",
                     {"maxOutputTokens": 50, "stopSequences": ["a", "b", "c", "d", "e"]}, id="limits-and-stops"),
        pytest.param({"response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER["function"]["parameters"]}}},
                     "gemini-2.5-flash",
                     {"responseMimeType": "application/json", "responseJsonSchema": {k: v for k, v in WEATHER["function"]["parameters"].items() if k != "$schema"}},
                     id="json-schema"),
        pytest.param({"response_format": {"type": "json_object"}}, "gemini-2.5-flash", {"responseMimeType": "application/json"}, id="json-object"),
        pytest.param({"reasoning_effort": "medium"}, "gemini-2.5-flash",
                     {"thinkingConfig": {"thinkingBudget": 8192, "includeThoughts": True}}, id="effort-budget"),
        pytest.param({"reasoning_effort": "minimal"}, "gemini-3-pro-preview",
                     {"thinkingConfig": {"thinkingLevel": "low", "includeThoughts": True}}, id="effort-level-low"),
        pytest.param({"reasoning_effort": "high"}, "gemini-flash-latest",
                     {"thinkingConfig": {"thinkingLevel": "high", "includeThoughts": True}}, id="effort-level-unversioned"),
        pytest.param({"reasoning_effort": "none"}, "gemini-2.5-flash", {"thinkingConfig": {"thinkingBudget": 0}}, id="none-flash"),
        pytest.param({"reasoning_effort": "none"}, "gemini-2.5-pro", {}, id="none-pro"),
        pytest.param({"reasoning_effort": "none"}, "gemini-3-flash-preview", {}, id="none-gemini-3"),
        pytest.param({"thinking": {"type": "enabled", "budget_tokens": 2000}}, "gemini-2.5-flash",
                     {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 2000}}, id="deepseek-style"),
    ],
)
def test_generation_config(fields: dict, model: str, config: dict) -> None:
    out = valid_request(T.request(body(**fields), model))
    assert out.get("generationConfig", {}) == config


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
        ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "get_weather"}}]}},
         {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
def test_tools_and_tool_choice(choice: object, config: dict) -> None:
    no_params = {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
    out = valid_request(T.request(body(tools=[WEATHER, no_params], tool_choice=choice), "gemini-2.5-flash"))
    assert out["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather in a city",
         "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": ["string", "null"]}}, "required": ["city"], "additionalProperties": False}},
        {"name": "now"},
    ]}]
    assert out["toolConfig"] == {"functionCallingConfig": config}


def test_empty_text_never_sent_and_turns_merged() -> None:
    out = valid_request(T.request(body(user(""), user([{"type": "text", "text": ""}]), user("Hi"), user("again"),
                                       {"role": "assistant", "content": None}), "gemini-2.5-flash"))
    assert out["contents"] == [{"role": "user", "parts": [{"text": "Hi"}, {"text": "again"}]}]


@pytest.mark.parametrize(
    ("client", "param"),
    [
        pytest.param(body(n=3), "n", id="n"),
        pytest.param(body({"role": "tool", "tool_call_id": "nope", "content": "x"}), "messages[0].tool_call_id", id="orphan-result"),
        pytest.param(body(user([{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}])), "messages[0].content[0]", id="file-url"),
        pytest.param(body(user([{"type": "file", "file": {"file_id": "file-1"}}])), "messages[0].content[0]", id="file-id"),
        pytest.param(body({"role": "function", "content": "x"}), "messages[0].role", id="function-role"),
        pytest.param(body(tools=[{"type": "custom", "custom": {"name": "x"}}]), "tools[0].type", id="custom-tool"),
        pytest.param(body({"role": "system", "content": "only rules"}), "messages", id="no-contents"),
    ],
)
def test_request_refused(client: dict, param: str) -> None:
    with pytest.raises(ProxyError) as err:
        T.request(client, "gemini-2.5-flash")
    assert err.value.status == 400 and err.value.param == param


def test_endpoint() -> None:
    assert T.endpoint(body(stream=True)) == "streamGenerateContent"
    assert T.endpoint(body()) == "generateContent"


# ---- answer --------------------------------------------------------------------------------

def gemini_answer(parts: list[dict], finish: str = "STOP", **usage: int) -> dict:
    payload = {
        "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}],
        "usageMetadata": {"promptTokenCount": 70, "candidatesTokenCount": 30, "totalTokenCount": 180, "thoughtsTokenCount": 80,
                          "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 70}], **usage},
        "modelVersion": "gemini-3-pro-preview",
        "responseId": "RD5UaKXzI8LHz7IPo4TWsAc",
    }
    types.GenerateContentResponse.model_validate(payload)
    return payload


PARALLEL_CALLS = [
    {"text": "**Checking two cities**\nI will call the tool twice.", "thought": True},
    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIG},
    {"functionCall": {"name": "get_weather", "args": {"city": "London"}}},
]


def test_thought_signature_round_trip() -> None:
    answer = T.response(gemini_answer(PARALLEL_CALLS, cachedContentTokenCount=20), "gemini-pro")
    ChatCompletion.model_validate(answer)
    msg = answer["choices"][0]["message"]
    assert answer["choices"][0]["finish_reason"] == "tool_calls"  # Gemini itself says STOP
    assert msg["content"] is None and msg["reasoning_content"].startswith("**Checking two cities**")
    first, second = msg["tool_calls"]
    assert first["extra_content"] == {"google": {"thought_signature": SIG}} and "extra_content" not in second
    assert SIGNATURE_SEP in first["id"] and SIGNATURE_SEP not in second["id"]
    assert set(first["id"]) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
    assert answer["usage"] == {"prompt_tokens": 70, "completion_tokens": 110, "total_tokens": 180,
                               "prompt_tokens_details": {"cached_tokens": 20}, "completion_tokens_details": {"reasoning_tokens": 80}}

    # The client sends the calls back; one kind of client keeps extra_content, another only the id.
    for calls in (msg["tool_calls"], [{k: v for k, v in c.items() if k != "extra_content"} for c in msg["tool_calls"]]):
        history = body(
            user("Weather in Paris and London?"),
            {"role": "assistant", "content": None, "tool_calls": calls},
            *({"role": "tool", "tool_call_id": c["id"], "content": "sunny"} for c in calls),
        )
        out = valid_request(T.request(history, "gemini-3-pro-preview"))
        assert out["contents"][1]["parts"] == [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIG},
            {"functionCall": {"name": "get_weather", "args": {"city": "London"}}},
        ]
        assert [p["functionResponse"]["name"] for p in out["contents"][2]["parts"]] == ["get_weather", "get_weather"]


def test_history_without_signatures_on_gemini_3() -> None:
    calls = [{"id": "toolu_01", "type": "function", "function": {"name": "f", "arguments": "{}"}},
             {"id": "toolu_02", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    history = body(user("go"), {"role": "assistant", "tool_calls": calls},
                   {"role": "tool", "tool_call_id": "toolu_01", "content": "a"}, {"role": "tool", "tool_call_id": "toolu_02", "content": "b"})
    parts = T.request(history, "gemini-3-flash-preview")["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in parts] == [SKIP_SIGNATURE, None]
    assert all("thoughtSignature" not in p for p in T.request(history, "gemini-2.5-flash")["contents"][1]["parts"])


@pytest.mark.parametrize(
    ("finish", "expected"),
    [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
     ("PROHIBITED_CONTENT", "content_filter"), ("BLOCKLIST", "content_filter"), ("SPII", "content_filter"),
     ("IMAGE_SAFETY", "content_filter"), ("LANGUAGE", "stop"), ("OTHER", "stop"), ("MALFORMED_FUNCTION_CALL", "stop"),
     ("FINISH_REASON_UNSPECIFIED", "stop")],
)
def test_every_finish_reason(finish: str, expected: str) -> None:
    answer = T.response(gemini_answer([{"text": "Hi"}], finish), "m")
    assert answer["choices"][0]["finish_reason"] == expected
    ChatCompletion.model_validate(answer)


def test_blocked_prompt_is_a_well_formed_answer() -> None:
    payload = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
               "modelVersion": "gemini-2.5-flash", "responseId": "x1"}
    types.GenerateContentResponse.model_validate(payload)
    answer = T.response(payload, "m")
    ChatCompletion.model_validate(answer)
    assert answer["choices"][0]["finish_reason"] == "content_filter" and answer["choices"][0]["message"]["content"] is None
    assert answer["usage"]["prompt_tokens"] == 9 and answer["usage"]["completion_tokens"] == 0


def test_error_body_raises() -> None:
    with pytest.raises(ProxyError) as err:
        T.response({"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}, "m")
    assert err.value.status == 429


# ---- stream --------------------------------------------------------------------------------

def gemini_sse(*events: dict) -> bytes:
    for event in events:
        types.GenerateContentResponse.model_validate(event)
    return b"".join(b"data: " + orjson.dumps(event) + b"\r\n\r\n" for event in events)


def event(parts: list[dict], finish: str | None = None, **usage: int) -> dict:
    candidate: dict = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": {"promptTokenCount": 40, "totalTokenCount": 40, **usage},
            "modelVersion": "gemini-2.5-flash", "responseId": "mQ1UaOmPJ5qW"}


STREAM = gemini_sse(
    event([{"text": "**Planning** the 查询", "thought": True}]),
    event([{"text": "Sure — checking Zürich "}]),
    event([{"text": "and the time."}]),
    event([{"functionCall": {"name": "get_weather", "args": {"city": "Zürich"}}, "thoughtSignature": SIG}]),
    event([{"functionCall": {"name": "get_time", "args": {}}}], "STOP",
          candidatesTokenCount=25, thoughtsTokenCount=35, cachedContentTokenCount=8, totalTokenCount=100),
)


def translate(raw: bytes, translator: object, step: int) -> list[dict]:
    decoder, out = sse.Decoder(), []
    for piece in (raw[i : i + step] for i in range(0, len(raw), step)):
        for block in decoder.feed(piece):
            if (parsed := sse.parse(block)) is not None:
                out += translator.feed(orjson.loads(parsed.data))  # type: ignore[attr-defined]
    for block in decoder.flush():
        if (parsed := sse.parse(block)) is not None:
            out += translator.feed(orjson.loads(parsed.data))  # type: ignore[attr-defined]
    return out + translator.finish()  # type: ignore[attr-defined]


def strip_ids(chunks: list[dict]) -> list[dict]:
    """The chunks without what differs between two runs: call ids (random) and `created` (the clock)."""
    text = orjson.dumps([{**chunk, "created": 0} for chunk in chunks]).decode()
    for call_id in {c["id"] for chunk in chunks for choice in chunk["choices"] for c in choice["delta"].get("tool_calls") or []}:
        text = text.replace(call_id, "ID")
    return orjson.loads(text)


@pytest.mark.parametrize("step", [1, 3, 7, len(STREAM)])
def test_stream_at_any_split(step: int) -> None:
    chunks = translate(STREAM, T.stream(body(stream_options={"include_usage": True}), "gemini-flash"), step)
    assert strip_ids(chunks) == strip_ids(translate(STREAM, T.stream(body(stream_options={"include_usage": True}), "gemini-flash"), 10**6))
    final = reassemble(chunks)
    msg = final.choices[0].message
    assert final.model == "gemini-flash" and final.id == "chatcmpl-mQ1UaOmPJ5qW"
    assert msg.content == "Sure — checking Zürich and the time."
    assert msg.reasoning_content == "**Planning** the 查询"  # type: ignore[attr-defined]
    calls = msg.tool_calls or []
    assert [(c.index, c.function.name, c.function.arguments) for c in calls] == [(0, "get_weather", '{"city":"Zürich"}'), (1, "get_time", "{}")]
    assert calls[0].id.startswith("call_") and SIGNATURE_SEP in calls[0].id and SIGNATURE_SEP not in calls[1].id
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage.model_dump(exclude_none=True) == {  # type: ignore[union-attr]
        "prompt_tokens": 40, "completion_tokens": 60, "total_tokens": 100,
        "prompt_tokens_details": {"cached_tokens": 8}, "completion_tokens_details": {"reasoning_tokens": 35},
    }


@pytest.mark.parametrize(("finish", "expected"), [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("OTHER", "stop")])
def test_stream_finish_reasons(finish: str, expected: str) -> None:
    chunks = translate(gemini_sse(event([{"text": "Hi"}]), event([], finish)), T.stream(body(), "m"), 9)
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, expected]


def test_stream_blocked_prompt_and_missing_finish() -> None:
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}}
    chunks = translate(gemini_sse(blocked), T.stream(body(stream_options={"include_usage": True}), "m"), 4)
    assert chunks[-2]["choices"][0]["finish_reason"] == "content_filter" and chunks[-1]["usage"]["prompt_tokens"] == 5
    translator = T.stream(body(), "m")
    translator.feed(event([{"functionCall": {"name": "f", "args": {"a": 1}}}]))
    assert translator.finish()[-1]["choices"][0]["finish_reason"] == "tool_calls" and translator.finish() == []


def test_stream_error_raises() -> None:
    translator = T.stream(body(), "m")
    with pytest.raises(ProxyError) as err:
        translator.feed({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})
    assert err.value.status == 503
