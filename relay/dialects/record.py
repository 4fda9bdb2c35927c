"""What the rest of the proxy may know about a dialect: one frozen record per dialect.

The forwarder, the stream pipes, the error renderer and the model lists ask a `Dialect` for what
they need; none of them compares dialect names. What a record points to is pure functions (and,
for streams, small state objects).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import orjson

from relay.errors import ProxyError
from relay.shapes import Shape
from relay.usage import Meter


def whole_number(value) -> int | None:
    """A positive whole number a client gave, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class StreamTranslator(Protocol):
    def feed(self, data: dict) -> list[dict]: ...  # one event in -> the events it makes, in order

    def finish(self) -> list[dict]: ...  # the stream ended normally: the closing events still owed


@dataclass(frozen=True, slots=True)
class Pivot:
    """How a dialect converts to and from the pivot form, OpenAI chat completions (see
    `relay.dialects`). `None` where the dialect is the pivot itself or has no such side."""

    is_chat: bool = False  # the pivot itself: its requests, answers and chunks need no conversion
    # the types of every request field the conversion reads (`relay.dialects.fields`), checked first
    request_shape: Shape | None = None

    # as the client's dialect
    request_to_chat: Callable[[dict, str], dict] | None = None  # (client body, upstream model)
    answer_from_chat: Callable[[dict, str, dict], dict] | None = None  # (chat answer, model shown, client body)
    stream_from_chat: Callable[[dict, str], StreamTranslator] | None = None  # (client body, model shown)
    # as the channel's dialect
    request_from_chat: Callable[[dict, str], dict] | None = None  # (chat body, upstream model)
    answer_to_chat: Callable[[dict, str], dict] | None = None  # (channel answer, model shown)
    stream_to_chat: Callable[[dict, str], StreamTranslator] | None = None  # (chat body, model shown)
    endpoint: Callable[[dict], str] | None = None  # (chat body) -> the channel's endpoint


@dataclass(frozen=True, slots=True)
class Counting:
    """Token counting (`count_tokens`, `countTokens`) in a dialect."""

    endpoint: str  # where the channel counts, relative to its base URL
    request_from_chat: Callable[[dict, str], dict]  # (chat body, upstream model) -> count request
    read: Callable[[dict], int | None]  # the channel's answer -> tokens
    reply: Callable[[int], dict]  # tokens -> the answer a client of this dialect expects
    unwrap: Callable[[dict], dict] = lambda body: body  # a client's count request -> the request counted


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str  # shown in usage records, metrics and logs
    family: str  # dialects of one family share error bodies: an upstream's passes to the client as is
    # errors (SPEC §8, §9)
    error_body: Callable[[ProxyError], dict]
    # how a stream that fails after its first byte ends: (error, events the client was sent) -> bytes
    error_event: Callable[[ProxyError, int], bytes]
    # streams, as the client's dialect
    encode: Callable[[dict], bytes]  # one event as SSE
    stream_tail: bytes  # after the last event of a complete stream (OpenAI chat's [DONE])
    client_sse: Callable[[bytes], bool]  # (query string) -> whether a stream goes out as SSE
    asks_usage: Callable[[dict | None], bool]  # (client body) -> whether its stream reports usage
    # streams and answers, as the channel's dialect
    meter: Callable[[], Meter]
    stream_end: Callable[[dict], bool]  # the event after which the stream is complete
    stream_failure: Callable[[dict], str | None]  # an error the upstream reports inside a stream
    marked: Callable[[bytes], bool]  # a raw event worth parsing: it carries usage, an end or an error
    # model lists
    models_list: Callable[[list[str], bool], dict]  # (names, one model) -> the list's shape
    models_path: str  # where the official API lists models, relative to the passthrough base URL
    pivot: Pivot = Pivot()
    # the types of the request fields the forwarder itself reads, checked on every JSON request
    read_shape: Shape | None = None
    counting: Counting | None = None
    # (client body) -> the most output tokens it asks for, None when it names no maximum
    max_output: Callable[[dict], int | None] = lambda body: None
    out_of_credit: int = 429  # the status this dialect's provider answers when prepaid credit runs out
    # (translated request) -> the same with prompt-cache marks, for channels with `auto_cache`
    auto_cache: Callable[[dict], dict] | None = None
    # (endpoint, the query the request has) -> the query its upstream needs (Gemini streams: alt=sse)
    upstream_query: Callable[[str, bytes], bytes] = lambda endpoint, query: query
    # (status, error body) -> whether the channel's key itself was refused (rest it fleet-wide)
    key_refused: Callable[[int, bytes], bool] = lambda status, raw: status == 401

    def render_error(self, err: ProxyError) -> bytes:
        """The error's body in this dialect; an upstream's own body when it speaks this family."""
        raw = getattr(err, "raw", None)
        if raw is not None and getattr(err, "family", None) == self.family:
            return raw
        return orjson.dumps(self.error_body(err))

    def __repr__(self) -> str:
        return f"<dialect {self.name}>"
