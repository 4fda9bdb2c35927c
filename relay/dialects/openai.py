"""OpenAI's API (chat completions and every other `/v1` endpoint): the pivot dialect.

Translation between other dialects goes through chat completions (see `relay.dialects`), so this
record converts nothing. Azure OpenAI speaks the same dialect at other URLs with another
credential header (`AZURE`).
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from relay import sse
from relay.errors import ProxyError, kind
from relay.usage import Meter, read_openai

from .fields import CHAT_READ, CHAT_REQUEST
from .record import Dialect, Pivot, whole_number

_LAST_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete",
                          "image_generation.completed", "image_edit.completed"})
_DELTA_TEXT = ("content", "reasoning_content", "text")  # a chunk's text (legacy completions: `text`)
_CREATED = 1700000000  # lists need a creation time; the upstream's is not known here


def error_body(err: ProxyError) -> dict:
    return {"error": {"message": err.message, "type": err.kind or kind(err.status)[0], "param": err.param,
                      "code": err.code}}


def encode(event: dict) -> bytes:
    return sse.encode(orjson.dumps(event))


def asks_usage(body: dict | None) -> bool:
    options = body.get("stream_options") if isinstance(body, dict) else None
    return isinstance(options, dict) and options.get("include_usage") is True


class OpenAIMeter(Meter):
    """Chat and legacy completions (`usage`, deltas), the Responses API (`response.usage`),
    images and embeddings."""

    __slots__ = ()

    def answer(self, body: dict) -> None:
        usage = body.get("usage")
        if isinstance(usage, dict):
            self._set(read_openai(usage), final=True)

    def event(self, data: dict) -> None:
        usage = data.get("usage")
        if isinstance(usage, dict):
            self._set(read_openai(usage), final=True)  # the usage chunk comes last
        choices = data.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or choice  # legacy completions stream carries `text`
            if not isinstance(delta, dict):
                continue
            # (inline, not a call a field: this runs for every chunk of a translated stream)
            for field in _DELTA_TEXT:
                text = delta.get(field)
                if text and isinstance(text, str):
                    self.text_chars += len(text)
                    self.text_events += 1
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                if isinstance(call, dict) and isinstance(call.get("function"), dict):
                    self._text(call["function"].get("arguments"))
        kind_ = data.get("type")
        if isinstance(kind_, str):  # the Responses API
            if kind_.endswith(".delta"):
                self._text(data.get("delta"))
            response = data.get("response")
            if isinstance(response, dict) and isinstance(response.get("usage"), dict):
                self._set(read_openai(response["usage"]), final=kind_ in _LAST_EVENTS)


def stream_end(data: dict) -> bool:
    kind = data.get("type")  # the Responses API and image streams send no [DONE]
    return isinstance(kind, str) and kind in _LAST_EVENTS


def stream_failure(data: dict) -> str | None:
    if "error" not in data and data.get("type") != "error":
        return None
    error = data.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    return str(message or data.get("message") or "error")


def marked(block: bytes) -> bool:
    """An event worth parsing when the stream is only passed on: it carries usage, says the
    stream is over, or reports an error. This runs on every event, so it looks where each mark
    sits rather than run a regex over the event (~3 µs, a twentieth of a chunk's CPU in bench/);
    searches are bounded by find's start and end, not by slicing (a slice is a copy)."""
    # The Responses API and image streams end with an event of their own (no [DONE]): named on
    # the event's first line, or where a server leaves names out, by the `type` its data starts with.
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


def models_list(names: list[str], single: bool) -> dict:
    items = [{"id": n, "object": "model", "created": _CREATED, "owned_by": "aurax"} for n in names]
    return items[0] if single else {"object": "list", "data": items}


OPENAI = Dialect(
    name="openai",
    family="openai",
    error_body=error_body,
    error_event=lambda err, sent: sse.encode(orjson.dumps(error_body(err))),
    encode=encode,
    stream_tail=b"data: [DONE]\n\n",
    client_sse=lambda query: True,
    asks_usage=asks_usage,
    meter=OpenAIMeter,
    stream_end=stream_end,
    stream_failure=stream_failure,
    marked=marked,
    models_list=models_list,
    models_path="/models",
    pivot=Pivot(is_chat=True, endpoint=lambda body: "chat/completions", request_shape=CHAT_REQUEST),
    read_shape=CHAT_READ,
    max_output=lambda body: whole_number(body.get("max_completion_tokens")) or whole_number(body.get("max_tokens")),
)


# -- where an OpenAI-dialect channel lives ------------------------------------------------

# Azure serves these per deployment: /openai/deployments/{deployment}/{endpoint}
_AZURE_DEPLOYMENT_ENDPOINTS = frozenset(
    {"chat/completions", "completions", "embeddings", "images/generations", "images/edits",
     "audio/speech", "audio/transcriptions", "audio/translations"}
)


def url(base: str, endpoint: str, model: str) -> str:
    return f"{base}/{endpoint}"


def azure_url(base: str, endpoint: str, model: str) -> str:
    if endpoint in _AZURE_DEPLOYMENT_ENDPOINTS:
        return f"{base}/openai/deployments/{quote(model, safe='')}/{endpoint}"
    return f"{base}/openai/{endpoint}"
