"""Anthropic's Messages API (`/v1/messages`): Claude Code, the Anthropic SDK, Claude channels.

As the client's dialect, requests go to the pivot in `anthropic_client.py` and answers and
streams come back from it in `anthropic_client.py` / `anthropic_client_stream.py`; as the
channel's dialect, `anthropic_channel.py` / `anthropic_channel_stream.py`.
"""

from __future__ import annotations

import re

import orjson

from relay import sse
from relay.errors import ProxyError, kind
from relay.usage import Meter, read_anthropic

from . import anthropic_channel, anthropic_channel_stream, anthropic_client, anthropic_client_stream
from .fields import MESSAGES_READ, MESSAGES_REQUEST
from .record import Counting, Dialect, Pivot, whole_number

# What Anthropic's count_tokens takes of a Messages request.
_COUNTED = ("model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers")
_BREAKPOINTS = 4  # Anthropic's most cache_control marks in one request
_EPHEMERAL = {"type": "ephemeral"}
_UNMARKABLE = frozenset({"thinking", "redacted_thinking"})  # cannot carry cache_control themselves


def error_body(err: ProxyError) -> dict:
    return {"type": "error", "error": {"type": kind(err.status)[1], "message": err.message}}


def encode(event: dict) -> bytes:
    return sse.encode(orjson.dumps(event), event.get("type"))


class AnthropicMeter(Meter):
    """`usage` of a message; in streams, `message_start` has the input side and `message_delta`
    the final (cumulative) counts: a field the later event leaves out or null keeps its value."""

    __slots__ = ("_fields",)

    def __init__(self) -> None:
        super().__init__()
        self._fields: dict = {}

    def answer(self, body: dict) -> None:
        usage = body.get("usage")
        if isinstance(usage, dict):
            self._set(read_anthropic(usage), final=True)

    def event(self, data: dict) -> None:
        kind_ = data.get("type")
        if kind_ == "message_start" or kind_ == "message_delta":
            message = data.get("message") if kind_ == "message_start" else data
            usage = message.get("usage") if isinstance(message, dict) else None
            if isinstance(usage, dict):
                self._fields.update((k, v) for k, v in usage.items() if v is not None)
                self._set(read_anthropic(self._fields), final=kind_ == "message_delta")
        elif kind_ == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict):
                for field in ("text", "thinking", "partial_json"):
                    self._text(delta.get(field))


_TYPES = re.compile(rb"message_(?:start|delta|stop)|error")


def marked(block: bytes) -> bool:
    if block.startswith(b"event:"):  # the event's type is on its first line
        line = block[: block.find(b"\n")]
        return b"message_" in line or b"error" in line
    return _TYPES.search(block) is not None


def stream_failure(data: dict) -> str | None:
    if data.get("type") != "error":
        return None
    error = data.get("error")
    return str((error.get("message") if isinstance(error, dict) else error) or "error")


def models_list(names: list[str], single: bool) -> dict:
    items = [
        {"type": "model", "id": n, "display_name": n, "created_at": "2025-01-01T00:00:00Z", "lifecycle": "active"}
        for n in names
    ]
    if single:
        return items[0]
    return {"data": items, "has_more": False,
            "first_id": names[0] if names else None, "last_id": names[-1] if names else None}


def with_cache_breakpoints(body: dict) -> dict:
    """A translated request marked for Anthropic's prompt cache (`auto_cache`, SPEC §6), for
    clients that cannot ask: the tools, the system prompt, the conversation so far (its last
    block), and the end of the previous turn (what the last request wrote), so the next turn of a
    conversation reads its prefix from the cache. Marks the request has already count toward
    Anthropic's four."""
    tools = body.get("tools") or []
    system = body.get("system")
    if isinstance(system, str) and system:
        system = body["system"] = [{"type": "text", "text": system}]
    turns = body.get("messages") or []
    places = [tools, system or []]
    users = [t for t in turns if t.get("role") == "user" and isinstance(t.get("content"), list)]
    places += [t["content"] for t in turns[-1:] if isinstance(t.get("content"), list)]
    places += [t["content"] for t in users[-2:-1]]
    marked = sum(1 for place in (tools, system or []) for b in place if isinstance(b, dict) and b.get("cache_control"))
    marked += sum(1 for t in turns if isinstance(t.get("content"), list)
                  for b in t["content"] if isinstance(b, dict) and b.get("cache_control"))
    for blocks in places:
        if marked >= _BREAKPOINTS:
            break
        last = next((b for b in reversed(blocks) if isinstance(b, dict) and b.get("type") not in _UNMARKABLE
                     and (b.get("type") != "text" or b.get("text"))), None)
        if last is not None and not last.get("cache_control"):
            last["cache_control"] = dict(_EPHEMERAL)
            marked += 1
    return body


def count_request(chat: dict, model: str) -> dict:
    body = anthropic_channel.request({**chat, "stream": False}, model)
    return {k: body[k] for k in _COUNTED if k in body}


def _counted(answer: dict) -> int | None:
    tokens = answer.get("input_tokens")
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0 else None


ANTHROPIC = Dialect(
    name="anthropic",
    family="anthropic",
    error_body=error_body,
    error_event=lambda err, sent: sse.encode(orjson.dumps(error_body(err)), "error"),
    encode=encode,
    stream_tail=b"",
    client_sse=lambda query: True,
    asks_usage=lambda body: True,
    meter=AnthropicMeter,
    stream_end=lambda data: data.get("type") == "message_stop",
    stream_failure=stream_failure,
    marked=marked,
    models_list=models_list,
    models_path="/v1/models",
    pivot=Pivot(
        request_shape=MESSAGES_REQUEST,
        request_to_chat=anthropic_client.request,
        answer_from_chat=lambda answer, model, body: anthropic_client.response(answer, model),
        stream_from_chat=anthropic_client_stream.stream,
        request_from_chat=anthropic_channel.request,
        answer_to_chat=anthropic_channel.response,
        stream_to_chat=anthropic_channel_stream.stream,
        endpoint=lambda body: "messages",
    ),
    counting=Counting(
        endpoint="messages/count_tokens",
        request_from_chat=count_request,
        read=_counted,
        reply=lambda tokens: {"input_tokens": tokens},
    ),
    read_shape=MESSAGES_READ,
    max_output=lambda body: whole_number(body.get("max_tokens")),
    auto_cache=with_cache_breakpoints,
    out_of_credit=400,  # Anthropic: invalid_request_error, "Your credit balance is too low..."
)


def url(base: str, endpoint: str, model: str) -> str:
    return f"{base}/v1/{endpoint}"
