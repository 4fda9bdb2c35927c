"""The fake upstream, driven directly by the official SDKs: if they parse it, the wire format is right."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types

from fake_upstream import speech_bytes
from fake_wire import WAV, embedding

ROOT = Path(__file__).resolve().parent.parent
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"},
        "detail": {"type": "object", "properties": {"hourly": {"type": "boolean"}}, "required": ["hourly"]},
        "note": {"type": "string"},
    },
    "required": ["city", "unit", "days", "detail"],
}
FILLED = {"city": "test", "unit": "celsius", "days": 1, "detail": {"hourly": True}}


@pytest.fixture(scope="module")
def base() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", "tests", "fake_upstream:app", "--fd", str(sock.fileno()),
         "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, pass_fds=(sock.fileno(),))
    sock.close()
    url = f"http://127.0.0.1:{port}"
    try:
        # The socket already listens, so this request waits in the backlog until uvicorn accepts it.
        httpx.get(f"{url}/_received", timeout=15).raise_for_status()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(autouse=True)
def clean(base: str) -> None:
    httpx.delete(f"{base}/_received").raise_for_status()


def oai(base: str, key: str = "sk-test", **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, **kwargs)


def claude(base: str, key: str = "sk-ant-test") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)


def gemini(base: str, key: str = "AIza-test", version: str | None = None) -> genai.Client:
    # google-genai defaults to API version v1; the proxy's table names v1beta: both are served.
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=base, api_version=version))


def wait_for_event(base: str, kind: str) -> list[dict]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [e for e in httpx.get(f"{base}/_events").json() if e["kind"] == kind]
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no {kind} event")


# ---- OpenAI ------------------------------------------------------------------------------------

def test_chat_non_stream_and_recording(base):
    answer = oai(base).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": [{"type": "text", "text": "hi"},
                                                               {"type": "text", "text": "there"}]}])
    assert answer.choices[0].message.content == "echo: hi there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "gpt-4o"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (10, 5, 15)
    [record] = httpx.get(f"{base}/_received").json()
    assert record["path"] == "/v1/chat/completions" and record["credential"] == "sk-test"
    assert record["headers"]["authorization"] == "Bearer sk-test"
    assert json.loads(base64.b64decode(record["body_b64"]))["model"] == "gpt-4o"


def test_every_answer_sets_a_cookie(base):
    ok = httpx.post(f"{base}/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
                    headers={"authorization": "Bearer k"})
    missing = httpx.post(f"{base}/v1/chat/completions", json={})
    assert ok.headers["set-cookie"].startswith("fake_session=")
    assert missing.status_code == 401 and missing.headers["set-cookie"] != ok.headers["set-cookie"]


def test_chat_stream_with_usage_and_knobs(base):
    stream = oai(base).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello world"}], stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-fake-chunks": "4", "x-fake-usage": "20,7,8,2", "x-fake-finish": "length"})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hello world"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 27
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 8
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 2
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_parallel_tool_calls_stream(base):
    tools = [{"type": "function", "function": {"name": "weather", "parameters": WEATHER}},
             {"type": "function", "function": {"name": "time", "parameters": {"type": "object", "properties": {}}}}]
    with oai(base).chat.completions.stream(
            model="gpt-4o-parallel", tools=tools, messages=[{"role": "user", "content": "weather?"}]) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["weather", "time"]
    assert json.loads(calls[0].function.arguments) == FILLED and json.loads(calls[1].function.arguments) == {}
    assert all(c.id.startswith("call_") for c in calls)


def test_chat_tool_result_and_json_schema(base):
    client = oai(base)
    messages = [{"role": "user", "content": "weather?"},
                {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                                                      "function": {"name": "weather", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    answer = client.chat.completions.create(model="gpt-4o", messages=messages,
                                            tools=[{"type": "function", "function": {"name": "weather"}}])
    assert answer.choices[0].message.content == "tool result: sunny"
    structured = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}],
        response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER}})
    assert json.loads(structured.choices[0].message.content) == FILLED
    with pytest.raises(openai.BadRequestError, match="preceeding message with 'tool_calls'"):
        client.chat.completions.create(model="gpt-4o", messages=[messages[0], messages[2]])


def test_chat_quotes_every_result_of_the_last_calls(base):
    calls = [{"id": f"call_{i}", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
             for i in (1, 2)]
    answer = oai(base).chat.completions.create(model="gpt-4o", tools=[{"type": "function", "function": {"name": "weather"}}],
                                               messages=[{"role": "user", "content": "weather?"},
                                                         {"role": "assistant", "tool_calls": calls},
                                                         {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                                                         {"role": "tool", "tool_call_id": "call_2", "content": "rain"}])
    assert answer.choices[0].message.content == "tool result: sunny rain"


def test_chat_deepseek_reasoning_stream(base):
    chunks = list(oai(base).chat.completions.create(
        model="deepseek-reasoner", messages=[{"role": "user", "content": "why"}], stream=True))
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert (reasoning, content) == ("thinking: echo: why", "echo: why")


def test_chat_audio_output(base):
    answer = oai(base).chat.completions.create(
        model="gpt-4o-audio-preview", modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"},
        messages=[{"role": "user", "content": "say"}])
    message = answer.choices[0].message
    assert message.content is None and message.audio.transcript == "echo: say"
    assert base64.b64decode(message.audio.data)[:4] == b"RIFF"


def test_completions_and_responses_stream(base):
    client = oai(base)
    assert client.completions.create(model="gpt-3.5-turbo-instruct", prompt="abc").choices[0].text == "echo: abc"
    with client.responses.stream(model="o3-mini", input="hello") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert final.output_text == "echo: hello" and final.status == "completed"
    assert final.usage.output_tokens_details.reasoning_tokens == 4


def test_responses_reasoning_summary_and_json_schema(base):
    client = oai(base)
    with client.responses.stream(model="o3-mini", input="hello", reasoning={"effort": "low", "summary": "auto"},
                                 tools=[{"type": "function", "name": "weather", "parameters": WEATHER}]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    reasoning, call = final.output
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == "thinking: echo: hello"
    assert call.type == "function_call" and json.loads(call.arguments) == FILLED
    assert kinds[2:4] == ["response.output_item.added", "response.reasoning_summary_part.added"]
    shaped = client.responses.create(model="gpt-4o", input="x",
                                     text={"format": {"type": "json_schema", "name": "w", "schema": WEATHER}})
    assert json.loads(shaped.output_text) == FILLED and [item.type for item in shaped.output] == ["message"]
    assert shaped.usage.input_tokens_details.cache_write_tokens == 0


def test_embeddings_base64_default_and_float(base):
    client = oai(base)
    vectors = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert [d.embedding for d in vectors.data] == [embedding("a", 8), embedding("b", 8)]
    assert json.loads(httpx.get(f"{base}/_received").json()[0]["body"])["encoding_format"] == "base64"
    floats = client.embeddings.create(model="m", input="a", encoding_format="float", dimensions=4)
    assert floats.data[0].embedding == embedding("a", 4) and floats.usage.total_tokens == 10


def test_speech_bytes_stream(base):
    with oai(base).audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="hi") as reply:
        assert reply.headers["content-type"] == "audio/mpeg"
        pieces = list(reply.iter_bytes(chunk_size=None))
    assert b"".join(pieces) == speech_bytes("hi")


def test_transcription_multipart(base):
    client = oai(base)
    text = client.audio.transcriptions.create(model="whisper-1", file=("a.wav", WAV, "audio/wav"), language="en")
    assert text.text == f"transcribed {len(WAV)} bytes sha256={hashlib.sha256(WAV).hexdigest()} model=whisper-1 language=en"
    plain = httpx.post(f"{base}/v1/audio/translations", headers={"authorization": "Bearer k"},
                       files={"file": ("a.wav", WAV)}, data={"model": "whisper-1", "response_format": "text"})
    assert plain.headers["content-type"].startswith("text/plain")
    assert plain.text.startswith(f"transcribed {len(WAV)} bytes sha256=") and "language=\n" in plain.text


def test_models_and_azure(base):
    assert "gpt-4o" in [m.id for m in oai(base).models.list()]
    azure = openai.AzureOpenAI(azure_endpoint=base, api_key="az-key", api_version="2024-10-21", max_retries=0)
    answer = azure.chat.completions.create(model="my-deploy", messages=[{"role": "user", "content": "hi"}])
    assert answer.model == "my-deploy" and answer.choices[0].message.content == "echo: hi"
    chunks = list(azure.chat.completions.create(model="my-deploy", stream=True,
                                                messages=[{"role": "user", "content": "hi"}]))
    assert chunks[0].choices == [] and "".join(c.choices[0].delta.content or "" for c in chunks[1:]) == "echo: hi"
    record = httpx.get(f"{base}/_received").json()[1]
    assert record["path"] == "/openai/deployments/my-deploy/chat/completions"
    assert record["credential"] == "az-key" and record["query"] == "api-version=2024-10-21"


# ---- Anthropic ---------------------------------------------------------------------------------

def test_anthropic_stream_thinking_and_parallel_tools(base):
    with claude(base).messages.stream(
            model="claude-parallel", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1024},
            tools=[{"name": "weather", "input_schema": WEATHER}],
            messages=[{"role": "user", "content": "weather?"}], extra_headers={"x-fake-usage": "30,9,12,0"}) as stream:
        final = stream.get_final_message()
    thinking, *calls = final.content
    assert thinking.type == "thinking" and thinking.thinking == "thinking: echo: weather?"
    assert thinking.signature.startswith("sig-")
    assert [(c.type, c.name, c.input) for c in calls] == [("tool_use", "weather", FILLED)] * 2
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens, final.usage.output_tokens) == (18, 12, 9)


def test_anthropic_tool_result_and_count(base):
    client = claude(base)
    answer = client.messages.create(model="claude-x", max_tokens=100, tools=[{"name": "w", "input_schema": WEATHER}],
                                    messages=[{"role": "user", "content": "q"},
                                              {"role": "assistant", "content": [
                                                  {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}]},
                                              {"role": "user", "content": [
                                                  {"type": "tool_result", "tool_use_id": "toolu_1",
                                                   "content": [{"type": "text", "text": "rain"}]}]}])
    assert answer.content[0].text == "tool result: rain" and answer.stop_reason == "end_turn"
    count = client.messages.count_tokens(model="claude-x", messages=[{"role": "user", "content": "q"}])
    assert count.input_tokens >= 1


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_structured_output_and_thinking_tokens(base, stream):
    ask = {"model": "claude-sonnet-4-5", "max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1024},
           "output_config": {"format": {"type": "json_schema", "schema": WEATHER}},
           "messages": [{"role": "user", "content": "weather?"}], "extra_headers": {"x-fake-usage": "30,9,12,3"}}
    if stream:
        with claude(base).messages.stream(**ask) as events:
            answer = events.get_final_message()
    else:
        answer = claude(base).messages.create(**ask)
    thinking, text = answer.content
    assert thinking.type == "thinking" and json.loads(text.text) == FILLED
    assert (answer.usage.output_tokens, answer.usage.output_tokens_details.thinking_tokens) == (9, 3)


def test_anthropic_thinking_tool_loop_wants_the_signed_thinking_back(base):
    use = {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "rain"}]}
    ask = {"model": "claude-x", "max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1024},
           "tools": [{"name": "w", "input_schema": WEATHER}]}
    client = claude(base)
    for thinking, error in (([], "must start with a thinking block"),
                            ([{"type": "thinking", "thinking": "t", "signature": "forged"}], "Invalid `signature`")):
        with pytest.raises(anthropic.BadRequestError, match=error):
            client.messages.create(**ask, messages=[{"role": "user", "content": "q"},
                                                    {"role": "assistant", "content": thinking + [use]}, result])
    signed = {"type": "thinking", "thinking": "t", "signature": "sig-1"}
    answer = client.messages.create(**ask, messages=[{"role": "user", "content": "q"},
                                                     {"role": "assistant", "content": [signed, use]}, result])
    assert answer.content[-1].text == "tool result: rain"


def test_anthropic_validation(base):
    client = claude(base)
    with pytest.raises(anthropic.BadRequestError, match="text content blocks must be non-empty"):
        client.messages.create(model="claude-x", max_tokens=10,
                               messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}])
    with pytest.raises(anthropic.BadRequestError, match="n: Extra inputs are not permitted"):
        client.messages.create(model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "x"}],
                               extra_body={"n": 2})
    with pytest.raises(anthropic.BadRequestError, match="greater than `thinking.budget_tokens`"):
        client.messages.create(model="claude-x", max_tokens=1024, thinking={"type": "enabled", "budget_tokens": 1024},
                               messages=[{"role": "user", "content": "x"}])


# ---- Gemini ------------------------------------------------------------------------------------

def test_gemini_generate_with_thoughts_and_calls(base):
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(name="weather", parameters_json_schema=WEATHER)])
    config = types.GenerateContentConfig(tools=[tool], thinking_config=types.ThinkingConfig(include_thoughts=True),
                                         automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    client = gemini(base)  # a genai.Client closes its connection pool when garbage-collected
    answer = client.models.generate_content(model="gemini-2.5-flash", contents="weather?", config=config)
    thought, call = answer.candidates[0].content.parts
    assert thought.thought and thought.text == "thinking: echo: weather?"
    assert call.function_call.name == "weather" and call.function_call.args == FILLED
    assert call.thought_signature == b"sig-1"
    assert answer.usage_metadata.thoughts_token_count == 4 and answer.usage_metadata.total_token_count == 15
    [record] = httpx.get(f"{base}/_received").json()
    assert record["credential"] == "AIza-test" and record["path"] == "/v1/models/gemini-2.5-flash:generateContent"


def test_gemini_sdk_stream(base):
    client = gemini(base, version="v1beta")
    chunks = list(client.models.generate_content_stream(
        model="gemini-2.5-flash", contents="stream me", config=types.GenerateContentConfig(
            http_options=types.HttpOptions(headers={"x-fake-usage": "10,6,3,2"}))))
    assert "".join(c.text for c in chunks) == "echo: stream me" and len(chunks) == 3
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    last = chunks[-1].usage_metadata
    assert (last.candidates_token_count, last.thoughts_token_count, last.cached_content_token_count) == (4, 2, 3)
    assert httpx.get(f"{base}/_received").json()[0]["query"] == "alt=sse"


def test_gemini_function_responses_answer_every_call(base):
    call = {"functionCall": {"name": "weather", "args": {}}}
    answer = {"functionResponse": {"name": "weather", "response": {"output": "rain"}}}
    body = {"contents": [{"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": [call, call]},
                         {"role": "user", "parts": [answer]}],
            "tools": [{"functionDeclarations": [{"name": "weather"}]}]}
    url = f"{base}/v1beta/models/gemini-2.5-flash:generateContent"
    bad = httpx.post(url, json=body, headers={"x-goog-api-key": "k"})
    assert bad.status_code == 400 and "number of function response parts" in bad.json()["error"]["message"]
    body["contents"][2]["parts"] = [answer, answer]
    good = httpx.post(url, json=body, headers={"x-goog-api-key": "k"})
    assert good.status_code == 200


def test_gemini_json_array_stream_raw(base):
    url = f"{base}/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    with httpx.stream("POST", url, json=body, headers={"x-goog-api-key": "k"}) as reply:
        assert reply.headers["content-type"].startswith("application/json")
        pieces = list(reply.iter_raw())
    assert pieces[0].startswith(b"[{") and pieces[-1] == b"]"
    items = json.loads(b"".join(pieces))
    assert "".join(i["candidates"][0]["content"]["parts"][0]["text"] for i in items) == "echo: x"
    bad = httpx.post(url.replace("streamGenerateContent", "generateContent"), params={"key": "k"},
                     json={**body, "max_tokens": 5})
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert 'Unknown name "max_tokens"' in bad.json()["error"]["message"]


# ---- faults ------------------------------------------------------------------------------------

def test_fail_statuses_in_each_dialect(base):
    with pytest.raises(openai.InternalServerError):
        oai(base, "fail-500").chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.AuthenticationError) as info:
        oai(base, "fail-401").models.list()
    assert "Incorrect API key provided: fail-401." in info.value.message
    with pytest.raises(anthropic.RateLimitError) as limited:
        claude(base, "fail-429").messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert limited.value.response.headers["retry-after"] == "1"
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    gone = httpx.post(f"{base}/v1beta/models/g:generateContent", headers={"x-goog-api-key": "fail-503"}, json={})
    assert gone.json() == {"error": {"code": 503, "message": gone.json()["error"]["message"], "status": "UNAVAILABLE"}}


def test_cut_stream_is_an_error(base):
    stream = oai(base, "cut").chat.completions.create(model="m", messages=[{"role": "user", "content": "abc"}],
                                                      stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError) as info:
        for chunk in stream:
            received.append(chunk)
    assert "incomplete chunked read" in str(info.value.__cause__)
    assert len(received) == 2


def test_hang_records_disconnect(base):
    with pytest.raises(openai.APITimeoutError):
        oai(base, "hang", timeout=0.3).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    [event] = wait_for_event(base, "disconnected")
    assert event == {"kind": "disconnected", "path": "/v1/chat/completions", "credential": "hang"}


def test_delay_holds_the_headers(base):
    started = time.monotonic()
    answer = oai(base, "delay-150").chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert answer.choices[0].message.content == "echo: x" and time.monotonic() - started >= 0.15


def test_stream_completion_and_hangstream_events(base):
    list(oai(base, "stall-50").chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                                       stream=True))
    assert wait_for_event(base, "completed")[0]["credential"] == "stall-50"
    with httpx.stream("POST", f"{base}/v1/messages", headers={"x-api-key": "hangstream", "anthropic-version": "1"},
                      json={"model": "c", "max_tokens": 5, "stream": True,
                            "messages": [{"role": "user", "content": "x"}]}) as reply:
        first = next(reply.iter_raw())
    assert first.startswith(b"event: message_start")
    assert wait_for_event(base, "disconnected")[0]["credential"] == "hangstream"


# ---- Responses function calls ------------------------------------------------------------------

def test_responses_function_call_stream_and_result(base):
    client = oai(base)
    tools = [{"type": "web_search"}, {"type": "function", "name": "weather", "parameters": WEATHER, "strict": False}]
    with client.responses.stream(model="gpt-4o", input="weather?", tools=tools) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    deltas = kinds.count("response.function_call_arguments.delta")
    assert deltas > 1 and kinds == [
        "response.created", "response.in_progress", "response.output_item.added",
        *["response.function_call_arguments.delta"] * deltas, "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    [call] = final.output
    assert (call.type, call.name, call.status) == ("function_call", "weather", "completed")
    assert json.loads(call.arguments) == FILLED and call.call_id.startswith("call_") and final.output_text == ""
    answer = client.responses.create(model="gpt-4o", tools=tools, input=[
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": call.call_id, "name": "weather", "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id,
         "output": [{"type": "input_text", "text": "sunny"}]}])
    assert answer.output_text == "tool result: sunny" and answer.output[0].type == "message"


def test_responses_parallel_and_chosen_calls(base):
    client = oai(base)
    tools = [{"type": "function", "name": "weather", "parameters": WEATHER},
             {"type": "function", "name": "time", "parameters": {"type": "object", "properties": {}}}]
    parallel = client.responses.create(model="gpt-4o-parallel", input="both?", tools=tools)
    assert [(c.name, c.id) for c in parallel.output] == [("weather", parallel.output[0].id),
                                                         ("time", parallel.output[1].id)]
    assert parallel.output[0].id != parallel.output[1].id
    chosen = client.responses.create(model="gpt-4o", input="t?", tools=tools,
                                     tool_choice={"type": "function", "name": "time"})
    assert [(c.name, c.arguments) for c in chosen.output] == [("time", "{}")]
    none = client.responses.create(model="gpt-4o", input="t?", tools=tools, tool_choice="none")
    assert none.output_text == "echo: t?"


# ---- the scripted round trip of real CLI clients -----------------------------------------------

SHELL_STRING = {"type": "object", "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
                "required": ["command"]}
SHELL_ARGV = {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}},
                                               "workdir": {"type": "string"}}, "required": ["command", "workdir"]}


def test_scripted_chat_calls_the_shell_tool_with_an_argv(base):
    client = oai(base)
    tools = [{"type": "function", "function": {"name": "weather", "parameters": WEATHER}},
             {"type": "function", "function": {"name": "shell", "parameters": SHELL_ARGV}}]
    first = client.chat.completions.create(model="deepseek-chat-cli-n1", tools=tools,
                                           messages=[{"role": "user", "content": "go"}])
    [call] = first.choices[0].message.tool_calls
    assert call.function.name == "shell"
    assert json.loads(call.function.arguments) == {"command": ["bash", "-lc", "echo aurax-tool-n1"],
                                                   "workdir": "test"}
    second = client.chat.completions.create(model="deepseek-chat-cli-n1", tools=tools, messages=[
        {"role": "user", "content": "go"}, first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "aurax-tool-n1\n"}])
    assert second.choices[0].message.content == "tool result: aurax-tool-n1\n"
    plain = client.chat.completions.create(model="deepseek-chat-cli-n1", tools=tools[:1],
                                           messages=[{"role": "user", "content": "title?"}])
    assert plain.choices[0].message.content == "echo: title?" and plain.choices[0].finish_reason == "stop"


def test_scripted_responses_calls_exec_command(base):
    tools = [{"type": "function", "name": "write_stdin", "parameters": {"type": "object", "properties": {}}},
             {"type": "function", "name": "exec_command", "parameters": {
                 "type": "object", "properties": {"cmd": {"type": "string"}, "tty": {"type": "boolean"}},
                 "required": ["cmd"], "additionalProperties": False}}]
    with oai(base).responses.stream(model="gpt-5-cli-n2", input="go", tools=tools) as stream:
        [call] = stream.get_final_response().output
    assert (call.name, json.loads(call.arguments)) == ("exec_command", {"cmd": "echo aurax-tool-n2"})


def test_scripted_anthropic_calls_bash(base):
    client = claude(base)
    tools = [{"name": "Agent", "input_schema": {"type": "object", "properties": {"prompt": {"type": "string"}},
                                                "required": ["prompt"]}},
             {"name": "Bash", "input_schema": SHELL_STRING}]
    with client.messages.stream(model="claude-sonnet-cli-n3", max_tokens=100, tools=tools,
                                messages=[{"role": "user", "content": "go"}]) as stream:
        first = stream.get_final_message()
    [call] = first.content
    assert (call.name, call.input, first.stop_reason) == ("Bash", {"command": "echo aurax-tool-n3"}, "tool_use")
    second = client.messages.create(model="claude-sonnet-cli-n3", max_tokens=100, tools=tools, messages=[
        {"role": "user", "content": "go"}, {"role": "assistant", "content": [call.model_dump()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "aurax-tool-n3"}]}])
    assert second.content[0].text == "tool result: aurax-tool-n3"


def test_scripted_gemini_calls_run_shell_command(base):
    tool = types.Tool(function_declarations=[
        types.FunctionDeclaration(name="read_file", parameters_json_schema=WEATHER),
        types.FunctionDeclaration(name="run_shell_command", parameters_json_schema=SHELL_STRING)])
    config = types.GenerateContentConfig(tools=[tool],
                                         automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    client = gemini(base, version="v1beta")
    answer = client.models.generate_content(model="gemini-2.5-flash-cli-n4", contents="go", config=config)
    [part] = answer.candidates[0].content.parts
    assert (part.function_call.name, part.function_call.args) == ("run_shell_command",
                                                                    {"command": "echo aurax-tool-n4"})
    result = types.Part.from_function_response(name="run_shell_command", response={"output": "aurax-tool-n4"})
    second = client.models.generate_content(model="gemini-2.5-flash-cli-n4", config=config, contents=[
        types.Content(role="user", parts=[types.Part(text="go")]), answer.candidates[0].content,
        types.Content(role="user", parts=[result])])
    assert second.text == 'tool result: {"output":"aurax-tool-n4"}'


def test_anthropic_mid_conversation_system_message(base):
    client = claude(base)
    answer = client.messages.create(model="claude-x", max_tokens=10, messages=[
        {"role": "user", "content": "q"}, {"role": "system", "content": [{"type": "text", "text": "Be brief."}]}])
    assert answer.content[0].text == "echo: q"
    with pytest.raises(anthropic.BadRequestError, match="first message must use the \"user\" role"):
        client.messages.create(model="claude-x", max_tokens=10, messages=[{"role": "system", "content": "x"}])
    with pytest.raises(anthropic.BadRequestError, match="Input tag 'image'"):
        client.messages.create(model="claude-x", max_tokens=10, messages=[
            {"role": "user", "content": "q"}, {"role": "system", "content": [
                {"type": "image", "source": {"type": "url", "url": "http://x/a.png"}}]}])
