"""OpenAI chat client -> Anthropic channel: request, answer and stream translation."""

from __future__ import annotations

import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from relay import sse
from relay.errors import ProxyError
from translations import pair
from relay.dialects.anthropic_channel import JSON_TOOL

T = pair("openai", "anthropic")
SONNET = "claude-sonnet-4-5-20250929"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def body(*messages: dict, **fields: object) -> dict:
    return {"model": "gpt-4o", "messages": list(messages) or [{"role": "user", "content": "Hi"}], **fields}


def user(content: object) -> dict:
    return {"role": "user", "content": content}


def translate(events_or_raw: bytes, translator: object, step: int) -> list[dict]:
    """Decode raw SSE bytes cut every `step` bytes and feed each event as soon as it is whole."""
    decoder, out = sse.Decoder(), []
    chunks = [events_or_raw[i : i + step] for i in range(0, len(events_or_raw), step)]
    for piece in chunks:
        for block in decoder.feed(piece):
            if (event := sse.parse(block)) is not None:
                out += translator.feed(orjson.loads(event.data))  # type: ignore[attr-defined]
    return out + translator.finish()  # type: ignore[attr-defined]


def same(chunks: list[dict]) -> list[dict]:
    return [{**chunk, "created": 0} for chunk in chunks]  # the clock may tick between two runs


def reassemble(chunks: list[dict]) -> ChatCompletion:
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    return state.get_final_completion()


# ---- request -------------------------------------------------------------------------------

REQUESTS = [
    pytest.param(
        body({"role": "system", "content": "Be brief."}, {"role": "developer", "content": [{"type": "text", "text": "Use SI units."}]}, user("Hi")),
        SONNET,
        {"system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use SI units."}],
         "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}], "max_tokens": 8192},
        id="system-and-developer",
    ),
    pytest.param(body(temperature=1.6, top_p=0.5), SONNET, {"temperature": 1.0, "top_p": None}, id="temperature-clamped-top_p-dropped"),
    pytest.param(body(top_p=0.5), SONNET, {"top_p": 0.5}, id="top_p-alone"),
    pytest.param(body(temperature=0.2), "claude-opus-4-7", {"temperature": None}, id="opus-4-7-no-sampling"),
    pytest.param(body(stop=["", "  ", "END"]), SONNET, {"stop_sequences": ["END"]}, id="blank-stops-dropped"),
    pytest.param(body(stop="   "), SONNET, {"stop_sequences": None}, id="blank-stop-string"),
    pytest.param(body(max_completion_tokens=300, max_tokens=100), SONNET, {"max_tokens": 300}, id="max_completion_tokens"),
    pytest.param(body(max_tokens=100), SONNET, {"max_tokens": 100}, id="max_tokens"),
    pytest.param(body(), "claude-3-haiku-20240307", {"max_tokens": 4096}, id="claude-3-default"),
    pytest.param(body(user="u-42", stream=True), SONNET, {"metadata": {"user_id": "u-42"}, "stream": True}, id="user-stream"),
    pytest.param(
        body(reasoning_effort="low", temperature=0.5),
        SONNET,
        {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 8192 + 2048, "temperature": None},
        id="effort-budget",
    ),
    pytest.param(
        body(reasoning_effort="minimal", max_tokens=500),
        "claude-3-7-sonnet-20250219",
        {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 1524},
        id="budget-above-max_tokens",
    ),
    pytest.param(
        body(reasoning_effort="high", max_completion_tokens=40000),
        "claude-opus-4-1-20250805",
        {"thinking": {"type": "enabled", "budget_tokens": 16384}, "max_tokens": 40000},
        id="budget-inside-limit",
    ),
    pytest.param(
        body(reasoning_effort="medium"),
        "claude-sonnet-4-6",
        {"thinking": {"type": "adaptive", "display": "summarized"}, "output_config": {"effort": "medium"}},
        id="adaptive-4-6",
    ),
    pytest.param(
        body(reasoning_effort="minimal"),
        "claude-opus-4-7",
        {"thinking": {"type": "adaptive", "display": "summarized"}, "output_config": {"effort": "low"}},
        id="adaptive-minimal",
    ),
    pytest.param(body(reasoning_effort="none"), SONNET, {"thinking": None}, id="effort-none"),
    pytest.param(body(reasoning_effort="high"), "claude-3-5-sonnet-20241022", {"thinking": None}, id="cannot-think"),
    pytest.param(
        body(thinking={"type": "enabled"}),
        SONNET,
        {"thinking": {"type": "enabled", "budget_tokens": 8192}},
        id="deepseek-style-thinking",
    ),
    pytest.param(
        body(thinking={"type": "enabled", "budget_tokens": 3000}),
        "claude-opus-4-6",
        {"thinking": {"type": "adaptive", "display": "summarized"}, "output_config": {"effort": "medium"}},
        id="budget-to-adaptive-effort",
    ),
    pytest.param(
        body(tools=[WEATHER], tool_choice="required", parallel_tool_calls=False),
        SONNET,
        {"tool_choice": {"type": "any", "disable_parallel_tool_use": True},
         "tools": [{"name": "get_weather", "description": "Current weather in a city", "input_schema": WEATHER["function"]["parameters"]}]},
        id="tools-required",
    ),
    pytest.param(body(tools=[WEATHER], tool_choice="auto"), SONNET, {"tool_choice": {"type": "auto"}}, id="tool-choice-auto"),
    pytest.param(body(tools=[WEATHER], tool_choice="none"), SONNET, {"tool_choice": {"type": "none"}}, id="tool-choice-none"),
    pytest.param(
        body(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "get_weather"}}),
        SONNET,
        {"tool_choice": {"type": "tool", "name": "get_weather"}},
        id="tool-choice-named",
    ),
    pytest.param(body(tools=[WEATHER], parallel_tool_calls=False), SONNET, {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}, id="parallel-off"),
    pytest.param(
        body(tools=[WEATHER], tool_choice="required", reasoning_effort="high"),
        SONNET,
        {"thinking": None, "tool_choice": {"type": "any"}},
        id="forced-tool-beats-thinking",
    ),
    pytest.param(
        body(tools=[{"type": "function", "function": {"name": "now"}}]),
        SONNET,
        {"tools": [{"name": "now", "input_schema": {"properties": {}, "type": "object"}}]},
        id="tool-without-parameters",
    ),
]


@pytest.mark.parametrize(("client", "model", "expected"), REQUESTS)
def test_request(client: dict, model: str, expected: dict) -> None:
    out = T.request(client, model)
    assert out["model"] == model
    for key, value in expected.items():
        assert out.get(key) == value, key


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"], "additionalProperties": False}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True}}


@pytest.mark.parametrize(
    ("fields", "model", "expected"),
    [
        pytest.param({"response_format": JSON_SCHEMA}, SONNET,
                     {"tools": [JSON_TOOL], "tool_choice": {"type": "tool", "name": JSON_TOOL}, "schema": SCHEMA}, id="forced-tool"),
        pytest.param({"response_format": {"type": "json_object"}}, SONNET,
                     {"tools": [JSON_TOOL], "tool_choice": {"type": "tool", "name": JSON_TOOL}, "schema": {"type": "object"}}, id="json-object"),
        pytest.param({"response_format": JSON_SCHEMA, "tools": [WEATHER]}, SONNET,
                     {"tools": ["get_weather", JSON_TOOL], "tool_choice": {"type": "any"}, "schema": SCHEMA}, id="with-client-tools"),
        pytest.param({"response_format": JSON_SCHEMA, "reasoning_effort": "low"}, SONNET,
                     {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}, id="thinking-native"),
        pytest.param({"response_format": JSON_SCHEMA, "reasoning_effort": "low"}, "claude-3-7-sonnet-20250219",
                     {"system_says": "must match this JSON Schema"}, id="thinking-old-model-instruction"),
        pytest.param({"response_format": JSON_SCHEMA}, "claude-opus-5",
                     {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}, id="thinks-by-default"),
    ],
)
def test_json_output(fields: dict, model: str, expected: dict) -> None:
    out = T.request(body(**fields), model)
    if "tools" in expected:
        assert [tool["name"] for tool in out["tools"]] == expected["tools"]
        assert out["tool_choice"] == expected["tool_choice"]
        assert out["tools"][-1]["input_schema"] == expected["schema"]
    if "output_config" in expected:
        assert out["output_config"]["format"] == expected["output_config"]["format"]
        assert "tools" not in out
    if "system_says" in expected:
        assert expected["system_says"] in out["system"][-1]["text"]


def test_history_with_tools_images_and_empty_text() -> None:
    client = body(
        user([{"type": "text", "text": "Compare"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
              {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}}]),
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "functions.get_weather:1", "type": "function", "function": {"name": "get_weather", "arguments": "{broken"}},
        ]},
        {"role": "tool", "tool_call_id": "call_a", "content": "18°C"},
        {"role": "tool", "tool_call_id": "functions.get_weather:1", "content": [{"type": "text", "text": ""}]},
        user(""),
        user([{"type": "text", "text": " "}, {"type": "text", "text": "Which is warmer?", "cache_control": {"type": "ephemeral"}}]),
        {"role": "assistant", "content": "The warmer one is "},
    )
    out = T.request(client, SONNET)
    assert out["messages"] == [
        {"role": "user", "content": [
            {"type": "text", "text": "Compare"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        ]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "functions_get_weather_1", "name": "get_weather", "input": {"_raw": "{broken"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_a", "content": "18°C"},
            {"type": "tool_result", "tool_use_id": "functions_get_weather_1"},
            {"type": "text", "text": "Which is warmer?", "cache_control": {"type": "ephemeral"}},
        ]},
        {"role": "assistant", "content": [{"type": "text", "text": "The warmer one is"}]},
    ]


def test_no_empty_text_block_ever() -> None:
    client = body(user("Hi"), {"role": "assistant", "content": [{"type": "text", "text": ""}]}, user([]), user("again"))
    out = T.request(client, SONNET)
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "again"}]}]
    with pytest.raises(ProxyError) as err:
        T.request(body(user(""), {"role": "assistant", "content": "  "}), SONNET)
    assert err.value.status == 400 and err.value.param == "messages"


def test_thinking_blocks_go_back_first_and_keep_thinking_on() -> None:
    signed = {"type": "thinking", "thinking": "Call the tool.", "signature": "EqQBCgIYAhIM1gbcDa9"}
    client = body(
        user("Weather in Paris?"),
        {"role": "assistant", "content": "Let me check.", "reasoning_content": "Call the tool.",
         "thinking_blocks": [signed, {"type": "redacted_thinking", "data": "EmwKAhgB"}, {"type": "thinking", "thinking": "unsigned"}],
         "tool_calls": [{"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_01", "content": "sunny"},
        reasoning_effort="low",
    )
    out = T.request(client, SONNET)
    assert [block["type"] for block in out["messages"][1]["content"]] == ["thinking", "redacted_thinking", "text", "tool_use"]
    assert out["messages"][1]["content"][0] == signed
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_thinking_off_when_tool_turn_lacks_its_thinking() -> None:
    client = body(
        user("Weather?"),
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        reasoning_effort="high",
        temperature=0.4,
    )
    out = T.request(client, SONNET)
    assert "thinking" not in out and out["temperature"] == 0.4


@pytest.mark.parametrize(
    ("client", "param"),
    [
        pytest.param(body(n=2), "n", id="n"),
        pytest.param(body({"role": "function", "name": "f", "content": "x"}), "messages[0].role", id="function-role"),
        pytest.param(body(user([{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}])), "messages[0].content[0]", id="audio"),
        pytest.param(body(user([{"type": "image_url", "image_url": {"url": "ftp://x/cat.png"}}])), "messages[0].content[0]", id="ftp-image"),
        pytest.param(body(user([{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}])), "messages[0].content[0]", id="bmp"),
        pytest.param(body(user([{"type": "file", "file": {"file_id": "file-abc"}}])), "messages[0].content[0]", id="file-id"),
        pytest.param(body(tools=[{"type": "custom", "custom": {"name": "grammar"}}]), "tools[0].type", id="custom-tool"),
    ],
)
def test_request_refused(client: dict, param: str) -> None:
    with pytest.raises(ProxyError) as err:
        T.request(client, SONNET)
    assert err.value.status == 400 and err.value.param == param
    assert param.split("[")[0] in err.value.message


def test_pdf_and_text_files_become_documents() -> None:
    client = body(user([
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
        {"type": "file", "file": {"filename": "a.txt", "file_data": "data:text/plain;base64,aGVsbG8="}},
    ]))
    assert T.request(client, SONNET)["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello"}},
    ]


# ---- answer --------------------------------------------------------------------------------

def message(content: list[dict], stop_reason: str, **usage: int) -> dict:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": SONNET,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 6, **usage},
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
     ("refusal", "content_filter"), ("pause_turn", "stop"), ("model_context_window_exceeded", "length")],
)
def test_every_stop_reason(stop_reason: str, finish: str) -> None:
    content = [{"type": "text", "text": "Hi"}]
    if stop_reason == "tool_use":
        content.append({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}})
    answer = T.response(message(content, stop_reason), "my-claude")
    assert answer["choices"][0]["finish_reason"] == finish
    ChatCompletion.model_validate(answer)


def test_answer_with_thinking_tools_and_cache_usage() -> None:
    answer = T.response(
        message(
            [
                {"type": "thinking", "thinking": "Two cities, two calls.", "signature": "EqQBCgIYAhIM"},
                {"type": "redacted_thinking", "data": "EmwKAhgB"},
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {}},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
            ],
            "tool_use",
            cache_read_input_tokens=100,
            cache_creation_input_tokens=30,
            output_tokens_details={"thinking_tokens": 4},
        ),
        "gpt-4o",
    )
    msg = answer["choices"][0]["message"]
    assert answer["model"] == "gpt-4o" and answer["object"] == "chat.completion"
    assert msg["content"] == "Checking both." and msg["reasoning_content"] == "Two cities, two calls."
    assert msg["thinking_blocks"] == [
        {"type": "thinking", "thinking": "Two cities, two calls.", "signature": "EqQBCgIYAhIM"},
        {"type": "redacted_thinking", "data": "EmwKAhgB"},
    ]
    assert [(c["id"], c["function"]["arguments"]) for c in msg["tool_calls"]] == [("toolu_a", '{"city":"Oslo"}'), ("toolu_b", "{}")]
    assert answer["usage"] == {
        "prompt_tokens": 142, "completion_tokens": 6, "total_tokens": 148,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 30},
        "completion_tokens_details": {"reasoning_tokens": 4},
    }


def test_json_tool_answer_is_content() -> None:
    answer = T.response(message([{"type": "tool_use", "id": "toolu_1", "name": JSON_TOOL, "input": {"answer": "42"}}], "tool_use"), "m")
    choice = answer["choices"][0]
    assert choice["message"]["content"] == '{"answer":"42"}' and "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


def test_refused_answer_without_content_is_well_formed() -> None:
    answer = T.response(message([], "refusal"), "m")
    assert answer["choices"][0]["message"]["content"] is None
    assert answer["choices"][0]["finish_reason"] == "content_filter"
    ChatCompletion.model_validate(answer)


def test_error_body_raises() -> None:
    with pytest.raises(ProxyError) as err:
        T.response({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "m")
    assert err.value.status == 503


# ---- stream --------------------------------------------------------------------------------

def anthropic_sse(*events: dict) -> bytes:
    return b"".join(sse.encode(orjson.dumps(event), event["type"]) for event in events)


def delta(index: int, **fields: object) -> dict:
    return {"type": "content_block_delta", "index": index, "delta": fields}


START = {"type": "message_start", "message": {
    "id": "msg_01Aq9w938a90dw8q", "type": "message", "role": "assistant", "model": SONNET, "content": [],
    "stop_reason": None, "stop_sequence": None,
    "usage": {"input_tokens": 472, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1200, "output_tokens": 2},
}}
TOOL_STREAM = anthropic_sse(
    START,
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    {"type": "ping"},
    delta(0, type="thinking_delta", thinking="The user wants weather "),
    delta(0, type="thinking_delta", thinking="in 東京 and Oslo."),
    delta(0, type="signature_delta", signature="EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"),
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    delta(1, type="text_delta", text="Let me check the weather in 東京 "),
    delta(1, type="text_delta", text="🌤 and Oslo."),
    {"type": "content_block_stop", "index": 1},
    {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}},
    delta(2, type="input_json_delta", partial_json=""),
    delta(2, type="input_json_delta", partial_json='{"city": "東'),
    delta(2, type="input_json_delta", partial_json='京"}'),
    {"type": "content_block_stop", "index": 2},
    {"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}}},
    {"type": "content_block_stop", "index": 3},
    {"type": "some_future_event", "data": 1},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 89}},
    {"type": "message_stop"},
)


@pytest.mark.parametrize("step", [1, 3, 7, len(TOOL_STREAM)])
def test_stream_reassembles_at_any_split(step: int) -> None:
    chunks = translate(TOOL_STREAM, T.stream(body(stream_options={"include_usage": True}), "gpt-4o"), step)
    whole = translate(TOOL_STREAM, T.stream(body(stream_options={"include_usage": True}), "gpt-4o"), len(TOOL_STREAM))
    assert same(chunks) == same(whole)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    for chunk in chunks:
        assert chunk["model"] == "gpt-4o" and chunk["id"] == "msg_01Aq9w938a90dw8q"
        for call in (chunk["choices"] or [{}])[0].get("delta", {}).get("tool_calls") or []:
            assert call["function"]["arguments"] or "id" in call, "no chunk carries an empty argument fragment"
    final = reassemble(chunks)
    msg = final.choices[0].message
    assert msg.content == "Let me check the weather in 東京 🌤 and Oslo."
    assert msg.reasoning_content == "The user wants weather in 東京 and Oslo."  # type: ignore[attr-defined]
    assert msg.thinking_blocks == [{"index": 0, "type": "thinking", "thinking": "The user wants weather in 東京 and Oslo.",  # type: ignore[attr-defined]
                                    "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}]
    assert [(c.index, c.id, c.function.name, c.function.arguments) for c in msg.tool_calls] == [  # type: ignore[union-attr]
        (0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", '{"city": "東京"}'),
        (1, "toolu_02", "get_time", "{}"),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert chunks[-1]["choices"] == [] and final.usage.model_dump(exclude_none=True) == {  # type: ignore[union-attr]
        "prompt_tokens": 1672, "completion_tokens": 89, "total_tokens": 1761, "prompt_tokens_details": {"cached_tokens": 1200},
    }


def test_stream_usage_only_when_asked() -> None:
    chunks = translate(TOOL_STREAM, T.stream(body(), "gpt-4o"), 64)
    assert all(chunk["choices"] for chunk in chunks) and "usage" not in chunks[-1]


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("refusal", "content_filter"),
     ("model_context_window_exceeded", "length"), ("pause_turn", "stop")],
)
def test_stream_every_stop_reason(stop_reason: str, finish: str) -> None:
    raw = anthropic_sse(
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        delta(0, type="text_delta", text="Hi"),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
    )
    chunks = translate(raw, T.stream(body(), "m"), 5)
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, finish]


def test_stream_json_tool_becomes_content() -> None:
    raw = anthropic_sse(
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_9", "name": JSON_TOOL, "input": {}}},
        delta(0, type="input_json_delta", partial_json=""),
        delta(0, type="input_json_delta", partial_json='{"answer": '),
        delta(0, type="input_json_delta", partial_json='"42"}'),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 9}},
        {"type": "message_stop"},
    )
    final = reassemble(translate(raw, T.stream(body(response_format=JSON_SCHEMA), "m"), 3))
    assert final.choices[0].message.content == '{"answer": "42"}'
    assert not final.choices[0].message.tool_calls and final.choices[0].finish_reason == "stop"


def test_finish_completes_a_stream_that_lost_its_last_events() -> None:
    translator = T.stream(body(stream_options={"include_usage": True}), "m")
    out = translator.feed(START)
    out += translator.feed({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
    out += translator.feed(delta(0, type="thinking_delta", thinking="hmm"))
    out += translator.finish()
    assert translator.finish() == []
    assert out[-2]["choices"][0]["delta"] == {} and out[-2]["choices"][0]["finish_reason"] == "stop"
    assert out[-3]["choices"][0]["delta"]["thinking_blocks"] == [{"type": "thinking", "thinking": "hmm", "signature": "", "index": 0}]
    assert out[-1]["usage"]["prompt_tokens"] == 1672
    assert translator.usage["completion_tokens"] == 2


@pytest.mark.parametrize(
    ("error", "status"),
    [("overloaded_error", 503), ("rate_limit_error", 429), ("api_error", 502)],
)
def test_stream_error_event_raises(error: str, status: int) -> None:
    translator = T.stream(body(), "m")
    translator.feed(START)
    with pytest.raises(ProxyError) as err:
        translator.feed({"type": "error", "error": {"type": error, "message": "Overloaded"}})
    assert err.value.status == status and err.value.message == "Overloaded"
