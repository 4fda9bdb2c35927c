"""OpenAI Responses client -> chat completions: request, answer and stream translation.

Answers are checked with the SDK's own types, and streams go through the SDK's own stream parsing
(`client.responses.stream` / `create(stream=True)` over an httpx MockTransport).
"""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from relay import sse
from relay.errors import ProxyError
from wrong_types import variants
from relay.dialects import anthropic_channel, anthropic_channel_stream, responses_client, responses_client_stream
from relay.dialects.common import pack_thinking, unpack_thinking

EVENT = TypeAdapter(ResponseStreamEvent)
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": False}
PATCH = {"type": "custom", "name": "apply_patch", "description": "Edit files.",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}}
SHELL = {"type": "local_shell"}
TOOLS = [WEATHER, PATCH, SHELL]
BLOCKS = [{"type": "thinking", "thinking": "The user wants the weather.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}]


def request(**fields: object) -> dict:
    return responses_client.request({"model": "m", "input": "Hi", **fields}, "deepseek-chat")


def chunk(finish: str | None = None, **delta: object) -> dict:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1700000000, "model": "deepseek-chat", "choices": [choice]}


def call(index: int, arguments: str, call_id: str | None = None, name: str | None = None) -> dict:
    out: dict = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        out.update(id=call_id, type="function")
        out["function"]["name"] = name
    return out


USAGE = {"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1700000000, "model": "deepseek-chat", "choices": [],
         "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160, "prompt_tokens_details": {"cached_tokens": 100},
                   "completion_tokens_details": {"reasoning_tokens": 25}}}


def completion(message: dict, finish: str, usage: dict | None = None) -> dict:
    return {"id": "chatcmpl-7", "object": "chat.completion", "created": 1700000000, "model": "deepseek-chat",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "logprobs": None, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}


def sdk_client(events: list[dict]) -> openai.OpenAI:
    """An OpenAI client whose server answers with these events as Responses SSE."""
    raw = b"".join(sse.encode(orjson.dumps(event), event["type"]) for event in events)

    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)

    return openai.OpenAI(api_key="sk-test", base_url="http://proxy.test/v1", max_retries=0,
                         http_client=httpx.Client(transport=httpx.MockTransport(handler)))


def run(chunks: list[dict], body: dict) -> tuple[list[dict], responses_client_stream.ChatToResponsesStream]:
    translator = responses_client_stream.stream(body, "deepseek-chat")
    events = [event for c in chunks for event in translator.feed(c)] + translator.finish()
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    for event in events:
        EVENT.validate_python(event)
    well_formed(events)
    return events, translator


def well_formed(events: list[dict]) -> None:
    """Items open and close one at a time, in output order, and every delta belongs to the open one."""
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1]["type"] in ("response.completed", "response.incomplete")
    open_item, next_index = None, 0
    for event in events[2:-1]:
        if event["type"] == "response.output_item.added":
            assert open_item is None and event["output_index"] == next_index
            open_item = event["item"]
        elif event["type"] == "response.output_item.done":
            assert open_item is not None and event["item"]["id"] == open_item["id"]
            open_item, next_index = None, next_index + 1
        else:
            assert open_item is not None and event["item_id"] == open_item["id"] and event["output_index"] == next_index
    assert open_item is None


def sdk_final(events: list[dict], body: dict) -> Response:
    """The response the SDK's own stream helper assembles from the events."""
    with sdk_client(events).responses.stream(model="m", input="Hi", tools=body.get("tools") or []) as stream:
        for _ in stream:
            pass
        return stream.get_final_response()


def shape(response: Response | dict) -> list[tuple]:
    """Output items without their generated ids."""
    items = response["output"] if isinstance(response, dict) else [i.model_dump(exclude_none=True) for i in response.output]
    out = []
    for item in items:
        item = {k: v for k, v in item.items() if k not in ("id", "parsed_arguments")}
        if item["type"] == "message":
            item["content"] = [{k: v for k, v in p.items() if k != "parsed"} for p in item["content"]]
        out.append(tuple(sorted((k, orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()) for k, v in item.items())))
    return out


# ---- request -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("fields", "model", "expected"),
    [
        pytest.param({}, "deepseek-chat", {"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hi"}]}, id="string-input"),
        pytest.param(
            {"instructions": "Be brief.", "max_output_tokens": 300, "temperature": 0.2, "top_p": 0.9, "reasoning": {"effort": "high", "summary": "auto"},
             "user": "u-1", "metadata": {"a": "b"}, "store": False, "include": ["reasoning.encrypted_content"], "truncation": "auto",
             "service_tier": "flex", "prompt_cache_key": "k", "text": {"verbosity": "low", "format": {"type": "text"}}, "stream": True,
             "previous_response_id": "resp_1", "max_tool_calls": 3, "context_management": [{"type": "compaction"}],
             "stream_options": {"include_obfuscation": False}},
            "deepseek-reasoner",
            {"model": "deepseek-reasoner", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
             "max_tokens": 300, "temperature": 0.2, "top_p": 0.9, "reasoning_effort": "high", "user": "u-1",
             "stream": True, "stream_options": {"include_usage": True}},
            id="fields-and-what-is-not-sent"),
        pytest.param({"max_output_tokens": 300, "temperature": 0.2, "reasoning": {"effort": "minimal"}, "safety_identifier": "hash-1"}, "gpt-5-mini",
                     {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 300,
                      "reasoning_effort": "minimal", "user": "hash-1"}, id="openai-reasoning-model"),
        pytest.param({"reasoning": {"effort": "low"}}, "gpt-4o", {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]},
                     id="no-effort-for-gpt-4o"),
        pytest.param({"text": {"format": {"type": "json_schema", "name": "weather", "strict": True, "description": "d",
                                          "schema": {"type": "object", "properties": {"t": {"type": "number"}}}}}}, "m",
                     {"model": "m", "messages": [{"role": "user", "content": "Hi"}],
                      "response_format": {"type": "json_schema", "json_schema": {"name": "weather", "schema": {"type": "object", "properties": {"t": {"type": "number"}}},
                                                                                 "description": "d", "strict": True}}},
                     id="json-schema"),
        pytest.param({"text": {"format": {"type": "json_object"}}}, "m",
                     {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "response_format": {"type": "json_object"}}, id="json-object"),
    ],
)
def test_request_fields(fields: dict, model: str, expected: dict) -> None:
    assert responses_client.request({"model": "x", "input": "Hi", **fields}, model) == expected


def test_conversation_items_become_chat_messages() -> None:
    out = request(instructions="Be brief.", input=[
        {"role": "developer", "content": "Metric units."},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"},
            {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "original"},
            {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"},
            {"type": "input_file", "filename": "notes.txt", "file_data": "aGVsbG8="},
            {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}},
        ]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Look it up."}], "encrypted_content": "gAAAAB-openai-only"},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Oslo"}', "status": "completed"},
        {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_2", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "local_shell_call", "id": "lsh_1", "call_id": "call_3", "status": "completed",
         "action": {"type": "exec", "command": ["ls", "-la"], "env": {}, "working_directory": "/tmp", "timeout_ms": None}},
        {"type": "function_call_output", "call_id": "call_1", "output": [
            {"type": "input_text", "text": "4°C"}, {"type": "input_image", "image_url": "https://example.com/map.png"}]},
        {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Done!"},
        {"type": "local_shell_call_output", "id": "call_3", "output": "a.txt"},
        {"role": "assistant", "content": "Anything else?"},
        {"role": "user", "content": "No."},
    ], tools=TOOLS)
    assert out["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Metric units."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
            {"type": "file", "file": {"filename": "notes.txt", "file_data": "data:text/plain;base64,aGVsbG8="}},
            {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}},
        ]},
        {"role": "assistant", "content": "Checking.", "reasoning_content": "Look it up.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "apply_patch", "arguments": '{"input":"*** Begin Patch"}'}},
            {"id": "call_3", "type": "function", "function": {"name": "local_shell", "arguments": '{"command":["ls","-la"],"working_directory":"/tmp"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "4°C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "Done!"},
        {"role": "tool", "tool_call_id": "call_3", "content": "a.txt"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/map.png"}}]},
        {"role": "assistant", "content": "Anything else?"},
        {"role": "user", "content": "No."},
    ]


def test_reasoning_goes_back_only_where_wanted() -> None:
    items = [{"role": "user", "content": "Hi"}, {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Hm."}]},
             {"type": "function_call", "call_id": "c", "name": "get_weather", "arguments": "{}"},
             {"type": "function_call_output", "call_id": "c", "output": "sunny"},
             {"type": "function_call", "call_id": "d", "name": "get_weather", "arguments": ""}]
    deepseek = responses_client.request({"input": items, "tools": [WEATHER]}, "deepseek-reasoner")["messages"]
    assert deepseek[1]["reasoning_content"] == "Hm." and deepseek[3]["reasoning_content"] == ""  # DeepSeek wants the field on tool turns
    assert deepseek[3]["tool_calls"][0]["function"]["arguments"] == "{}"
    gpt = responses_client.request({"input": items, "tools": [WEATHER]}, "gpt-5")["messages"]
    assert all("reasoning_content" not in message for message in gpt)


def test_signed_thinking_round_trips_through_encrypted_content() -> None:
    answer = completion({"content": None, "reasoning_content": "The user wants the weather.", "thinking_blocks": BLOCKS,
                         "tool_calls": [{"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
                        "tool_calls")
    body = {"model": "claude", "input": "Weather in Oslo?", "tools": [WEATHER]}
    first = Response.model_validate(responses_client.response(answer, "claude-sonnet-4-5", body))
    assert unpack_thinking(first.output[0].encrypted_content) == BLOCKS  # type: ignore[union-attr]
    items = ["Weather in Oslo?", *[item.model_dump(exclude_none=True) for item in first.output],
             {"type": "function_call_output", "call_id": "toolu_01", "output": "4°C"}]
    chat = responses_client.request({**body, "input": [{"role": "user", "content": items[0]}, *items[1:]]}, "claude-sonnet-4-5")
    assert chat["messages"][1]["thinking_blocks"] == BLOCKS
    # ... and the Anthropic translation sends the signed block back first, keeping thinking on.
    claude = anthropic_channel.request({**chat, "reasoning_effort": "medium"}, "claude-sonnet-4-5")
    assert claude["messages"][1]["content"][0] == {"type": "thinking", "thinking": BLOCKS[0]["thinking"], "signature": BLOCKS[0]["signature"]}
    assert claude["thinking"]["type"] == "enabled"


@pytest.mark.parametrize(
    ("tools", "choice", "names", "tool_choice"),
    [
        pytest.param(TOOLS, None, ["get_weather", "apply_patch", "local_shell"], None, id="default"),
        pytest.param(TOOLS, "required", ["get_weather", "apply_patch", "local_shell"], "required", id="required"),
        pytest.param(TOOLS, "none", ["get_weather", "apply_patch", "local_shell"], "none", id="none"),
        pytest.param(TOOLS, {"type": "function", "name": "get_weather"}, ["get_weather", "apply_patch", "local_shell"],
                     {"type": "function", "function": {"name": "get_weather"}}, id="function"),
        pytest.param(TOOLS, {"type": "custom", "name": "apply_patch"}, ["get_weather", "apply_patch", "local_shell"],
                     {"type": "function", "function": {"name": "apply_patch"}}, id="custom"),
        pytest.param(TOOLS, {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}, {"type": "local_shell"}]},
                     ["get_weather", "local_shell"], "required", id="allowed-tools"),
        pytest.param([{"type": "namespace", "name": "crm", "description": "CRM", "tools": [WEATHER, PATCH]}], {"type": "function", "name": "get_weather"},
                     ["crm__get_weather", "crm__apply_patch"], {"type": "function", "function": {"name": "crm__get_weather"}}, id="namespace"),
        pytest.param([], "auto", None, None, id="choice-without-tools"),
    ],
)
def test_tools_and_tool_choice(tools: list, choice: object, names: list | None, tool_choice: object) -> None:
    out = request(tools=tools, tool_choice=choice, parallel_tool_calls=False)
    assert [t["function"]["name"] for t in out["tools"]] == names if names else "tools" not in out
    assert out.get("tool_choice") == tool_choice
    assert out.get("parallel_tool_calls") is (False if names else None)


def test_tool_shapes() -> None:
    weather, patch, shell = request(tools=TOOLS)["tools"]
    assert weather == {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                                        "parameters": WEATHER["parameters"], "strict": False}}
    assert patch["function"]["parameters"] == {"type": "object", "properties": {"input": {"type": "string", "description": "The tool's whole input, as free-form text."}},
                                               "required": ["input"], "additionalProperties": False}
    assert patch["function"]["description"] == "Edit files.\n\nThe input must follow this lark grammar:\nstart: begin_patch hunk+ end_patch"
    assert shell["function"]["name"] == "local_shell" and shell["function"]["parameters"]["required"] == ["command"]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        *[pytest.param({"tools": [WEATHER, {"type": kind}]}, "tools[1].type", id=kind) for kind in (
            "web_search", "web_search_preview", "file_search", "computer_use_preview", "code_interpreter", "image_generation",
            "mcp", "shell", "apply_patch", "tool_search")],
        pytest.param({"tools": [{"type": "namespace", "name": "n", "tools": [{"type": "web_search"}]}]}, "tools[0].tools[0].type", id="in-namespace"),
        pytest.param({"tools": [WEATHER, WEATHER]}, "tools", id="same-name-twice"),
        pytest.param({"tools": [{"type": "function", "parameters": {}}]}, "tools[0].name", id="nameless"),
        pytest.param({"tools": TOOLS, "tool_choice": {"type": "file_search"}}, "tool_choice", id="hosted-choice"),
        pytest.param({"tools": TOOLS, "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice", id="unknown-choice"),
        pytest.param({"tools": TOOLS, "tool_choice": {"type": "custom"}}, "tool_choice", id="nameless-choice"),
        pytest.param({"input": [{"role": "user", "content": "a"}, {"type": "item_reference", "id": "msg_1"}]}, "input[1]", id="item-reference"),
        pytest.param({"input": [{"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_image", "file_id": "file-1", "detail": "auto"}]}]},
                     "input[0].content[1]", id="image-file-id"),
        pytest.param({"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}]}]}, "input[0].content[0]", id="file-url"),
        pytest.param({"input": [{"type": "web_search_call", "id": "ws_1", "status": "completed"}]}, "input[0].type", id="hosted-item"),
        pytest.param({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", id="bad-role"),
        pytest.param({"input": [{"role": "assistant", "content": [{"type": "input_image", "image_url": "https://x"}]}]}, "input[0].content[0]", id="assistant-image"),
        pytest.param({"input": {"role": "user"}}, "input", id="input-not-a-list"),
        pytest.param({"input": [], "instructions": "Hi"}, "input", id="no-message"),
        pytest.param({"background": True}, "background", id="background"),
        pytest.param({"conversation": "conv_1"}, "conversation", id="conversation"),
        pytest.param({"prompt": {"id": "pmpt_1"}}, "prompt", id="stored-prompt"),
        pytest.param({"top_logprobs": 3}, "top_logprobs", id="logprobs"),
    ],
)
def test_request_refused(fields: dict, param: str) -> None:
    with pytest.raises(ProxyError) as err:
        request(**fields)
    assert err.value.status == 400 and err.value.param == param and err.value.message.startswith(param)


def test_the_internal_form_reaches_anthropic() -> None:
    """Codex on Claude: the chat request made here goes through the existing Anthropic translation."""
    chat = responses_client.request({"input": [{"role": "user", "content": "Fix it."}], "tools": TOOLS, "tool_choice": "required",
                                   "instructions": "You are Codex."}, "claude-sonnet-4-5")
    claude = anthropic_channel.request(chat, "claude-sonnet-4-5")
    assert claude["system"] == [{"type": "text", "text": "You are Codex."}]
    assert [t["name"] for t in claude["tools"]] == ["get_weather", "apply_patch", "local_shell"]
    assert claude["tool_choice"] == {"type": "any"}


# ---- answer --------------------------------------------------------------------------------

def test_answer_with_reasoning_text_and_every_kind_of_call() -> None:
    body = {"model": "m", "input": "Hi", "tools": [*TOOLS, {"type": "namespace", "name": "crm", "description": "CRM", "tools": [
        {"type": "function", "name": "find", "parameters": {"type": "object", "properties": {}}}]}],
        "instructions": "Be brief.", "metadata": {"k": "v"}, "text": {"format": {"type": "text"}, "verbosity": "low"},
        "reasoning": {"effort": "low", "summary": "auto"}, "tool_choice": "auto", "max_output_tokens": 500, "store": False}
    answer = completion({"content": "Let me check.", "reasoning_content": "Three tools needed.", "tool_calls": [
        {"id": "call_w", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
        {"id": "call_p", "type": "function", "function": {"name": "apply_patch", "arguments": '{"input":"*** Begin Patch\\n*** End Patch"}'}},
        {"id": "call_s", "type": "function", "function": {"name": "local_shell", "arguments": '{"command":["git","status"],"timeout_ms":5000}'}},
        {"id": "call_n", "type": "function", "function": {"name": "crm__find", "arguments": ""}},
        {"id": "call_x", "type": "function", "function": {"name": "apply_patch", "arguments": "just text"}},
    ]}, "tool_calls", USAGE["usage"])
    out = responses_client.response(answer, "deepseek-chat", body)
    response = Response.model_validate(out)
    assert response.status == "completed" and response.incomplete_details is None and response.model == "deepseek-chat"
    assert response.id.startswith("resp_") and response.output_text == "Let me check."
    assert shape(out) == shape({"output": [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Three tools needed."}]},
        {"type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Let me check.", "annotations": [], "logprobs": []}]},
        {"type": "function_call", "call_id": "call_w", "name": "get_weather", "arguments": '{"city":"Oslo"}', "status": "completed"},
        {"type": "custom_tool_call", "call_id": "call_p", "name": "apply_patch", "input": "*** Begin Patch\n*** End Patch"},
        {"type": "local_shell_call", "call_id": "call_s", "status": "completed",
         "action": {"type": "exec", "command": ["git", "status"], "env": {}, "timeout_ms": 5000}},
        {"type": "function_call", "call_id": "call_n", "name": "find", "arguments": "{}", "status": "completed", "namespace": "crm"},
        {"type": "custom_tool_call", "call_id": "call_x", "name": "apply_patch", "input": "just text"},
    ]})
    assert [item["id"][:3] for item in out["output"]] == ["rs_", "msg", "fc_", "ctc", "lsh", "fc_", "ctc"]
    assert response.usage.model_dump() == {  # type: ignore[union-attr]
        "input_tokens": 120, "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 0, "cache_write_tokens_details": None},
        "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 25}, "total_tokens": 160}
    assert (response.instructions, response.metadata, response.max_output_tokens) == ("Be brief.", {"k": "v"}, 500)
    assert response.text.verbosity == "low" and response.reasoning.effort == "low" and out["store"] is False  # type: ignore[union-attr]
    assert [tool.type for tool in response.tools] == ["function", "custom", "local_shell", "namespace"]


@pytest.mark.parametrize(
    ("finish", "message", "status", "reason"),
    [
        ("stop", {"content": "Hi"}, "completed", None),
        ("length", {"content": "Once upon a"}, "incomplete", "max_output_tokens"),
        ("content_filter", {"content": None}, "incomplete", "content_filter"),
        ("content_filter", {"content": None, "refusal": "I can't help with that."}, "incomplete", "content_filter"),
        ("stop", {"content": ""}, "completed", None),
    ],
)
def test_answer_status(finish: str, message: dict, status: str, reason: str | None) -> None:
    response = Response.model_validate(responses_client.response(completion(message, finish), "m", {"input": "Hi"}))
    assert response.status == status
    assert (response.incomplete_details.reason if response.incomplete_details else None) == reason
    texts = [part.model_dump(exclude_none=True) for item in response.output for part in item.content]  # type: ignore[union-attr]
    expected = [{"type": "output_text", "text": message["content"], "annotations": [], "logprobs": []}] if message["content"] else []
    if message.get("refusal"):
        expected.append({"type": "refusal", "refusal": message["refusal"]})
    assert texts == expected
    assert all(item.status == ("incomplete" if reason else "completed") for item in response.output)  # type: ignore[union-attr]


def test_answer_usage_from_deepseek_and_error_bodies() -> None:
    usage = {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35, "prompt_cache_hit_tokens": 20, "prompt_cache_miss_tokens": 10}
    response = responses_client.response(completion({"content": "x"}, "stop", usage), "m", {"input": "Hi"})
    assert response["usage"]["input_tokens_details"]["cached_tokens"] == 20
    with pytest.raises(ProxyError) as err:
        responses_client.response({"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}, "m", {})
    assert err.value.status == 429


# ---- stream --------------------------------------------------------------------------------

def fragments(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def interleaved(size: int) -> list[dict]:
    """Reasoning, text, then three calls whose argument fragments alternate, cut every `size` chars."""
    weather, patch, shell = '{"city": "Zürich"}', '{"input": "*** Begin Patch\\n+héllo\\n*** End Patch"}', '{"command": ["ls", "-la"]}'
    chunks = [chunk(role="assistant", content="", reasoning_content=None), chunk(reasoning_content="Need "),
              chunk(reasoning_content="three tools."), chunk(content="Checking ☀️ "), chunk(content="now."),
              chunk(tool_calls=[call(0, "", "call_w", "get_weather")]), chunk(tool_calls=[call(1, "", "call_p", "apply_patch")]),
              chunk(tool_calls=[call(2, "", "call_s", "local_shell")])]
    parts = [fragments(weather, size), fragments(patch, size), fragments(shell, size)]
    for i in range(max(map(len, parts))):
        for index, pieces in enumerate(parts):
            if i < len(pieces):
                chunks.append(chunk(tool_calls=[call(index, pieces[i])]))
    return chunks + [chunk("tool_calls"), USAGE]


WHOLE = completion({"content": "Checking ☀️ now.", "reasoning_content": "Need three tools.", "tool_calls": [
    {"id": "call_w", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Zürich"}'}},
    {"id": "call_p", "type": "function", "function": {"name": "apply_patch", "arguments": '{"input": "*** Begin Patch\\n+héllo\\n*** End Patch"}'}},
    {"id": "call_s", "type": "function", "function": {"name": "local_shell", "arguments": '{"command": ["ls", "-la"]}'}},
]}, "tool_calls", USAGE["usage"])


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_stream_with_interleaved_calls_matches_the_whole_answer(size: int) -> None:
    body = {"model": "m", "input": "Hi", "tools": TOOLS, "stream": True}
    events, translator = run(interleaved(size), body)
    final = sdk_final(events, body)
    assert shape(final) == shape(responses_client.response(WHOLE, "deepseek-chat", body))
    assert final.usage.input_tokens == 120 and final.usage.output_tokens_details.reasoning_tokens == 25  # type: ignore[union-attr]
    assert final.output_text == "Checking ☀️ now." and final.id == translator.id
    assert translator.response == events[-1]["response"] and translator.response["status"] == "completed"
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    assert deltas == '{"city": "Zürich"}'  # streamed as it came, in order
    types = [e["type"] for e in events]
    assert types.count("response.custom_tool_call_input.delta") == 1 and "response.reasoning_summary_text.done" in types


def test_stream_events_through_create_stream() -> None:
    body = {"model": "m", "input": "Hi", "tools": TOOLS}
    events, _ = run(interleaved(5), body)
    seen = list(sdk_client(events).responses.create(model="m", input="Hi", stream=True))
    assert [event.type for event in seen] == [event["type"] for event in events]
    assert seen[-1].response.output[3].input == "*** Begin Patch\n+héllo\n*** End Patch"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("chunks", "status", "reason", "texts"),
    [
        pytest.param([chunk("stop"), USAGE], "completed", None, [], id="empty-answer"),
        pytest.param([], "completed", None, [], id="nothing-at-all"),
        pytest.param([chunk(content="Once upon"), chunk(content=" a time"), chunk("length"), USAGE], "incomplete", "max_output_tokens",
                     ["Once upon a time"], id="length"),
        pytest.param([chunk(content=None), chunk("content_filter")], "incomplete", "content_filter", [], id="content-filter"),
        pytest.param([chunk(content="Hi"), chunk(refusal="No."), chunk(content="!"), chunk("stop")], "completed", None, ["Hi", "No.", "!"],
                     id="refusal-between-text"),
        pytest.param([chunk(content="Hi")], "completed", None, ["Hi"], id="no-finish-reason"),
    ],
)
def test_stream_endings(chunks: list[dict], status: str, reason: str | None, texts: list[str]) -> None:
    events, translator = run(chunks, {"input": "Hi"})
    seen = list(sdk_client(events).responses.create(model="m", input="Hi", stream=True))
    last = seen[-1].response  # type: ignore[union-attr]
    assert last.status == status and (last.incomplete_details.reason if last.incomplete_details else None) == reason
    assert [getattr(p, "text", None) or getattr(p, "refusal", None) for item in last.output for p in item.content] == texts  # type: ignore[union-attr]
    assert translator.finish() == []


def test_text_while_a_call_is_unfinished_comes_after_it() -> None:
    chunks = [chunk(tool_calls=[call(0, '{"city":', "call_1", "get_weather")]), chunk(content="(aside)"),
              chunk(tool_calls=[call(0, ' "Oslo"}')]), chunk("tool_calls")]
    events, _ = run(chunks, {"input": "Hi", "tools": TOOLS})
    final = sdk_final(events, {"tools": TOOLS})
    assert [(item.type, getattr(item, "arguments", None)) for item in final.output] == [
        ("function_call", '{"city": "Oslo"}'), ("message", None)]


def test_calls_that_share_one_index_stay_apart() -> None:
    chunks = [chunk(tool_calls=[call(0, '{"city": "A"}', "call_a", "get_weather")]),
              chunk(tool_calls=[call(0, '{"city": "B"}', "call_b", "get_weather")]),
              chunk(tool_calls=[{"id": "call_c", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "C"}'}}]),
              chunk("tool_calls")]
    events, _ = run(chunks, {"input": "Hi", "tools": TOOLS})
    final = sdk_final(events, {"tools": TOOLS})
    assert [(item.call_id, item.arguments) for item in final.output] == [  # type: ignore[union-attr]
        ("call_a", '{"city": "A"}'), ("call_b", '{"city": "B"}'), ("call_c", '{"city": "C"}')]


def test_claude_thinking_streams_into_a_reasoning_item() -> None:
    """Codex on Claude: Anthropic events -> chat chunks (existing module) -> Responses events."""
    anthropic_events = [
        {"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude", "content": [],
                                              "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 50, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": BLOCKS[0]["thinking"]}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": BLOCKS[0]["signature"]}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "EmwKAhgB"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"city": "Oslo"}'}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 30}},
        {"type": "message_stop"},
    ]
    body = {"model": "claude", "input": "Weather?", "tools": TOOLS, "stream": True}
    chat_body = responses_client.request(body, "claude-sonnet-4-5")
    to_chat = anthropic_channel_stream.stream(chat_body, "claude-sonnet-4-5")
    chunks = [c for event in anthropic_events for c in to_chat.feed(event)] + to_chat.finish()
    events, _ = run(chunks, body)
    final = sdk_final(events, body)
    assert [item.type for item in final.output] == ["reasoning", "function_call"]
    assert final.output[0].summary[0].text == BLOCKS[0]["thinking"]  # type: ignore[union-attr]
    assert unpack_thinking(final.output[0].encrypted_content) == [*BLOCKS, {"type": "redacted_thinking", "data": "EmwKAhgB"}]  # type: ignore[union-attr]
    assert final.usage.input_tokens == 50 and final.usage.output_tokens == 30  # type: ignore[union-attr]


def test_redacted_thinking_alone_still_reaches_the_client() -> None:
    events, _ = run([chunk(thinking_blocks=[{"index": 0, "type": "redacted_thinking", "data": "EmwK"}]), chunk(content="Hi"), chunk("stop")],
                    {"input": "Hi"})
    final = sdk_final(events, {})
    assert [item.type for item in final.output] == ["message", "reasoning"]
    assert final.output[1].encrypted_content == pack_thinking([{"type": "redacted_thinking", "data": "EmwK"}])  # type: ignore[union-attr]


def test_stream_error_chunk_raises() -> None:
    translator = responses_client_stream.stream({"input": "Hi"}, "m")
    translator.feed(chunk(content="Hi"))
    with pytest.raises(ProxyError) as err:
        translator.feed({"error": {"message": "The server is overloaded", "type": "server_error", "code": "overloaded"}})
    assert err.value.status == 503


# ---- any type in any field -----------------------------------------------------------------

EVERYTHING = {"model": "m", "instructions": "x", "input": [
    {"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_image", "image_url": "https://x/a.png", "detail": "auto"},
                                 {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AA"},
                                 {"type": "input_audio", "input_audio": {"data": "AA", "format": "mp3"}}]},
    {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "s"}], "content": [{"type": "reasoning_text", "text": "c"}],
     "encrypted_content": pack_thinking(BLOCKS)},
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "t"}, {"type": "refusal", "refusal": "r"}]},
    {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}", "namespace": "crm"},
    {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "i"},
    {"type": "local_shell_call", "call_id": "c3", "action": {"type": "exec", "command": ["ls"], "working_directory": "/"}},
    {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "o"}]},
    {"type": "local_shell_call_output", "id": "c3", "output": "o"},
], "tools": [*TOOLS, {"type": "namespace", "name": "crm", "description": "d", "tools": [{"type": "function", "name": "f", "parameters": {}}]}],
    "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "get_weather"}]},
    "text": {"format": {"type": "json_schema", "name": "n", "schema": {}, "strict": True}}, "reasoning": {"effort": "low"},
    "max_output_tokens": 5, "temperature": 1, "top_p": 1, "user": "u", "stream": True, "parallel_tool_calls": True}


def test_no_type_in_any_field_of_a_request_is_a_crash() -> None:
    for path, body in variants(EVERYTHING):
        try:
            responses_client.request(body, "m")  # type: ignore[arg-type]
        except ProxyError as err:
            assert err.status == 400, path


def test_no_type_in_any_field_of_an_answer_or_chunk_is_a_crash() -> None:
    answer = completion({**WHOLE["choices"][0]["message"], "thinking_blocks": BLOCKS, "refusal": "r"}, "tool_calls", USAGE["usage"])
    for path, changed in variants(answer):
        try:
            responses_client.response(changed, "m", EVERYTHING)  # type: ignore[arg-type]
        except ProxyError:
            pass
    for path, chunks in variants([*interleaved(5)[:12], USAGE], depth=2):
        translator = responses_client_stream.stream(EVERYTHING, "m")
        try:
            for c in chunks:  # type: ignore[union-attr]
                translator.feed(c)
        except ProxyError:
            pass
        translator.finish()
