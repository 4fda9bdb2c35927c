"""A fake OpenAI/Anthropic upstream fast enough not to be the bottleneck of a benchmark.

Raw asyncio protocol (uvloop when installed) with httptools' HTTP/1.1 parser: keep-alive,
Content-Length and chunked request bodies read in full, one answer per request in order.

    POST /v1/chat/completions   a fixed `chat.completion`, or with `"stream": true` an SSE stream
    POST /v1/messages           a fixed Anthropic message, or its exact stream event sequence
    GET  /healthz               200 "ok"

Streams take `x-bench-chunks` content chunks (default 50) with `x-bench-gap-ms` between them
(default 10); the first chunk goes out with the answer's head. OpenAI streams end with a
finish_reason chunk, a usage chunk when `stream_options.include_usage` is true, and
`data: [DONE]`. Every answer is deterministic: `expected_*` below return its exact bytes, so a
load driver can check bodies by equality.

With `--openai-key` / `--anthropic-key`, requests without one of those credentials get 401 (to prove a
proxy swapped the client's key for the channel's). A body that is not a JSON object gets 400.

    python bench/fake_upstream.py --port 9000        # or --fd N (an inherited listening socket)
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import sys
from functools import lru_cache

import httptools
import orjson

MODEL = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
CREATED = 1700000000
DEFAULT_CHUNKS = 50
DEFAULT_GAP_MS = 10.0
USAGE = {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
         "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                       "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}

_STREAM = re.compile(rb'"stream"\s*:\s*true')


def _json(obj) -> bytes:
    return orjson.dumps(obj)


def chat_completion() -> bytes:
    return _json({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": CREATED, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "This is a test. Benchmark answer.",
                                             "refusal": None, "annotations": []},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": USAGE, "service_tier": "default", "system_fingerprint": "fp_bench",
    })


def anthropic_message() -> bytes:
    return _json({
        "id": "msg_bench", "type": "message", "role": "assistant", "model": CLAUDE,
        "content": [{"type": "text", "text": "This is a test. Benchmark answer."}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 19, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                  "output_tokens": 10, "service_tier": "standard"},
    })


def _sse(data: bytes, event: str | None = None) -> bytes:
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def _piece(i: int) -> str:
    return f"tok{i} "


def _openai_chunk(delta: dict, finish: str | None = None, usage: dict | None = None, choices=True) -> bytes:
    chunk = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED, "model": MODEL,
             "system_fingerprint": "fp_bench",
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else []}
    if usage is not None:
        chunk["usage"] = usage
    return _sse(_json(chunk))


@lru_cache(maxsize=64)
def openai_events(chunks: int, include_usage: bool) -> tuple[tuple[bytes, ...], bytes]:
    """(one SSE event per content chunk, the tail after the last one)."""
    events = tuple(
        _openai_chunk({"role": "assistant", "content": _piece(i), "refusal": None} if i == 0 else {"content": _piece(i)})
        for i in range(chunks)
    )
    tail = _openai_chunk({}, "stop")
    if include_usage:
        tail += _openai_chunk({}, usage={**USAGE, "completion_tokens": chunks, "total_tokens": 19 + chunks},
                              choices=False)
    return events, tail + b"data: [DONE]\n\n"


@lru_cache(maxsize=64)
def anthropic_events(chunks: int) -> tuple[bytes, tuple[bytes, ...], bytes]:
    """(the head before the first delta, one event per content delta, the tail)."""
    start = {"type": "message_start", "message": {
        "id": "msg_bench", "type": "message", "role": "assistant", "model": CLAUDE, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 19, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                  "output_tokens": 1, "service_tier": "standard"}}}
    head = (_sse(_json(start), "message_start") + _sse(_json({"type": "ping"}), "ping")
            + _sse(_json({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                   "content_block_start"))
    deltas = tuple(
        _sse(_json({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": _piece(i)}}),
             "content_block_delta")
        for i in range(chunks)
    )
    tail = (_sse(_json({"type": "content_block_stop", "index": 0}), "content_block_stop")
            + _sse(_json({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                          "usage": {"output_tokens": chunks}}), "message_delta")
            + _sse(_json({"type": "message_stop"}), "message_stop"))
    return head, deltas, tail


def expected_stream_body(kind: str, chunks: int, include_usage: bool = False) -> bytes:
    """The exact (de-chunked) body a client should receive for a stream request."""
    if kind == "anthropic":
        head, deltas, tail = anthropic_events(chunks)
        return head + b"".join(deltas) + tail
    events, tail = openai_events(chunks, include_usage)
    return b"".join(events) + tail


CHAT_COMPLETION = chat_completion()
ANTHROPIC_MESSAGE = anthropic_message()


def _whole(status: bytes, body: bytes, close: bool = False) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\nx-request-id: req_bench\r\n"
            + (b"connection: close\r\n" if close else b"") + b"\r\n" + body)


_RESPONSES = {
    "chat": _whole(b"200 OK", CHAT_COMPLETION),
    "messages": _whole(b"200 OK", ANTHROPIC_MESSAGE),
    "health": b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok",
    "not_found": _whole(b"404 Not Found", b'{"error":{"message":"not found","type":"invalid_request_error"}}'),
    "bad_json": _whole(b"400 Bad Request", b'{"error":{"message":"body is not a JSON object","type":"invalid_request_error"}}'),
    "unauthorized": _whole(b"401 Unauthorized", b'{"error":{"message":"bad key","type":"authentication_error"}}'),
}
_SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
             b"x-request-id: req_bench\r\ntransfer-encoding: chunked\r\n\r\n")
_PATHS = {
    b"/v1/chat/completions": "chat", b"/chat/completions": "chat",
    b"/v1/messages": "messages", b"/messages": "messages",
    b"/healthz": "health",
}


def _framed(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Request:
    __slots__ = ("body", "chunks", "credential", "gap_ms", "keep_alive", "method", "url")

    def __init__(self) -> None:
        self.url = b""
        self.body: list[bytes] = []
        self.chunks = DEFAULT_CHUNKS
        self.gap_ms = DEFAULT_GAP_MS
        self.credential = b""
        self.keep_alive = True
        self.method = b""


class Server:
    def __init__(self, openai_keys: list[str], anthropic_keys: list[str]) -> None:
        self.openai_auth = frozenset(b"Bearer " + k.encode() for k in openai_keys) or None
        self.anthropic_keys = frozenset(k.encode() for k in anthropic_keys) or None


class Conn(asyncio.Protocol):
    """One client connection: requests are answered one at a time, in order."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.req: Request | None = None
        self.queue: list[Request] = []
        self.busy = False  # a stream is being written
        self.timer: asyncio.TimerHandle | None = None
        self.loop = asyncio.get_running_loop()

    # -- asyncio ---------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(_whole(b"400 Bad Request", b'{"error":{"message":"malformed HTTP"}}', close=True))
            self.transport.close()

    def connection_lost(self, exc) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.transport = None

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.req = Request()

    def on_url(self, url: bytes) -> None:
        self.req.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name.startswith(b"x-bench-"):
            if name == b"x-bench-chunks":
                self.req.chunks = int(value)
            elif name == b"x-bench-gap-ms":
                self.req.gap_ms = float(value)
        elif name == b"authorization" or name == b"x-api-key":
            self.req.credential = value

    def on_headers_complete(self) -> None:
        self.req.keep_alive = self.parser.should_keep_alive()
        self.req.method = self.parser.get_method()

    def on_body(self, body: bytes) -> None:
        self.req.body.append(body)

    def on_message_complete(self) -> None:
        req, self.req = self.req, None
        if self.busy:
            self.queue.append(req)
        else:
            self.answer(req)

    # -- answers ---------------------------------------------------------------------------

    def answer(self, req: Request) -> None:
        transport = self.transport
        if transport is None:
            return
        path = req.url.split(b"?", 1)[0]
        kind = _PATHS.get(path)
        if kind is None or (kind == "health") != (req.method in (b"GET", b"HEAD")):
            self.finish(req, _RESPONSES["not_found"])
            return
        if kind == "health":
            self.finish(req, _RESPONSES["health"])
            return
        allowed = self.server.openai_auth if kind == "chat" else self.server.anthropic_keys
        if allowed is not None and req.credential not in allowed:
            self.finish(req, _RESPONSES["unauthorized"])
            return
        body = req.body[0] if len(req.body) == 1 else b"".join(req.body)
        if body[:1] != b"{" or body.rstrip()[-1:] != b"}":
            self.finish(req, _RESPONSES["bad_json"])
            return
        stream = include_usage = False
        if b'"stream"' in body and _STREAM.search(body):
            # Only a candidate: confirm it is the top-level field (and read stream_options).
            payload = orjson.loads(body)
            stream = payload.get("stream") is True
            options = payload.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
        if not stream:
            self.finish(req, _RESPONSES[kind])
            return
        self.busy = True
        if kind == "chat":
            events, tail = openai_events(req.chunks, include_usage)
            head = b""
        else:
            head, events, tail = anthropic_events(req.chunks)
        transport.write(_SSE_HEAD + _framed(head + events[0]) if events else _SSE_HEAD + _framed(head))
        self.schedule(req, events, 1 if events else 0, tail)

    def schedule(self, req: Request, events, i: int, tail: bytes) -> None:
        if i >= len(events):
            self.end_stream(req, tail)
        elif req.gap_ms <= 0:
            self.loop.call_soon(self.next_event, req, events, i, tail)
        else:
            self.timer = self.loop.call_later(req.gap_ms / 1000, self.next_event, req, events, i, tail)

    def next_event(self, req: Request, events, i: int, tail: bytes) -> None:
        self.timer = None
        if self.transport is None:
            return
        self.transport.write(_framed(events[i]))
        self.schedule(req, events, i + 1, tail)

    def end_stream(self, req: Request, tail: bytes) -> None:
        self.transport.write(_framed(tail) + b"0\r\n\r\n")
        self.busy = False
        self.finish(req, b"")

    def finish(self, req: Request, data: bytes) -> None:
        transport = self.transport
        if data:
            transport.write(data)
        if not req.keep_alive:
            transport.close()
            return
        if self.queue and not self.busy:
            self.answer(self.queue.pop(0))


async def serve(port: int | None, fd: int | None, host: str, openai_keys: list[str],
                anthropic_keys: list[str]) -> None:
    loop = asyncio.get_running_loop()
    server = Server(openai_keys, anthropic_keys)
    if fd is not None:
        sock = socket.socket(fileno=fd)
        srv = await loop.create_server(lambda: Conn(server), sock=sock, backlog=4096)
    else:
        srv = await loop.create_server(lambda: Conn(server), host, port, backlog=4096, reuse_address=True)
    print(f"fake upstream listening on {srv.sockets[0].getsockname()}", file=sys.stderr, flush=True)
    async with srv:
        await srv.serve_forever()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--fd", type=int, help="serve on an inherited listening socket")
    ap.add_argument("--openai-key", action="append", default=[],
                    help="require 'Authorization: Bearer KEY' on /v1/chat/completions (repeat for several)")
    ap.add_argument("--anthropic-key", action="append", default=[],
                    help="require 'x-api-key: KEY' on /v1/messages (repeat for several)")
    args = ap.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(serve(args.port, args.fd, args.host, args.openai_key, args.anthropic_key))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
