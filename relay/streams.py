"""What the client receives of a streamed answer, chunk by chunk as the upstream sends it.

A pipe takes upstream body chunks and returns the bytes for the client, metering usage on the
way. Event streams are split into events (`sse.Decoder`) and parsed once; same-dialect streams go
out as received, translated ones are re-encoded event by event. A stream that stops before its
dialect's last event is never passed off as complete: `end()` then returns an error event.
"""

from __future__ import annotations

import re

import orjson

from . import errors, sse
from .errors import ProxyError
from .usage import Meter

_TRUNCATED = "The upstream stream ended before it was complete"
_OPENAI_LAST_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete",
                                 "image_generation.completed", "image_edit.completed"})


def error_event(dialect: str, err: ProxyError) -> bytes:
    """How a stream that fails after its first byte ends, per dialect (SPEC §9)."""
    data = errors.render(dialect, err)
    return sse.encode(data, "error") if dialect == "anthropic" else sse.encode(data)


def encode(dialect: str, event: dict) -> bytes:
    data = orjson.dumps(event)
    return sse.encode(data, event.get("type")) if dialect == "anthropic" else sse.encode(data)


class Raw:
    """Bytes through untouched: audio and anything else that is not an event stream."""

    sse = False
    failed = None
    mid_event = False

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def end(self) -> bytes:
        return b""

    def fail(self, err: ProxyError) -> bytes | None:
        return None  # nothing can say "failed" inside a binary body: the connection is cut


class _Events:
    """Decodes the upstream's events, meters them, and notices the dialect's last event."""

    sse = True
    mid_event = False  # the client only ever gets whole events (Events passes chunks on: below)

    def __init__(self, upstream: str, client: str, meter: Meter) -> None:
        self.upstream = upstream
        self.client = client
        self.meter = meter
        self.complete = False
        self.failed: str | None = None  # an error the upstream reported inside the stream
        self._decoder = sse.Decoder()

    def _parse(self, block: bytes) -> dict | None:
        event = sse.parse(block)
        if event is None or not event.data:
            return None
        if event.data == "[DONE]":
            self.complete = True
            return None
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        self.meter.event(data)
        self._notice_end(data)
        return data

    def _notice_end(self, data: dict) -> None:
        if "error" in data and self.upstream != "anthropic" or data.get("type") == "error":
            error = data.get("error")
            message = error.get("message") if isinstance(error, dict) else error
            self.failed = str(message or data.get("message") or "error")
            self.complete = True
        elif self.upstream == "anthropic":
            if data.get("type") == "message_stop":
                self.complete = True
        elif self.upstream == "gemini":
            if any(c.get("finishReason") for c in data.get("candidates") or ()) or (
                data.get("promptFeedback") or {}
            ).get("blockReason"):
                self.complete = True
        elif data.get("type") in _OPENAI_LAST_EVENTS:
            self.complete = True  # the Responses API and image streams send no [DONE]

    def fail(self, err: ProxyError) -> bytes:
        return error_event(self.client, err)

    def _tail(self) -> list[dict]:
        out = []
        for block in self._decoder.flush():
            data = self._parse(block)
            if data is not None:
                out.append(data)
        return out


# What marks an event worth parsing when the stream is only passed on: the ones that carry
# usage, say the stream is over, or report an error. The rest are only counted. These run on
# every event, so they look where each mark sits rather than run a regex over the event (which
# cost ~3 µs, a twentieth of a chunk's whole CPU in bench/).


def _openai_marked(block: bytes) -> bool:
    # The Responses API and image streams end with an event of their own (no [DONE]): named on
    # the event's first line, or where a server leaves names out, by the `type` its data starts with.
    # (Searches are bounded by find's start and end, not by slicing: a slice is a copy.)
    if block.startswith(b"event:"):
        head = block[: block.find(b"\n")]
    elif block.find(b'"type":', 0, 32) != -1:
        head = block[:96]
    else:
        head = None
    if head is not None and (b".completed" in head or b".failed" in head or b".incomplete" in head
                             or b"error" in head):
        return True
    if block.find(b"[DONE]", 0, 16) != -1 or b'"error"' in block:
        return True
    # `"usage": null` rides on every chunk once usage is asked for; only an object counts. It
    # is the chunk's last field, so a search from the end finds it at once.
    at = block.rfind(b'"usage"')
    return at != -1 and block.find(b"{", at + 7, at + 10) != -1


_ANTHROPIC_TYPES = re.compile(rb"message_(?:start|delta|stop)|error")


def _anthropic_marked(block: bytes) -> bool:
    if block.startswith(b"event:"):  # the event's type is on its first line
        line = block[: block.find(b"\n")]
        return b"message_" in line or b"error" in line
    return _ANTHROPIC_TYPES.search(block) is not None


_GEMINI_MARKS = re.compile(rb'"(?:finishReason|blockReason|error)"')
_MARKED = {
    "openai": _openai_marked,
    "anthropic": _anthropic_marked,
    "gemini": lambda block: _GEMINI_MARKS.search(block) is not None,
}


class Events(_Events):
    """A same-dialect event stream: passed on as received.

    When the upstream will report usage, only the events that carry it, end the stream or
    report an error are parsed (a byte search decides); the others are only counted, for an
    estimate should the stream break first. When it will not (an OpenAI stream nobody asked usage
    of), every event is parsed so the estimate is made from the text itself.
    `drop_usage_chunk` removes OpenAI's usage-only chunk when the proxy asked for it and the
    client did not.
    """

    def __init__(self, dialect: str, meter: Meter, drop_usage_chunk: bool = False,
                 expect_usage: bool = True) -> None:
        super().__init__(dialect, dialect, meter)
        self._drop_usage_chunk = drop_usage_chunk
        self._marked = _MARKED[dialect] if expect_usage else None

    def _scan(self, block: bytes) -> dict | None:
        if self._marked is None or self._marked(block):
            return self._parse(block)
        self.meter.raw(len(block))
        return None

    @property
    def mid_event(self) -> bool:
        # Chunks go on as received, so the client may hold half an event.
        return not self._drop_usage_chunk and self._decoder.pending

    def feed(self, chunk: bytes) -> bytes:
        blocks = self._decoder.feed(chunk)
        if not self._drop_usage_chunk:
            for block in blocks:
                self._scan(block)
            return chunk
        return self._without_usage_chunk(blocks)

    def _without_usage_chunk(self, blocks: list[bytes]) -> bytes:
        kept = []
        for block in blocks:
            data = self._scan(block)
            if data is not None and data.get("choices") == [] and data.get("usage"):
                continue
            kept.append(block)
        return b"".join(kept)

    def end(self) -> bytes:
        rest = self._decoder.flush()
        if self._drop_usage_chunk:
            tail = self._without_usage_chunk(rest)  # whole events only went out: send the last
        else:
            tail = b""  # its bytes went out with the chunks
            for block in rest:
                self._scan(block)
        return tail if self.complete else tail + self.fail(ProxyError(502, _TRUNCATED))


class GeminiArray(_Events):
    """Gemini's `streamGenerateContent` without `alt=sse`: a JSON array, sent element by element.

    The upstream is always asked for SSE, so metering and error handling are the same as for
    event streams; this pipe only re-frames each event as an array element.
    """

    sse = False

    def __init__(self, meter: Meter) -> None:
        super().__init__("gemini", "gemini", meter)
        self._opened = False

    def _element(self, data: bytes) -> bytes:
        head = b",\r\n" if self._opened else b"["
        self._opened = True
        return head + data

    def feed(self, chunk: bytes) -> bytes:
        out = []
        for block in self._decoder.feed(chunk):
            event = sse.parse(block)
            if event is not None and event.data and self._parse(block) is not None:
                out.append(self._element(event.data.encode()))
        return b"".join(out)

    def end(self) -> bytes:
        tail = b"".join(self._element(orjson.dumps(d)) for d in self._tail())
        if not self.complete:
            return tail + self.fail(ProxyError(502, _TRUNCATED))
        return tail + (b"]" if self._opened else b"[]")

    def fail(self, err: ProxyError) -> bytes:
        return self._element(errors.render("gemini", err)) + b"]"


class Translated(_Events):
    """An upstream stream in another dialect, translated event by event."""

    def __init__(self, upstream: str, client: str, meter: Meter, translator) -> None:
        super().__init__(upstream, client, meter)
        self._translator = translator

    def _out(self, events: list[dict]) -> bytes:
        return b"".join(encode(self.client, e) for e in events)

    def feed(self, chunk: bytes) -> bytes:
        out = []
        for block in self._decoder.feed(chunk):
            data = self._parse(block)
            if data is not None:
                out.append(self._out(self._translator.feed(data)))
        return b"".join(out)

    def end(self) -> bytes:
        out = [self._out(self._translator.feed(d)) for d in self._tail()]
        if not self.complete:
            return b"".join(out) + self.fail(ProxyError(502, _TRUNCATED))
        out.append(self._out(self._translator.finish()))
        if self.client == "openai":
            out.append(b"data: [DONE]\n\n")
        return b"".join(out)
