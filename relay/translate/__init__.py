"""Dialect translation: which pure functions turn one API's request, answer and stream into another's.

Each direction is one module of pure functions plus a small per-stream state object; `find`
picks them. Upstream stream events come in as parsed JSON dicts and go out as the client's event
dicts (see `StreamTranslator`).

The OpenAI chat-completions request, answer and chunk dicts are the one internal form (with what
the modules above carry besides: `reasoning_content`, `thinking_blocks`, Gemini's
`extra_content.google.thought_signature`). The Responses and Gemini client dialects go through
it: `responses_chat` / `gemini_chat` turn the client's request into a chat request and a chat
answer back into the client's, `*_chat_stream` chat chunks into the client's events; the modules
above do the chat <-> channel half. Why one form rather than pairs: n client dialects on m
channel dialects cost n + m modules instead of n x m, every pair gets each fix at once, and the
chat form already holds everything the dialects share (roles, tool calls with ids, reasoning,
usage). A stream costs one more dict per chunk for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from relay.translate import (
    anthropic_openai,
    anthropic_openai_stream,
    openai_anthropic,
    openai_anthropic_stream,
    openai_gemini,
    openai_gemini_stream,
)


class StreamTranslator(Protocol):
    def feed(self, data: dict) -> list[dict]: ...  # one upstream event -> client events, in order

    def finish(self) -> list[dict]: ...  # upstream ended normally: the closing events still owed


@dataclass(frozen=True, slots=True)
class Translation:
    client: str  # client dialect: "openai" | "anthropic"
    upstream: str  # upstream dialect: "anthropic" | "gemini" | "openai"
    request: Callable[[dict, str], dict]  # (client body, upstream model) -> upstream body
    response: Callable[[dict, str], dict]  # (upstream answer, model shown to the client) -> client answer
    stream: Callable[[dict, str], StreamTranslator]  # (client body, model shown) -> fresh stream state
    endpoint: Callable[[dict], str]  # (client body) -> upstream endpoint


_TABLE = {
    ("openai", "anthropic"): Translation(
        "openai", "anthropic", openai_anthropic.request, openai_anthropic.response,
        openai_anthropic_stream.stream, lambda body: "messages",
    ),
    ("openai", "gemini"): Translation(
        "openai", "gemini", openai_gemini.request, openai_gemini.response,
        openai_gemini_stream.stream, openai_gemini.endpoint,
    ),
    ("anthropic", "openai"): Translation(
        "anthropic", "openai", anthropic_openai.request, anthropic_openai.response,
        anthropic_openai_stream.stream, lambda body: "chat/completions",
    ),
}


def find(client: str, upstream: str) -> Translation | None:
    """The translation from a client dialect to an upstream one; None when they match or none exists."""
    return _TABLE.get((client, upstream))
