"""What the client receives of a streamed answer, chunk by chunk as the upstream sends it.

A pipe takes upstream body chunks and returns the bytes for the client, metering usage on the
way. Event streams are split into events (`sse.Decoder`) and the client only ever gets whole
events: same-dialect streams go out as received, translated ones are re-encoded event by event.
An error the upstream reports inside a stream is scrubbed of keys before it goes on. A stream
that stops before its dialect's last event is never passed off as complete: `end()` then returns
an error event. The dialects' records (`relay.dialects`) say how each of this is spelt.
"""

from __future__ import annotations

from typing import Callable

import orjson

from . import sse
from .dialects import Dialect
from .errors import ProxyError
from .usage import Meter

_TRUNCATED = "The upstream stream ended before it was complete"

Scrub = Callable[[bytes], bytes]


def _unchanged(data: bytes) -> bytes:
    return data


class Raw:
    """Bytes through untouched: audio and anything else that is not an event stream."""

    sse = False
    failed = None
    complete = False

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def final(self) -> dict | None:
        return None

    def end(self) -> bytes:
        return b""

    def fail(self, err: ProxyError) -> bytes | None:
        return None  # nothing can say "failed" inside a binary body: the connection is cut


class _Events:
    """Decodes the upstream's events, meters them, and notices the dialect's last event."""

    sse = True

    def __init__(self, upstream: Dialect, client: Dialect, meter: Meter, scrub: Scrub = _unchanged) -> None:
        self.upstream = upstream
        self.client = client
        self.meter = meter
        self.scrub = scrub
        self.complete = False
        self.failed: str | None = None  # an error the upstream reported inside the stream
        self.failures = 0  # events that reported one (whatever their message, each is counted)
        self.sent = 0  # events the client was given, so an error event can be numbered after them
        self.last: dict | None = None  # the event that completed the stream
        self._decoder = sse.Decoder()

    def _parse(self, block: bytes) -> dict | None:
        raw = sse.data_of(block)
        if not raw:
            return None
        if raw == b"[DONE]":
            self.complete = True
            return None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        self.meter.event(data)
        failure = self.upstream.stream_failure(data)
        if failure is not None:
            self.failed = failure
            self.failures += 1
            self.complete = True
        elif self.upstream.stream_end(data):
            self.complete = True
            self.last = data
        return data

    def final(self) -> dict | None:
        """The whole answer a completed stream carried, where its dialect's last event has it
        (the Responses API's `response.completed`)."""
        last = self.last
        return last.get("response") if last is not None and isinstance(last.get("response"), dict) else None

    def fail(self, err: ProxyError) -> bytes:
        return self._error(err)

    def _error(self, err: ProxyError) -> bytes:
        """The end of a stream that failed: the client dialect's error event."""
        return self.client.error_event(err, self.sent)

    def _closing(self) -> bytes:
        """What follows the last event of a complete stream."""
        return self.client.stream_tail

    def _tail(self) -> list[dict]:
        out = []
        for block in self._decoder.flush():
            data = self._parse(block)
            if data is not None:
                out.append(data)
        return out


class Events(_Events):
    """A same-dialect event stream: passed on as received, whole events at a time.

    When the upstream will report usage, only the events that carry it, end the stream or
    report an error are parsed (the dialect's `marked` decides, by a byte search), and the first
    few content events, to learn their framing for an estimate; the others are only counted.
    When it will not (an OpenAI stream nobody asked usage of), every event is parsed so the
    estimate is made from the text itself. `drop_usage_chunk` removes OpenAI's usage-only chunk
    when the proxy asked for it and the client did not.
    """

    def __init__(self, dialect: Dialect, meter: Meter, drop_usage_chunk: bool = False,
                 expect_usage: bool = True, scrub: Scrub = _unchanged) -> None:
        super().__init__(dialect, dialect, meter, scrub)
        self._drop_usage_chunk = drop_usage_chunk
        self._marked = dialect.marked if expect_usage else None

    def _scan(self, block: bytes) -> tuple[dict | None, bool]:
        """(the parsed event or None, whether it must not go out as it came)"""
        meter = self.meter
        if self._marked is None or self._marked(block):
            failures = self.failures
            data = self._parse(block)
            return data, self.failures != failures
        if meter.calibrating:
            chars, failures = meter.text_chars, self.failures
            self._parse(block)
            meter.sample(len(block), chars)
            return None, self.failures != failures
        meter.raw(len(block))
        return None, False

    def feed(self, chunk: bytes) -> bytes:
        blocks = self._decoder.feed(chunk)
        if len(blocks) == 1 and blocks[0] is chunk:  # one whole event, as upstreams mostly send them
            marked, meter = self._marked, self.meter
            if marked is not None and not meter.calibrating and not marked(chunk):
                meter.raw(len(chunk))  # (most events: a content delta, only counted)
                self.sent += 1
                return chunk
            data, failed = self._scan(chunk)
            if not failed and self._drop_usage_chunk and data is not None and self._usage_only(data):
                return b""
            self.sent += 1
            return self.scrub(chunk) if failed else chunk
        return self._pass(blocks)

    def _pass(self, blocks: list[bytes]) -> bytes:
        kept = []
        for block in blocks:
            data, failed = self._scan(block)
            if failed:
                block = self.scrub(block)
            elif self._drop_usage_chunk and data is not None and self._usage_only(data):
                continue
            kept.append(block)
        self.sent += len(kept)
        return b"".join(kept)

    @staticmethod
    def _usage_only(data: dict) -> bool:
        return data.get("choices") == [] and bool(data.get("usage"))

    def end(self) -> bytes:
        tail = self._pass(self._decoder.flush())
        return tail if self.complete else tail + self.fail(ProxyError(502, _TRUNCATED))


class ArrayFraming:
    """Events sent as the elements of one JSON array (Gemini's `streamGenerateContent` without
    `alt=sse`), for a pipe over `_Events`: an error is the array's last element, and the array
    is whole either way."""

    sse = False
    _opened = False

    def _element(self, data: bytes) -> bytes:
        head = b",\r\n" if self._opened else b"["
        self._opened = True
        return head + data

    def _error(self, err: ProxyError) -> bytes:
        return self._element(self.client.render_error(err)) + b"]"

    def _closing(self) -> bytes:
        return b"]" if self._opened else b"[]"


class JsonArray(ArrayFraming, _Events):
    """A same-dialect stream that goes out as one JSON array, sent element by element.

    The upstream is always asked for SSE, so metering and error handling are the same as for
    event streams; this pipe only re-frames each event as an array element.
    """

    def __init__(self, dialect: Dialect, meter: Meter, scrub: Scrub = _unchanged) -> None:
        super().__init__(dialect, dialect, meter, scrub)

    def _elements(self, blocks: list[bytes]) -> list[bytes]:
        """Each event's data as an element; only an event that reported an error is scrubbed."""
        out = []
        for block in blocks:
            failures = self.failures
            if self._parse(block) is not None:
                data = sse.data_of(block)
                out.append(self._element(self.scrub(data) if self.failures != failures else data))
        return out

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._elements(self._decoder.feed(chunk)))

    def end(self) -> bytes:
        tail = b"".join(self._elements(self._decoder.flush()))
        if not self.complete:
            return tail + self.fail(ProxyError(502, _TRUNCATED))
        return tail + self._closing()


class Translated(_Events):
    """An upstream stream in another dialect, translated event by event."""

    def __init__(self, upstream: Dialect, client: Dialect, meter: Meter, translator) -> None:
        super().__init__(upstream, client, meter)
        self._translator = translator
        self._unsent = b""  # translated before an event the translator refused (an upstream error)

    def _out(self, events: list[dict]) -> bytes:
        encode = self.client.encode
        self.sent += len(events)
        if len(events) == 1:  # (most chunks make one event)
            return encode(events[0])
        return b"".join([encode(e) for e in events])

    def feed(self, chunk: bytes) -> bytes:
        blocks = self._decoder.feed(chunk)
        if len(blocks) == 1:  # one whole event, as upstreams mostly send them
            data = self._parse(blocks[0])
            return b"" if data is None else self._translate(data)
        out = []
        try:
            for block in blocks:
                data = self._parse(block)
                if data is not None:
                    out.append(self._translate(data))
        except ProxyError:
            self._unsent = b"".join(out)  # what came before the error still goes out, first
            raise
        return b"".join(out)

    def _translate(self, data: dict) -> bytes:
        try:
            return self._out(self._translator.feed(data))
        except (RecursionError, orjson.JSONEncodeError):  # parsers read 1024 levels, orjson writes 254
            raise ProxyError(502, "The upstream sent an event nested too deeply to be translated",
                             code="bad_upstream_answer") from None

    def end(self) -> bytes:
        out = [self._translate(d) for d in self._tail()]
        if not self.complete:
            return b"".join(out) + self.fail(ProxyError(502, _TRUNCATED))
        out.append(self._out(self._translator.finish()))
        out.append(self._closing())
        return b"".join(out)

    def final(self) -> dict | None:
        """The whole answer the client's translated stream made (a Responses `response`)."""
        made = getattr(self._translator, "response", None)
        return made if isinstance(made, dict) else None

    def fail(self, err: ProxyError) -> bytes:
        unsent, self._unsent = self._unsent, b""  # (counted in `sent` when they were translated)
        return unsent + self._error(err)


class TranslatedArray(ArrayFraming, Translated):
    """A translated stream that goes out as one JSON array (a Gemini client without `alt=sse`)."""

    def _out(self, events: list[dict]) -> bytes:
        self.sent += len(events)
        return b"".join(self._element(orjson.dumps(e)) for e in events)
