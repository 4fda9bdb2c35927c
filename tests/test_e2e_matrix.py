"""Every client on every channel, end to end (issue #15): the official SDKs as clients (`openai`
chat completions and `client.responses`, `anthropic`, `google-genai`) through a real proxy process
to the fake upstream, on an OpenAI chat channel (`responses = false`), an Anthropic channel and a
Gemini channel — the twelve pairings, three of them native — plus the Responses API on a channel
that serves it, each streamed and not.

Each pairing covers: a plain answer with a system prompt, a tool round trip (one call and parallel
calls, and one with thinking on, which must survive it), JSON-schema output, thinking shown in the
client's own form, finish reasons (stop, tool calls, length, content filter), usage with cached and
reasoning tokens in the client's shape and in the usage record, a stream the upstream cuts (the
SDK raises its error; the bytes end with the dialect's error event), and upstream 4xx/5xx as the
client's own error types. Then token counting across dialects, Gemini streams without `alt=sse`
(one JSON array), and every answer and event of the OpenAI and Anthropic dialects validated
against their SDK's types.

The fake upstream checks requests as strictly as the real APIs (tool ids paired, thinking given
back, function responses matching calls) and picks its behaviour from the channel's key (`cut`,
`fail-<status>`) and `x-fake-*` headers; see tests/fake_upstream.py.
"""

from __future__ import annotations

import base64
import json
import typing

import httpx
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

import servers
from matrix_clients import CLIENTS, TIME, WEATHER, Ask
from matrix_raw import raw_request, sse_events

# channel -> (type, base URL, extra settings, model glob, the model the tests ask for)
CHANNELS = {
    "chat": ("openai", "{up}/v1", "responses = false", "deepseek-*", "deepseek-chat"),
    "claude": ("anthropic", "{up}", "", "claude-*", "claude-sonnet-4-5"),
    "gemini": ("gemini", "{up}", "", "gemini-*", "gemini-2.5-flash"),
    "native": ("openai", "{up}/v1", "responses = true", "gpt-*", "gpt-4.1"),
}
# A model-name prefix -> the fake upstream's behaviour its channel's key asks for.
FAULTS = {"": "key", "cut-": "cut", "e400-": "fail-400", "e429-": "fail-429", "e500-": "fail-500"}
# How each channel's dialect says "stopped at the token limit" and "filtered" (the fake's x-fake-finish).
LENGTH = {"chat": "length", "claude": "max_tokens", "gemini": "MAX_TOKENS", "native": "max_output_tokens"}
FILTERED = {"chat": "content_filter", "claude": "refusal", "gemini": "SAFETY", "native": "content_filter"}

PAIRINGS = [(client, channel) for client in CLIENTS for channel in ("chat", "claude", "gemini")]
PAIRINGS.append(("responses", "native"))
STREAMED = [False, True]
SYSTEM = "You are a terse assistant."
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "ok": {"type": "boolean"}},
          "required": ["city", "ok"], "additionalProperties": False}


def _config() -> str:
    out = ['[groups.default]\nmultiplier = 1\n[[tokens]]\nname = "alice"\nkey = "sk-ax-alice"\ngroup = "default"']
    for name, (kind, base, extra, glob, _) in CHANNELS.items():
        for prefix, key in FAULTS.items():
            out.append(f'[[channels]]\nname = "{prefix}{name}"\ntype = "{kind}"\nbase_url = "{base}"\n'
                       f'keys = ["{key}"]\nmodels = ["{prefix}{glob}"]\n{extra}')
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    server = servers.proxy(_config().replace("{up}", upstream.url), tmp_path_factory.mktemp("matrix"))
    try:
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.stderr()


@pytest.fixture(scope="module")
def connections(proxy) -> dict:
    """One SDK client per dialect for the whole module (making one costs ~0.1 s)."""
    return {name: client.connect(proxy.url) for name, client in CLIENTS.items()}


def pairings(streamed=STREAMED):
    return pytest.mark.parametrize("client_name,channel,stream", [
        pytest.param(client, channel, stream, id=f"{client}-on-{channel}-{'stream' if stream else 'whole'}")
        for client, channel in PAIRINGS for stream in streamed])


def model(channel: str, prefix: str = "", suffix: str = "") -> str:
    return prefix + CHANNELS[channel][4] + suffix


def sent(received) -> dict:
    return json.loads(base64.b64decode(received.last()["body_b64"]))


def upstream_system(channel: str, body: dict) -> str:
    """The system prompt as the channel's dialect carries it."""
    if channel == "native":
        return body.get("instructions") or ""
    if channel == "chat":
        first = body["messages"][0]
        content = first["content"] if first["role"] in ("system", "developer") else ""
        return content if isinstance(content, str) else "".join(p["text"] for p in content)
    if channel == "claude":
        system = body.get("system") or ""
        return system if isinstance(system, str) else "".join(b["text"] for b in system)
    return "".join(p["text"] for p in (body.get("systemInstruction") or {}).get("parts", []))


def record(proxy, request_id: str, client, channel: str | None) -> dict:
    line = servers.usage_record(proxy, request_id)
    assert line["dialect"] == client.name and line["channel"] == channel
    return line


@pairings()
def test_plain_answer_with_system_prompt(proxy, connections, received, client_name, channel, stream):
    client = CLIENTS[client_name](connections[client_name])
    turn = client.ask(model(channel), Ask(prompt="Hello there", system=SYSTEM), stream)
    assert (turn.text, turn.reasoning, turn.finish, turn.calls) == ("echo: Hello there", "", client.words.stop, [])
    assert upstream_system(channel, sent(received)) == SYSTEM
    record(proxy, turn.request_id, client, channel)


@pytest.mark.parametrize("parallel", [False, True], ids=["one-call", "parallel"])
@pairings()
def test_tool_round_trip(proxy, connections, received, client_name, channel, stream, parallel):
    client = CLIENTS[client_name](connections[client_name])
    first = client.ask(model(channel, suffix="-parallel" if parallel else ""), Ask(
        prompt="Weather and time in Paris?", tools=(WEATHER, TIME)), stream)
    expected = [("get_weather", {"city": "test"}), ("get_time", {"city": "test", "tz": "test"})][:2 if parallel else 1]
    assert [(name, args) for _, name, args in first.calls] == expected
    assert first.finish == client.words.tools and first.text == ""
    if (client_name, channel) != ("gemini", "gemini"):
        assert all(call_id for call_id, _, _ in first.calls)  # Gemini's own calls may come without ids
    results = [f"sunny-{i}" for i in range(len(first.calls))]
    second = client.answer_calls(first, results, stream)
    assert second.text.startswith("tool result: ") and all(r in second.text for r in results), second.text
    assert second.finish == client.words.stop and second.calls == []


@pairings()
def test_thinking_survives_a_tool_round_trip(proxy, connections, received, client_name, channel, stream):
    client = CLIENTS[client_name](connections[client_name])
    first = client.ask(model(channel), Ask(prompt="Weather in Paris?", tools=(WEATHER,), think=True), stream)
    assert [name for _, name, _ in first.calls] == ["get_weather"]
    assert first.reasoning == "thinking: echo: Weather in Paris?"
    second = client.answer_calls(first, ["sunny"], stream)
    assert second.text.startswith("tool result: ") and "sunny" in second.text
    # The channel thought again: it was given back the thinking that led to the call.
    assert second.reasoning == f"thinking: {second.text}"
    body = sent(received)
    if channel == "claude":  # signed thinking first in the calling turn, as Anthropic requires
        turn = body["messages"][-2]["content"]
        assert turn[0]["type"] == "thinking" and turn[0]["thinking"] == first.reasoning
        assert turn[0]["signature"].startswith("sig-") and turn[1]["type"] == "tool_use"
    elif channel == "gemini":  # the call's thought signature, as Gemini requires
        call = next(p for c in body["contents"] for p in c["parts"] if "functionCall" in p)
        assert call["thoughtSignature"] == "c2lnLTE="
    elif channel == "chat":  # DeepSeek wants its reasoning back on a tool-call turn
        turn = next(m for m in body["messages"] if m.get("tool_calls"))
        assert turn["reasoning_content"] == first.reasoning


@pairings()
def test_json_schema_output(proxy, connections, received, client_name, channel, stream):
    client = CLIENTS[client_name](connections[client_name])
    turn = client.ask(model(channel), Ask(prompt="Weather in Paris as JSON", schema=SCHEMA), stream)
    assert json.loads(turn.text) == {"city": "test", "ok": True}
    assert turn.finish == client.words.stop and turn.calls == []


@pairings()
def test_thinking_in_the_clients_own_form(proxy, connections, received, client_name, channel, stream):
    client = CLIENTS[client_name](connections[client_name])
    turn = client.ask(model(channel), Ask(prompt="2+2?", think=True), stream)
    assert (turn.reasoning, turn.text) == ("thinking: echo: 2+2?", "echo: 2+2?")
    assert turn.finish == client.words.stop


@pairings()
def test_length_finish_and_max_tokens(proxy, connections, received, client_name, channel, stream):
    client = CLIENTS[client_name](connections[client_name])
    turn = client.ask(model(channel), Ask(limit=7, headers={"x-fake-finish": LENGTH[channel]}), stream)
    assert turn.finish == client.words.length
    body = sent(received)
    limit = {"chat": body.get("max_completion_tokens") or body.get("max_tokens"), "claude": body.get("max_tokens"),
             "gemini": (body.get("generationConfig") or {}).get("maxOutputTokens"),
             "native": body.get("max_output_tokens")}[channel]
    assert limit == 7


@pairings()
def test_content_filter_finish(proxy, connections, received, client_name, channel, stream):
    client = CLIENTS[client_name](connections[client_name])
    turn = client.ask(model(channel), Ask(headers={"x-fake-finish": FILTERED[channel]}), stream)
    assert turn.finish == client.words.filtered


@pairings()
def test_usage_with_cached_and_reasoning_tokens(proxy, connections, received, client_name, channel, stream):
    client = CLIENTS[client_name](connections[client_name])
    turn = client.ask(model(channel), Ask(headers={"x-fake-usage": "100,40,30,12"}), stream)
    assert turn.usage == client.expected_usage(100, 40, 30, 12)
    line = record(proxy, turn.request_id, client, channel)
    assert line["usage"] == {"input_tokens": 100, "output_tokens": 40, "cached_input_tokens": 30,
                             "reasoning_tokens": 12, "cache_write_tokens": 0}
    assert line["estimated"] is False


@pairings(streamed=[True])
def test_upstream_cut_mid_stream_is_the_sdks_error(proxy, connections, received, client_name, channel, stream):
    client = CLIENTS[client_name](connections[client_name])
    cut = model(channel, "cut-", f"-{client_name}")  # a model of its own: its usage line is this request's
    with pytest.raises(client.stream_error):
        client.ask(cut, Ask(prompt="a long story"), stream)
    assert received.last()["credential"] == "cut"
    line = servers.wait_records(proxy, lambda r: r["model"] == cut, 1)[0]
    assert line["estimated"] is True and line["dialect"] == client.name and line["channel"] == "cut-" + channel


@pytest.mark.parametrize("client_name,channel", PAIRINGS, ids=[f"{c}-on-{ch}" for c, ch in PAIRINGS])
def test_upstream_cut_mid_stream_ends_with_the_dialects_error_event(proxy, received, client_name, channel):
    path, headers, body = raw_request(client_name, model(channel, "cut-"), stream=True)
    response = httpx.post(proxy.url + path, headers=headers, json=body, timeout=20)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.content)
    name, last = events[-1]
    kinds = [data.get("type") for _, data in events]
    if client_name == "openai":  # an `error` object on a data line, and no [DONE]
        assert set(last) == {"error"} and last["error"]["message"] and b"[DONE]" not in response.content
    elif client_name == "responses":  # an `error` event, numbered after the others, and no response.completed
        assert (name, last["type"]) == ("error", "error") and last["message"] and "response.completed" not in kinds
        assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    elif client_name == "anthropic":  # `event: error`, and no message_stop
        assert (name, last["type"], last["error"]["type"]) == ("error", "error", "api_error")
        assert "message_stop" not in kinds
    else:  # an error object, and no finishing event
        assert set(last) == {"error"} and last["error"]["status"] == "UNAVAILABLE"
        assert not any("finishReason" in c for _, data in events for c in data.get("candidates") or ())


@pytest.mark.parametrize("cut", [False, True], ids=["whole", "cut"])
@pytest.mark.parametrize("channel", ["chat", "claude", "gemini"])
def test_gemini_stream_without_alt_sse_is_one_json_array(proxy, received, channel, cut):
    path, headers, body = raw_request("gemini", model(channel, "cut-" if cut else ""), stream=True, alt_sse=False)
    response = httpx.post(proxy.url + path, headers=headers, json=body, timeout=20)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    items = response.json()  # one JSON array, whole even when the upstream broke off
    assert isinstance(items, list) and items
    if cut:
        assert set(items[-1]) == {"error"} and items[-1]["error"]["code"] == 502
        return
    parts = [p for item in items for p in item["candidates"][0]["content"]["parts"]]
    assert "".join(p["text"] for p in parts if not p.get("thought")) == "echo: Hi"
    assert "".join(p["text"] for p in parts if p.get("thought")) == "thinking: echo: Hi"
    assert items[-1]["candidates"][0]["finishReason"] == "STOP" and items[-1]["usageMetadata"]["totalTokenCount"]


@pytest.mark.parametrize("status", [400, 429, 500])
@pairings()
def test_upstream_error_as_the_clients_own_error_type(proxy, connections, received, client_name, channel, stream,
                                                      status):
    client = CLIENTS[client_name](connections[client_name])
    with pytest.raises(client.errors[status]) as info:
        client.ask(model(channel, f"e{status}-"), Ask(), stream)
    client.check_error(info.value, status)
    assert received.last()["credential"] == f"fail-{status}"


# -- counting tokens (SPEC §6: the target's own counting endpoint, else an estimate) -------------

@pytest.mark.parametrize("client_name", ["anthropic", "gemini"])
@pytest.mark.parametrize("channel", ["claude", "gemini", "chat"])
def test_count_tokens_across_dialects(proxy, connections, received, client_name, channel):
    client = CLIENTS[client_name](connections[client_name])
    tokens, request_id = client.count(model(channel), "How many tokens is this? " * 20, SYSTEM)
    if channel == "chat":  # OpenAI-style channels have no counting endpoint: estimated, no channel asked
        line = record(proxy, request_id, client, None)
        assert received.all() == [] and line["estimated"] is True
        assert 100 <= tokens <= 200
        return
    seen = received.last()
    assert seen["path"] == {"claude": "/v1/messages/count_tokens",
                            "gemini": f"/v1beta/models/{model(channel)}:countTokens"}[channel]
    assert tokens == max(1, len(base64.b64decode(seen["body_b64"])) // 4)  # the fake's own count
    assert record(proxy, request_id, client, channel)["estimated"] is False
    assert "How many tokens is this?" in seen["body"] and SYSTEM in seen["body"]


# -- wire shapes, validated against the SDKs' types ------------------------------------------------
# The openai and anthropic SDKs build their objects without validation, so a missing field or a
# wrong literal would pass the tests above unnoticed; google-genai validates what it reads itself.

def _by_type(union) -> dict:
    """The event classes of an SDK's event union by their `type` (a union's errors are unreadable)."""
    members = typing.get_args(typing.get_args(union)[0])
    return {typing.get_args(m.model_fields["type"].annotation)[0]: m for m in members}


_WHOLE = {"openai": ChatCompletion, "responses": Response, "anthropic": Message}
_EVENTS = {"responses": _by_type(ResponseStreamEvent), "anthropic": _by_type(RawMessageStreamEvent)}


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool-calls"])
@pytest.mark.parametrize("client_name,channel,stream", [
    pytest.param(client, channel, stream, id=f"{client}-on-{channel}-{'stream' if stream else 'whole'}")
    for client, channel in PAIRINGS if client != "gemini" for stream in STREAMED])
def test_wire_shapes_validate_against_the_sdk_types(proxy, received, client_name, channel, stream, tools):
    path, headers, body = raw_request(client_name, model(channel, suffix="-parallel" if tools else ""), tools,
                                       stream)
    response = httpx.post(proxy.url + path, headers=headers, json=body, timeout=20)
    assert response.status_code == 200, response.text
    if not stream:
        _WHOLE[client_name].model_validate(response.json())
        return
    events = sse_events(response.content)
    assert events
    for name, data in events:
        if data.get("type") == "ping":
            continue  # Anthropic's keep-alive, which the SDK skips
        kind = ChatCompletionChunk if client_name == "openai" else _EVENTS[client_name][data["type"]]
        kind.model_validate(data)
        assert name in (None, data.get("type"))  # a named event is named after its type
