"""Which passed-on events get parsed: every one that carries usage, ends the stream or reports
an error, whatever the spelling; never the plain content chunks (they are only counted)."""

from __future__ import annotations

import orjson
import pytest

from relay import sse
from relay.dialects import ANTHROPIC, GEMINI, OPENAI, RESPONSES
from relay.dialects.anthropic import marked as _anthropic_marked
from relay.dialects.openai import marked as _openai_marked
from relay.dialects.translation import between
from relay.errors import ProxyError, redact
from relay.streams import Events, JsonArray, Translated, TranslatedArray

OPENAI_MARKED = [
    b"data: [DONE]\n\n",
    b"data:[DONE]\n\n",
    b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n',
    b'data: {"id":"c","choices":[],"usage": {"prompt_tokens":3}}\n\n',
    b'data: {"usage":{"prompt_tokens":3},"id":"c","choices":[]}\n\n',  # usage not last
    b'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n',
    b'data: {"id":"c","error":"boom"}\n\n',
    b'event: response.completed\ndata: {"type":"response.completed","response":{"usage":{}}}\n\n',
    b'event: response.failed\ndata: {"type":"response.failed"}\n\n',
    b'event: response.incomplete\ndata: {"type":"response.incomplete"}\n\n',
    b'data: {"type":"response.completed","response":{"usage":{"input_tokens":1}}}\n\n',  # no event line
    b'event: error\ndata: {"type":"error","message":"x"}\n\n',
    b'event: image_generation.completed\ndata: {"type":"image_generation.completed"}\n\n',
    b'event: image_edit.completed\ndata: {"type":"image_edit.completed"}\n\n',
]
OPENAI_PLAIN = [
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}],'
    b'"usage":null}\n\n',
    b'data: {"id":"c","choices":[{"delta":{"content":"say \\"usage\\": {1}"}}]}\n\n',
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"x"}\n\n',
    b'data: {"type":"response.output_text.delta","delta":"x"}\n\n',
]


@pytest.mark.parametrize("block", OPENAI_MARKED)
def test_openai_events_worth_parsing(block):
    assert _openai_marked(block)


@pytest.mark.parametrize("block", OPENAI_PLAIN)
def test_openai_content_chunks_are_only_counted(block):
    assert not _openai_marked(block)


@pytest.mark.parametrize("block, marked", [
    (b'event: message_start\ndata: {"type":"message_start","message":{"usage":{}}}\n\n', True),
    (b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":5}}\n\n', True),
    (b'event: message_stop\ndata: {"type":"message_stop"}\n\n', True),
    (b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n', True),
    (b'data: {"type":"message_delta","usage":{"output_tokens":5}}\n\n', True),  # no event line
    (b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"message_stop"}}\n\n',
     False),
    (b'event: ping\ndata: {"type": "ping"}\n\n', False),
])
def test_anthropic_events_worth_parsing(block, marked):
    assert _anthropic_marked(block) is marked


def test_a_passed_on_stream_is_metered_from_its_marked_events_only():
    meter = OPENAI.meter()
    pipe = Events(OPENAI, meter, drop_usage_chunk=True)
    out = b"".join(pipe.feed(block) for block in [*OPENAI_PLAIN[:2], OPENAI_MARKED[2], OPENAI_MARKED[0]])
    assert out == OPENAI_PLAIN[0] + OPENAI_PLAIN[1] + b"data: [DONE]\n\n"  # the usage chunk dropped
    assert pipe.complete and pipe.end() == b""
    assert (meter.usage.input_tokens, meter.usage.output_tokens) == (3, 2)


RESPONSES_EVENTS = [
    b'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{}}\n\n',
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":1,'
    b'"delta":"x"}\n\n',
]


def test_a_passed_on_responses_stream_that_breaks_off_ends_with_the_next_sequence_number():
    pipe = Events(RESPONSES, RESPONSES.meter())
    out = pipe.feed(RESPONSES_EVENTS[0]) + pipe.feed(RESPONSES_EVENTS[1][:40]) + pipe.feed(RESPONSES_EVENTS[1][40:])
    assert out == b"".join(RESPONSES_EVENTS)
    event = sse.parse(pipe.end())
    assert event.event == "error" and orjson.loads(event.data)["sequence_number"] == 2


def test_a_translated_responses_stream_that_fails_numbers_its_error_after_its_events():
    body = {"model": "m", "input": "hi", "stream": True}
    translation = between(RESPONSES, ANTHROPIC)
    chat = translation.to_chat(body, "m")
    pipe = Translated(ANTHROPIC, RESPONSES, ANTHROPIC.meter(), translation.stream(body, chat, "m"))
    start = {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3}}}
    text = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "hello"}}
    out = pipe.feed(b"".join(sse.encode(orjson.dumps(e), e["type"]) for e in (start, text)))
    with pytest.raises(ProxyError):  # the upstream reports an error inside its stream
        pipe.feed(sse.encode(orjson.dumps({"type": "error", "error": {"type": "api_error", "message": "x"}}), "error"))
    out += pipe.fail(ProxyError(502, "x"))
    numbers = [orjson.loads(sse.parse(block).data)["sequence_number"] for block in out.split(b"\n\n")[:-1]]
    assert numbers == list(range(len(numbers))) and len(numbers) > 3
    assert sse.parse(out.split(b"\n\n")[-2] + b"\n\n").event == "error"


def _claude_on_gemini_array() -> TranslatedArray:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    translation = between(GEMINI, ANTHROPIC)
    chat = translation.to_chat(body, "claude-x", streaming=True)
    return TranslatedArray(ANTHROPIC, GEMINI, ANTHROPIC.meter(), translation.stream(body, chat, "claude-x"))


CLAUDE_EVENTS = [
    {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hel"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
    {"type": "message_stop"},
]


@pytest.mark.parametrize("events, ends", [(CLAUDE_EVENTS, "finished"), (CLAUDE_EVENTS[:3], "truncated"),
                                          (CLAUDE_EVENTS[:3], "failed"), ([], "failed")])
def test_a_translated_stream_for_a_client_without_sse_is_one_json_array(events, ends):
    pipe = _claude_on_gemini_array()
    raw = b"".join(sse.encode(orjson.dumps(e), e["type"]) for e in events)
    out = b"".join(pipe.feed(raw[i:i + 50]) for i in range(0, len(raw), 50))  # events split anywhere
    out += pipe.fail(ProxyError(502, "upstream gone")) if ends == "failed" else pipe.end()
    assert not pipe.sse
    items = orjson.loads(out)  # one whole array, however the stream ended
    if ends == "finished":
        assert "".join(p["text"] for i in items for p in i["candidates"][0]["content"]["parts"]) == "hello"
        assert items[-1]["candidates"][0]["finishReason"] == "STOP" and items[-1]["usageMetadata"]
    else:
        assert set(items[-1]) == {"error"} and items[-1]["error"]["code"] == 502


def _scrub(data: bytes) -> bytes:
    return redact(data.decode(), "AIza-the-channel-key-0123456789").encode()


GEMINI_TEXT = b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"try sk-test-1234567890abcdef"}]}}]}'
GEMINI_ERROR = b'data: {"error":{"code":500,"message":"error","status":"INTERNAL","key":"AIza-the-channel-key-0123456789"}}'


def test_a_json_array_stream_scrubs_only_error_events_even_when_the_last_has_no_blank_line():
    # The model's own text is never rewritten, whether its event ends with a blank line or is the
    # stream's unterminated last one; an error event is scrubbed either way.
    for last in (GEMINI_TEXT, GEMINI_TEXT + b"\n\n"):
        pipe = JsonArray(GEMINI, GEMINI.meter(), _scrub)
        out = pipe.feed(GEMINI_TEXT + b"\n\n" + last) + pipe.end()
        assert out.count(b"sk-test-1234567890abcdef") == 2
    pipe = JsonArray(GEMINI, GEMINI.meter(), _scrub)
    out = pipe.feed(GEMINI_TEXT + b"\n\n") + pipe.feed(GEMINI_ERROR) + pipe.end()
    assert b"sk-test-1234567890abcdef" in out and b"AIza-the-channel-key" not in out


def test_every_error_event_is_scrubbed_even_when_two_report_the_same_message():
    key = b"AIza-the-channel-key-0123456789"
    # (without a message, the failure each reports is the same string object, "error")
    error = b'data: {"error":{"code":500,"status":"INTERNAL","key":"' + key + b'"}}\n\n'
    pipe = Events(GEMINI, GEMINI.meter(), scrub=_scrub)
    out = pipe.feed(error + error)
    assert out.count(b"[redacted]") == 2 and key not in out
