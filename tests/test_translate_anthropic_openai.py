"""Anthropic messages client (Claude Code) -> OpenAI chat channel: request, answer and stream."""

from __future__ import annotations

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from relay import sse
from relay.errors import ProxyError
from translations import pair

T = pair("anthropic", "openai")
EVENT = TypeAdapter(RawMessageStreamEvent)


def body(*messages: dict, **fields: object) -> dict:
    return {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": list(messages) or [{"role": "user", "content": "Hi"}], **fields}


def translate(raw: bytes, translator: object, step: int) -> list[dict]:
    """Decode OpenAI SSE bytes cut every `step` bytes; [DONE] ends the stream with finish()."""
    decoder, out = sse.Decoder(), []
    for piece in (raw[i : i + step] for i in range(0, len(raw), step)):
        for block in decoder.feed(piece):
            event = sse.parse(block)
            if event is None:
                continue
            if event.data == "[DONE]":
                return out + translator.finish()  # type: ignore[attr-defined]
            out += translator.feed(orjson.loads(event.data))  # type: ignore[attr-defined]
    raise AssertionError("stream had no [DONE]")


def reassemble(events: list[dict]) -> Message:
    snapshot, bufs = None, {}
    for event in events:
        snapshot = accumulate_event(event=EVENT.validate_python(event), current_snapshot=snapshot, json_bufs=bufs)
    return snapshot  # type: ignore[return-value]


def openai_sse(*chunks: dict) -> bytes:
    base = {"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion.chunk", "created": 1741570283, "model": "gpt-4o-2024-08-06"}
    return b"".join(sse.encode(orjson.dumps({**base, **chunk})) for chunk in chunks) + b"data: [DONE]\n\n"


def choice(finish: str | None = None, **delta: object) -> dict:
    return {"choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def call(index: int, arguments: str, id: str | None = None, name: str | None = None) -> dict:
    out: dict = {"index": index, "function": {"arguments": arguments}}
    if id:
        out.update(id=id, type="function")
        out["function"]["name"] = name
    return out


# ---- request -------------------------------------------------------------------------------

CLAUDE_CODE = body(
    {"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>Be careful.</system-reminder>"},
        {"type": "text", "text": "What is in src/?", "cache_control": {"type": "ephemeral"}},
    ]},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "List the directory.", "signature": "EqQBCgIYAhIM"},
        {"type": "text", "text": "I'll look."},
        {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "Bash", "input": {"command": "ls src"}},
        {"type": "tool_use", "id": "toolu_01B", "name": "Screenshot", "input": {}},
    ]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "app.py\nrelay/"},
        {"type": "tool_result", "tool_use_id": "toolu_01B", "is_error": False, "content": [
            {"type": "text", "text": "screen:"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        ]},
        {"type": "text", "text": "Now explain."},
    ]},
    model="claude-sonnet-4-5",
    max_tokens=32000,
    system=[{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "Be concise."}],
    tools=[
        {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}, "cache_control": {"type": "ephemeral"}},
        {"name": "Screenshot", "input_schema": {"type": "object", "properties": {}}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
    ],
    tool_choice={"type": "any", "disable_parallel_tool_use": True},
    thinking={"type": "enabled", "budget_tokens": 31999},
    metadata={"user_id": "user_" + "a" * 80},
    stop_sequences=["\n\nHuman:", ""],
    temperature=1,
    top_k=40,
    stream=True,
)


def test_claude_code_request_on_gpt() -> None:
    out = T.request(CLAUDE_CODE, "gpt-4o")
    assert out["messages"] == [
        {"role": "system", "content": "You are Claude Code.\n\nBe concise."},
        {"role": "user", "content": "<system-reminder>Be careful.</system-reminder>\n\nWhat is in src/?"},
        {"role": "assistant", "content": "I'll look.", "tool_calls": [
            {"id": "toolu_01A09q90qw90lq917835lq9", "type": "function", "function": {"name": "Bash", "arguments": '{"command":"ls src"}'}},
            {"id": "toolu_01B", "type": "function", "function": {"name": "Screenshot", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "app.py\nrelay/"},
        {"role": "tool", "tool_call_id": "toolu_01B", "content": "screen:"},
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "text", "text": "Now explain."},
        ]},
    ]
    assert [tool["function"]["name"] for tool in out["tools"]] == ["Bash", "Screenshot"]
    assert out["tools"][0] == {"type": "function", "function": {"name": "Bash", "description": "Run a command",
                                                                   "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}}}
    assert out["tool_choice"] == "required" and out["parallel_tool_calls"] is False
    assert out["max_tokens"] == 16384  # gpt-4o's output cap, not Claude Code's 32000
    assert out["stop"] == ["\n\nHuman:"] and out["user"] == ("user_" + "a" * 80)[:64]
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert out["temperature"] == 1 and "top_k" not in out
    assert "reasoning_effort" not in out  # gpt-4o refuses it


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        pytest.param("o3-mini", {"max_completion_tokens": 32000, "reasoning_effort": "high", "temperature": None, "max_tokens": None}, id="o-series"),
        pytest.param("gpt-5", {"max_completion_tokens": 32000, "reasoning_effort": "high"}, id="gpt-5"),
        pytest.param("deepseek-chat", {"max_tokens": 8192, "reasoning_effort": "high", "temperature": 1}, id="deepseek-chat"),
        pytest.param("qwen3-coder-plus", {"max_tokens": 32000, "reasoning_effort": "high"}, id="qwen"),
    ],
)
def test_model_rules(model: str, expected: dict) -> None:
    out = T.request(CLAUDE_CODE, model)
    for key, value in expected.items():
        assert out.get(key) == value, key


@pytest.mark.parametrize(
    ("fields", "effort"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 5000}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 20000}}, "high"),
        ({"thinking": {"type": "adaptive"}}, "medium"),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, "low"),
        ({"output_config": {"effort": "max"}}, "high"),
        ({"thinking": {"type": "disabled"}}, None),
        ({}, None),
    ],
)
def test_thinking_to_reasoning_effort(fields: dict, effort: str | None) -> None:
    assert T.request(body(**fields), "deepseek-reasoner").get("reasoning_effort") == effort


@pytest.mark.parametrize(
    ("choice", "expected"),
    [({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
     ({"type": "tool", "name": "Bash"}, {"type": "function", "function": {"name": "Bash"}})],
)
def test_tool_choice(choice: dict, expected: object) -> None:
    tools = [{"name": "Bash", "input_schema": {"type": "object", "properties": {}}}]
    out = T.request(body(tools=tools, tool_choice=choice), "gpt-4.1")
    assert out["tool_choice"] == expected and "parallel_tool_calls" not in out


def test_unsigned_thinking_goes_back_to_deepseek() -> None:
    history = body(
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Simple sum.", "signature": ""},
            {"type": "tool_use", "id": "call_0_abc", "name": "calc", "input": {"expr": "2+2"}},
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_0_abc", "content": "4"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "calc", "input": {"expr": "4"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "4"}]},
    )
    out = T.request(history, "deepseek-v4-pro")
    assert out["messages"][1]["reasoning_content"] == "Simple sum."
    assert out["messages"][3]["reasoning_content"] == ""  # DeepSeek needs the field on every tool-call turn
    assert "reasoning_content" not in T.request(history, "gpt-4.1")["messages"][1]


def test_documents_images_and_system_role() -> None:
    out = T.request(body(
        {"role": "system", "content": "Mid-conversation rule."},
        {"role": "user", "content": [
            {"type": "document", "title": "spec.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}},
        ]},
        output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
    ), "gpt-4.1")
    assert out["messages"] == [
        {"role": "system", "content": "Mid-conversation rule."},
        {"role": "user", "content": [
            {"type": "file", "file": {"filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
            {"type": "text", "text": "plain notes"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        ]},
    ]
    assert out["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}}}


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "tool", "content": "x"}, "messages.0.role"),
        ({"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "file_1"}}]}, "messages.0.content.0"),
        ({"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}]}, "messages.0.content.0"),
    ],
)
def test_request_refused(message: dict, param: str) -> None:
    with pytest.raises(ProxyError) as err:
        T.request(body(message), "gpt-4.1")
    assert err.value.status == 400 and err.value.param == param


# ---- answer --------------------------------------------------------------------------------

def completion(message: dict, finish: str, **usage: object) -> dict:
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4.1-2025-04-14",
        "choices": [{"index": 0, "message": {"role": "assistant", "refusal": None, "annotations": [], **message}, "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29, **usage},
    }


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("content_filter", "refusal"),
     ("function_call", "tool_use"), (None, "end_turn")],
)
def test_every_finish_reason(finish: str, stop_reason: str) -> None:
    answer = T.response(completion({"content": "Hello"}, finish), "claude-sonnet-4-5")
    assert answer["stop_reason"] == stop_reason
    Message.model_validate(answer)


def test_a_list_content_with_a_part_whose_text_is_not_a_string_reads_its_other_parts() -> None:
    # (the other client dialects already read it so; a TypeError here was a 500)
    content = [{"type": "text", "text": 5}, {"type": "text", "text": "Hello"}, {"type": "text"}]
    answer = T.response(completion({"content": content}, "stop"), "claude-sonnet-4-5")
    assert answer["content"] == [{"type": "text", "text": "Hello"}]
    Message.model_validate(answer)


def test_answer_with_reasoning_tools_and_cached_usage() -> None:
    answer = T.response(completion(
        {"content": "Checking.", "reasoning_content": "Need the weather.", "tool_calls": [
            {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "call_def", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Par'}},
        ]},
        "stop",  # vLLM and Qwen say stop after tool calls
        prompt_tokens=2006, completion_tokens=300, prompt_tokens_details={"cached_tokens": 1920},
        completion_tokens_details={"reasoning_tokens": 120},
    ), "claude-sonnet-4-5")
    assert answer["id"] == "msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT" and answer["model"] == "claude-sonnet-4-5"
    assert answer["content"] == [
        {"type": "thinking", "thinking": "Need the weather.", "signature": ""},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_def", "name": "get_weather", "input": {"_raw": '{"city": "Par'}},
    ]
    assert answer["stop_reason"] == "tool_use" and answer["stop_sequence"] is None
    assert answer["usage"] == {"input_tokens": 86, "output_tokens": 300, "cache_creation_input_tokens": 0,
                               "cache_read_input_tokens": 1920, "output_tokens_details": {"thinking_tokens": 120}}
    Message.model_validate(answer)


def test_deepseek_cache_fields_and_empty_answer() -> None:
    answer = T.response(completion({"content": ""}, "stop", prompt_cache_hit_tokens=10, prompt_cache_miss_tokens=9), "m")
    assert answer["content"] == [] and answer["usage"]["cache_read_input_tokens"] == 10 and answer["usage"]["input_tokens"] == 9


def test_error_body_raises() -> None:
    with pytest.raises(ProxyError) as err:
        T.response({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}, "m")
    assert err.value.status == 429


# ---- stream --------------------------------------------------------------------------------

PARALLEL = openai_sse(
    choice(role="assistant", content=None, refusal=None),
    choice(content="Checking ☀️ "),
    choice(content="both."),
    choice(tool_calls=[call(0, "", "call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather")]),
    choice(tool_calls=[call(0, '{"lo')]),
    choice(tool_calls=[call(1, "", "call_ABC", "get_time")]),
    choice(tool_calls=[call(1, '{"tz":')]),
    choice(tool_calls=[call(0, 'cation": "Zürich"}')]),
    choice(tool_calls=[call(2, "", "call_XYZ", "list_files")]),
    choice(tool_calls=[call(1, ' "CET"}')]),
    choice("tool_calls"),
    {"choices": [], "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99, "prompt_tokens_details": {"cached_tokens": 64}}},
)


@pytest.mark.parametrize("step", [1, 3, 7, len(PARALLEL)])
def test_interleaved_parallel_calls(step: int) -> None:
    events = translate(PARALLEL, T.stream(body(), "claude-sonnet-4-5"), step)
    assert events == translate(PARALLEL, T.stream(body(), "claude-sonnet-4-5"), len(PARALLEL))
    for event in events:
        EVENT.validate_python(event)
    # Blocks never interleave: each start is closed before the next one opens.
    open_block = None
    for event in events:
        if event["type"] == "content_block_start":
            assert open_block is None
            open_block = event["index"]
        elif event["type"] == "content_block_delta":
            assert event["index"] == open_block
            assert event["delta"].get("partial_json", "x") != ""
        elif event["type"] == "content_block_stop":
            assert event["index"] == open_block
            open_block = None
    assert [e["type"] for e in events][-2:] == ["message_delta", "message_stop"]
    message = reassemble(events)
    assert message.model == "claude-sonnet-4-5" and message.id == "msg_B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
    assert [(b.type, getattr(b, "text", None) or getattr(b, "input", None)) for b in message.content] == [
        ("text", "Checking ☀️ both."),
        ("tool_use", {"location": "Zürich"}),
        ("tool_use", {"tz": "CET"}),
        ("tool_use", {}),
    ]
    assert [b.id for b in message.content[1:]] == ["call_DdmO9pD3xa9XTPNJ32zg2hcA", "call_ABC", "call_XYZ"]  # type: ignore[union-attr]
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 18 and message.usage.output_tokens == 17 and message.usage.cache_read_input_tokens == 64


def test_first_call_streams_while_second_waits() -> None:
    translator = T.stream(body(), "m")
    for chunk in (choice(tool_calls=[call(0, "", "c0", "a")]), choice(tool_calls=[call(0, '{"x"')]),
                  choice(tool_calls=[call(1, '{"y": 1}', "c1", "b")])):
        translator.feed({"id": "chatcmpl-1", **chunk})
    late = translator.feed({"id": "chatcmpl-1", **choice(tool_calls=[call(0, ": 2}")])})
    assert [(e["type"], e.get("delta", {}).get("partial_json")) for e in late] == [
        ("content_block_delta", ": 2}"),
        ("content_block_stop", None),
        ("content_block_start", None),
        ("content_block_delta", '{"y": 1}'),
    ]


DEEPSEEK = openai_sse(
    choice(role="assistant", content=None, reasoning_content=""),
    choice(content=None, reasoning_content="用户想知道"),
    choice(content=None, reasoning_content="天气。"),
    choice(content="我来查一下。", reasoning_content=None),
    choice(tool_calls=[{"index": 0, "id": "call_0_5d0b", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]),
    choice(tool_calls=[{"index": 0, "function": {"arguments": '{"city":"北京"}'}}]),
    {**choice("tool_calls"), "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160,
                                       "prompt_cache_hit_tokens": 100, "prompt_cache_miss_tokens": 20,
                                       "completion_tokens_details": {"reasoning_tokens": 25}}},
)


@pytest.mark.parametrize("step", [1, 7])
def test_deepseek_reasoning_becomes_thinking(step: int) -> None:
    message = reassemble(translate(DEEPSEEK, T.stream(body(), "claude-sonnet-4-5"), step))
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[0].thinking == "用户想知道天气。" and message.content[0].signature == ""  # type: ignore[union-attr]
    assert message.content[2].input == {"city": "北京"}  # type: ignore[union-attr]
    assert message.usage.input_tokens == 20 and message.usage.cache_read_input_tokens == 100


def test_text_while_a_call_is_unfinished_is_kept_for_later() -> None:
    raw = openai_sse(
        choice(tool_calls=[call(0, '{"a":', "c0", "f")]),
        choice(content="(thinking aloud)"),
        choice(tool_calls=[call(0, " 1}")]),
        choice("tool_calls"),
    )
    message = reassemble(translate(raw, T.stream(body(), "m"), 4))
    assert [(b.type, getattr(b, "input", None) or getattr(b, "text", None)) for b in message.content] == [
        ("tool_use", {"a": 1}), ("text", "(thinking aloud)")]


@pytest.mark.parametrize(
    ("chunks", "stop_reason"),
    [
        ((choice(content="Hi"), choice("stop")), "end_turn"),
        ((choice(content="Hi"), choice("length")), "max_tokens"),
        ((choice(content="Hi"), choice("content_filter")), "refusal"),
        ((choice(tool_calls=[call(0, "{}", "c", "f")]), choice("stop")), "tool_use"),
        ((choice(content="Hi"),), "end_turn"),  # [DONE] without a finish_reason chunk
        ((choice(tool_calls=[call(0, "", "c", "f")]),), "tool_use"),
    ],
)
def test_stream_stop_reasons_and_missing_finish(chunks: tuple, stop_reason: str) -> None:
    events = translate(openai_sse(*chunks), T.stream(body(), "m"), 5)
    message = reassemble(events)
    assert message.stop_reason == stop_reason
    assert events[-2]["usage"]["output_tokens"] == 0  # no usage upstream: zeros, still well-formed
    if message.content[0].type == "tool_use":
        assert message.content[0].input == {}  # type: ignore[union-attr]


def test_stream_error_chunk_raises_and_finish_is_idempotent() -> None:
    translator = T.stream(body(), "m")
    translator.feed({"id": "x", **choice(content="Hi")})
    with pytest.raises(ProxyError) as err:
        translator.feed({"error": {"message": "The server is overloaded", "type": "server_error", "code": "overloaded"}})
    assert err.value.status == 503
    assert translator.finish()[-1] == {"type": "message_stop"} and translator.finish() == []


def test_calls_that_share_one_index_stay_apart() -> None:
    raw = openai_sse(
        choice(tool_calls=[call(0, '{"path": "a.py"}', "call_a", "Read")]),
        choice(tool_calls=[call(0, '{"path": "b.py"}', "call_b", "Read")]),
        choice(tool_calls=[{"id": "call_c", "type": "function", "function": {"name": "Glob", "arguments": '{"p": "*"}'}}]),
        choice("tool_calls"),
    )
    message = reassemble(translate(raw, T.stream(body(), "m"), 11))
    assert [(b.id, b.input) for b in message.content] == [  # type: ignore[union-attr]
        ("call_a", {"path": "a.py"}), ("call_b", {"path": "b.py"}), ("call_c", {"p": "*"})]
