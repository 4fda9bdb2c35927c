"""The proxy in-process for the fuzz tests: the app on an `httpx.MockTransport` upstream that
answers every channel dialect (valid answers, or the spoiled ones a test sets), one event loop
for all the examples of a test module, and what an answer must look like in each client dialect.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from dataclasses import dataclass

import httpx
import orjson

from app import build_app
from fuzz_cases import (
    CHAT, CHAT_ANSWER, CHAT_STREAM, COUNT_GEMINI, COUNT_MESSAGES, COUNTED, GEMINI, GEMINI_ANSWER, GEMINI_STREAM,
    MESSAGE_ANSWER, MESSAGE_STREAM, MESSAGES, RESPONSES, filled,
)
from relay import sse
from relay.config import parse

CONFIG = """
[groups.default]
multiplier = 1
[[tokens]]
name = "fuzz"
key = "sk-ax-fuzz"
group = "default"
[[channels]]
name = "oa"
type = "openai"
base_url = "https://oa.test/v1"
keys = ["oa-1", "oa-2"]  # two: sticky routing fingerprints each conversation
models = ["deepseek-*"]
[[channels]]
name = "oar"
type = "openai"
base_url = "https://oar.test/v1"
keys = ["oar-1", "oar-2"]
models = ["resp-*"]
responses = true
[[channels]]
name = "ant"
type = "anthropic"
base_url = "https://ant.test"
keys = ["ant-1", "ant-2"]
models = ["claude-*"]
[[channels]]
name = "gem"
type = "gemini"
base_url = "https://gem.test"
keys = ["gem-1", "gem-2"]
models = ["gemini-*"]
"""

# One model per channel dialect; the Responses API also has a channel that speaks it.
MODELS = {"openai": "deepseek-chat", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash",
          "responses": "resp-model"}


@dataclass(frozen=True)
class Route:
    """A client route the fuzz sends to: its dialect, how to reach it, its valid request."""

    name: str
    dialect: str  # the client's dialect, as `Dialect.name`
    body: dict
    path: str  # `{model}` is filled in
    streams: str = ""  # "sse", "array" or "" (a whole answer), unless the body's `stream` says

    def url(self, model: str) -> str:
        return self.path.replace("{model}", model)

    def request(self, model: str) -> dict:
        return filled(self.body, model)  # type: ignore[return-value]


ROUTES = {
    route.name: route
    for route in (
        Route("chat", "openai", CHAT, "/v1/chat/completions"),
        Route("chat-stream", "openai", {**CHAT, "stream": True}, "/v1/chat/completions"),
        Route("responses", "responses", RESPONSES, "/v1/responses"),
        Route("responses-stream", "responses", {**RESPONSES, "stream": True}, "/v1/responses"),
        Route("messages", "anthropic", MESSAGES, "/v1/messages"),
        Route("messages-stream", "anthropic", {**MESSAGES, "stream": True}, "/v1/messages"),
        Route("count_tokens", "anthropic", COUNT_MESSAGES, "/v1/messages/count_tokens"),
        Route("generateContent", "gemini", GEMINI, "/v1beta/models/{model}:generateContent"),
        Route("streamGenerateContent", "gemini", GEMINI, "/v1beta/models/{model}:streamGenerateContent?alt=sse", "sse"),
        Route("streamGenerateContent-array", "gemini", GEMINI, "/v1beta/models/{model}:streamGenerateContent", "array"),
        Route("countTokens", "gemini", COUNT_GEMINI, "/v1beta/models/{model}:countTokens"),
    )
}

# Every client route on every channel dialect that can serve it (natively or translated).
PAIRS = [(route, channel) for route in ROUTES for channel in ("openai", "anthropic", "gemini")] + [
    ("responses", "responses"), ("responses-stream", "responses")]


def upstream_dialect(request: httpx.Request) -> tuple[str, str]:
    """(channel dialect, what it was asked: "generate", "stream", "count", "responses")."""
    path = request.url.path
    body = _json(request.content)
    streaming = isinstance(body, dict) and body.get("stream") is True
    if path.endswith(":countTokens") or path.endswith("/count_tokens"):
        return ("gemini" if ":" in path else "anthropic"), "count"
    if ":" in path:
        return "gemini", "stream" if path.endswith(":streamGenerateContent") else "generate"
    if path.endswith("/messages"):
        return "anthropic", "stream" if streaming else "generate"
    if path.endswith("/responses"):
        return "responses", "stream" if streaming else "generate"
    return "openai", "stream" if streaming else "generate"


def encoded(value: object) -> bytes:
    """JSON, however deep (orjson writes 254 levels at most; the stdlib goes as deep as parsers read)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value).encode()


def _json(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


RESPONSE_OBJECT = {"id": "resp_1", "object": "response", "created_at": 1700000000, "status": "completed",
                   "model": "m", "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                                             "content": [{"type": "output_text", "text": "Sunny.", "annotations": []}]}],
                   "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}}
RESPONSE_EVENTS = [{"type": "response.created", "sequence_number": 0, "response": {**RESPONSE_OBJECT, "status": "in_progress"}},
                   {"type": "response.output_text.delta", "sequence_number": 1, "delta": "Sunny.", "item_id": "msg_1",
                    "output_index": 0, "content_index": 0},
                   {"type": "response.completed", "sequence_number": 2, "response": RESPONSE_OBJECT}]

# What each channel dialect answers, whole and streamed (the Responses API: a channel that serves it).
VALID = {
    "openai": (CHAT_ANSWER, CHAT_STREAM),
    "anthropic": (MESSAGE_ANSWER, MESSAGE_STREAM),
    "gemini": (GEMINI_ANSWER, GEMINI_STREAM),
    "responses": (RESPONSE_OBJECT, RESPONSE_EVENTS),
}


def _named(dialect: str, event: object) -> str | None:
    """Anthropic names each event by its type (a spoiled type names none)."""
    kind = event.get("type") if dialect == "anthropic" and isinstance(event, dict) else None
    return kind if isinstance(kind, str) else None


def _events(dialect: str, events: list) -> bytes:
    out = b"".join(sse.encode(encoded(e), _named(dialect, e)) for e in events)
    return out + (b"data: [DONE]\n\n" if dialect == "openai" else b"")


class Upstream:
    """The channels' side: a valid answer for what each request asks, or the `answer` /
    `events` a test put in place for its dialect."""

    def __init__(self) -> None:
        self.answer: dict[str, object] = {}  # dialect -> the whole answer to give instead
        self.events: dict[str, list] = {}  # dialect -> the stream events to give instead
        self.status = 200  # of the answers given instead
        self.seen: list[tuple[str, str]] = []

    def reset(self) -> None:
        self.answer, self.events, self.status, self.seen = {}, {}, 200, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        dialect, asked = upstream_dialect(request)
        self.seen.append((dialect, asked))
        if dialect in self.answer and (asked != "stream" or self.status != 200):
            return httpx.Response(self.status, content=encoded(self.answer[dialect]),
                                  headers={"content-type": "application/json"})
        if asked == "count":
            return httpx.Response(200, json=COUNTED[dialect])
        answer, events = VALID[dialect]
        if asked == "stream":
            return httpx.Response(200, content=_events(dialect, self.events.get(dialect, events)),
                                  headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=answer)


class Failures(logging.Handler):
    """Log records that carry an exception (a traceback in a server's log)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)

    def describe(self) -> str:
        record = self.records[0]
        return f"{record.getMessage()}\n{logging.Formatter().formatException(record.exc_info)}"  # type: ignore[arg-type]


class Proxy:
    """The app, its upstream and its usage records, driven from synchronous test code on one loop."""

    def __init__(self) -> None:
        self.upstream = Upstream()
        self.usage = io.BytesIO()
        self.app = build_app(parse(CONFIG), transport=httpx.MockTransport(self.upstream), usage_out=self.usage)
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(self.app, raise_app_exceptions=False),
                                        base_url="http://proxy", timeout=10)
        self.failures = Failures()
        logging.getLogger().addHandler(self.failures)
        self.sent = 0

    def post(self, path: str, body: object) -> httpx.Response:
        self.sent += 1
        async def go() -> httpx.Response:
            return await self.client.post(path, content=encoded(body),
                                          headers={"authorization": "Bearer sk-ax-fuzz", "content-type": "application/json"})
        return self.loop.run_until_complete(asyncio.wait_for(go(), 10))

    def records(self) -> list[dict]:
        self.app.runtime.usage_log.flush()
        lines = self.usage.getvalue().splitlines()
        self.usage.seek(0)
        self.usage.truncate()
        return [json.loads(line) for line in lines]

    def close(self) -> None:
        logging.getLogger().removeHandler(self.failures)
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


# -- what a client of each dialect must get -----------------------------------------------------

def error_shape(dialect: str, body: object) -> bool:
    """Whether `body` is an error as the client's SDK reads it (SPEC §8)."""
    if not isinstance(body, dict):
        return False
    error = body.get("error")
    if dialect == "anthropic":
        return body.get("type") == "error" and isinstance(error, dict) and isinstance(error.get("type"), str) \
            and isinstance(error.get("message"), str)
    if dialect == "gemini":
        return isinstance(error, dict) and isinstance(error.get("code"), int) and isinstance(error.get("message"), str) \
            and isinstance(error.get("status"), str)
    return isinstance(error, dict) and isinstance(error.get("message"), str) and isinstance(error.get("type"), str)


def stream_events(raw: bytes) -> list[dict]:
    """The JSON objects of an event stream (an untranslated one passes an upstream's other values on)."""
    decoder = sse.Decoder()
    out = []
    for block in [*decoder.feed(raw), *decoder.flush()]:
        event = sse.parse(block)
        if event is not None and event.data and event.data != "[DONE]":
            data = _json(event.data.encode())
            if isinstance(data, dict):
                out.append(data)
    return out


def stream_outcome(dialect: str, raw: bytes) -> str:
    """How a streamed answer ended: "complete", "error" (an error event in the client's
    dialect, last), or what was wrong with it."""
    events = stream_events(raw)
    if not events:
        return "no events"
    last = events[-1]
    if dialect == "openai":
        if "error" in last:
            return "error" if error_shape(dialect, last) else f"bad error event {last}"
        return "complete" if raw.rstrip().endswith(b"data: [DONE]") else "no [DONE]"
    if dialect == "responses":
        if last.get("type") == "error":
            return "error" if error_shape("openai", last) else f"bad error event {last}"
        return "complete" if last.get("type") in ("response.completed", "response.incomplete", "response.failed") else f"ends with {last.get('type')}"
    if dialect == "anthropic":
        if last.get("type") == "error":
            return "error" if error_shape(dialect, last) else f"bad error event {last}"
        return "complete" if last.get("type") == "message_stop" else f"ends with {last.get('type')}"
    if "error" in last:
        return "error" if error_shape(dialect, last) else f"bad error event {last}"
    candidates = last.get("candidates")
    finished = isinstance(candidates, list) and candidates and isinstance(candidates[0], dict) and candidates[0].get("finishReason")
    return "complete" if finished else "no finishReason"


def array_outcome(raw: bytes) -> str:
    """The same for Gemini's JSON-array stream."""
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "not a JSON array"
    if not isinstance(items, list) or not items:
        return "empty"
    last = items[-1]
    if isinstance(last, dict) and "error" in last:
        return "error" if error_shape("gemini", last) else f"bad error {last}"
    candidates = last.get("candidates") if isinstance(last, dict) else None
    first = candidates[0] if isinstance(candidates, list) and candidates else None
    return "complete" if isinstance(first, dict) and first.get("finishReason") else "no finishReason"
