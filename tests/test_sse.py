"""The SSE decoder: any chunking of the bytes gives the same events."""

from __future__ import annotations

import pytest

from relay import sse

STREAM = (
    b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
    + b": ping\n\n"
    + "data: {\"text\":\"h\u00e9llo \u4f60\u597d \U0001f600\"}\n\n".encode()
    + b"data: line one\ndata: line two\n\n"
    + b"data: [DONE]\n\n"
)


def decode(stream: bytes, size: int) -> list:
    decoder = sse.Decoder()
    blocks = []
    for i in range(0, len(stream), size):
        blocks += decoder.feed(stream[i:i + size])
    blocks += decoder.flush()
    return [e for e in (sse.parse(b) for b in blocks) if e is not None]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 10_000])
def test_any_chunking_same_events(size):
    events = decode(STREAM, size)
    assert [(e.event, e.data) for e in events] == [
        ("message_start", '{"type":"message_start"}'),
        (None, '{"text":"h\u00e9llo \u4f60\u597d \U0001f600"}'),
        (None, "line one\nline two"),
        (None, "[DONE]"),
    ]


@pytest.mark.parametrize("size", [1, 2, 3, 4, 13])
def test_crlf_line_endings(size):
    stream = STREAM.replace(b"\n", b"\r\n")
    assert [(e.event, e.data) for e in decode(stream, size)] == [(e.event, e.data) for e in decode(STREAM, 10_000)]


def test_chunks_of_whole_events_give_the_same_blocks_as_any_other_chunking():
    whole_events = [block + b"\n\n" for block in STREAM.split(b"\n\n") if block]
    decoder = sse.Decoder()
    blocks = []
    for chunk in whole_events:  # one event a chunk, as upstreams mostly send them
        blocks += decoder.feed(chunk)
    assert blocks == whole_events and not decoder.pending
    # an event after half of one, two in a chunk, an event with a blank line too many
    decoder = sse.Decoder()
    assert decoder.feed(b"data: a") == [] and decoder.pending
    assert decoder.feed(b"\n\n") == [b"data: a\n\n"]
    assert decoder.feed(b"data: b\n\ndata: c\n\n") == [b"data: b\n\n", b"data: c\n\n"]
    assert decoder.feed(b"data: d\n\n\n") == [b"data: d\n\n"] and decoder.pending


def test_last_event_without_blank_line_is_flushed():
    assert [e.data for e in decode(b"data: a\n\ndata: b", 3)] == ["a", "b"]


def test_comment_only_block_is_not_an_event():
    assert sse.parse(b": ping\n\n") is None


def test_encode():
    assert sse.encode(b"{}") == b"data: {}\n\n"
    assert sse.encode(b"{}", "error") == b"event: error\ndata: {}\n\n"


@pytest.mark.parametrize("block", [
    b'data: {"a": 1}\n\n',
    b'event: message_start\ndata: {"type": "message_start"}\n\n',
    b'data:{"a": 1}\n\n',  # no space after the colon
    b'data: {"a":\ndata: 1}\n\n',  # two data lines
    b': ping\n\n',
    b'event: ping\n\n',
    b'id: 7\ndata: [DONE]\n\n',
    b'data: \n\n',
    'data: {"t": "東京 🌤"}\n\n'.encode(),
])
def test_data_of_agrees_with_parse(block):
    event = sse.parse(block)
    expected = event.data.encode() if event is not None and event.data else None
    assert sse.data_of(block) == expected
