"""Google's Gemini API (`/v1beta/models/{model}:generateContent` and friends): Gemini CLI, the
google-genai SDK, Gemini channels.

Streams are SSE with `?alt=sse`, else one JSON array sent element by element. As the client's
dialect, `gemini_client.py` / `gemini_client_stream.py` convert to and from the pivot; as the
channel's, `gemini_channel.py` / `gemini_channel_stream.py`.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import orjson

from relay import sse
from relay.errors import ProxyError, kind
from relay.usage import Meter, read_gemini

from . import gemini_channel, gemini_channel_stream, gemini_client, gemini_client_stream
from .fields import GENERATE_REQUEST
from .gemini_client_input import get
from .record import Counting, Dialect, Pivot, whole_number

_METHODS = ["generateContent", "streamGenerateContent", "countTokens", "embedContent"]


def error_body(err: ProxyError) -> dict:
    return {"error": {"code": err.status, "message": err.message, "status": kind(err.status)[2]}}


def encode(event: dict) -> bytes:
    return sse.encode(orjson.dumps(event))


def _finished(data: dict) -> bool:
    candidates = data.get("candidates")
    if isinstance(candidates, list) and any(isinstance(c, dict) and c.get("finishReason") for c in candidates):
        return True
    feedback = data.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


class GeminiMeter(Meter):
    """`usageMetadata`: running totals on every streamed event, final on the one that finishes."""

    __slots__ = ()

    def answer(self, body: dict) -> None:
        meta = body.get("usageMetadata")
        if isinstance(meta, dict):
            self._set(read_gemini(meta), final=True)

    def event(self, data: dict) -> None:
        meta = data.get("usageMetadata")
        if isinstance(meta, dict):
            self._set(read_gemini(meta), final=_finished(data))
        candidates = data.get("candidates")
        for candidate in candidates if isinstance(candidates, list) else ():
            content = candidate.get("content") if isinstance(candidate, dict) else None
            parts = content.get("parts") if isinstance(content, dict) else None
            for part in parts if isinstance(parts, list) else ():
                if isinstance(part, dict):
                    self._text(part.get("text"))


def stream_failure(data: dict) -> str | None:
    if "error" not in data:
        return None
    error = data.get("error")
    return str((error.get("message") if isinstance(error, dict) else error) or "error")


_MARKS = re.compile(rb'"(?:finishReason|blockReason|error)"')


def models_list(names: list[str], single: bool) -> dict:
    items = [
        {"name": f"models/{n}", "version": "", "displayName": n, "description": "",
         "supportedGenerationMethods": _METHODS}
        for n in names
    ]
    return items[0] if single else {"models": items}


def upstream_query(endpoint: str, query: bytes) -> bytes:
    """The proxy reads Gemini streams as SSE, whatever the client chose (a client without
    `alt=sse` gets the JSON array, re-framed)."""
    if endpoint != "streamGenerateContent" or b"alt=sse" in query:
        return query
    return query + b"&alt=sse" if query else b"alt=sse"


def count_request(chat: dict, model: str) -> dict:
    body = gemini_channel.request({**chat, "stream": False}, model)
    return {"generateContentRequest": {"model": f"models/{model}", **body}}


def _counted(answer: dict) -> int | None:
    tokens = answer.get("totalTokens")
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0 else None


GEMINI = Dialect(
    name="gemini",
    family="gemini",
    error_body=error_body,
    error_event=lambda err, sent: sse.encode(orjson.dumps(error_body(err))),
    encode=encode,
    stream_tail=b"",
    client_sse=lambda query: b"alt=sse" in query,
    asks_usage=lambda body: True,
    meter=GeminiMeter,
    stream_end=_finished,
    stream_failure=stream_failure,
    marked=lambda block: _MARKS.search(block) is not None,
    models_list=models_list,
    models_path="/v1beta/models",
    pivot=Pivot(
        request_shape=GENERATE_REQUEST,
        request_to_chat=gemini_client.request,
        answer_from_chat=gemini_client.response,
        stream_from_chat=gemini_client_stream.stream,
        request_from_chat=gemini_channel.request,
        answer_to_chat=gemini_channel.response,
        stream_to_chat=gemini_channel_stream.stream,
        endpoint=gemini_channel.endpoint,
    ),
    counting=Counting(
        endpoint="countTokens",
        request_from_chat=count_request,
        read=_counted,
        reply=lambda tokens: {"totalTokens": tokens},
        unwrap=lambda body: inner if isinstance(inner := body.get("generateContentRequest"), dict) else body,
    ),
    upstream_query=upstream_query,
    max_output=lambda body: whole_number(get(get(body, "generationConfig"), "maxOutputTokens")),
    # Gemini answers an invalid key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID
    key_refused=lambda status, raw: status == 401 or status in (400, 403) and b"API_KEY_INVALID" in raw,
)


def url(base: str, endpoint: str, model: str) -> str:
    return f"{base}/v1beta/models/{quote(model, safe='')}:{endpoint}"
