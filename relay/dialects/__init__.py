"""The dialects the proxy speaks, one module each: OpenAI chat (`openai`), the Responses API
(`responses`), Anthropic messages (`anthropic`) and Gemini (`gemini`).

Each module exports one frozen `Dialect` record (`record.py`): its error shape, how its streams
are encoded and end, how its usage is read, its model-list shape, and how it converts to and from
the pivot. The rest of the proxy asks the record; nothing compares dialect names.

**Translation goes through one internal form, OpenAI chat completions** (`translation.py`): a
request in dialect X becomes a chat request, which becomes the channel's dialect Y; answers and
stream events go back the same way. Why a pivot rather than a converter per pair:

- four client dialects on three channel dialects make nine translated pairs; through a pivot each
  dialect needs only its two halves (to and from chat), and a new dialect is two halves, not six
  converters;
- chat is already what most channels speak (every OpenAI-compatible upstream) and what the
  clients' own SDKs convert to, so the common pairs (Claude Code on GPT or DeepSeek, Codex on
  DeepSeek, the OpenAI SDK on Claude or Gemini) are one hop;
- what chat cannot say but a round trip needs rides in fields the pivot carries for it:
  `reasoning_content`, Anthropic's signed `thinking_blocks`, Gemini's thought signatures on tool
  calls (`extra_content`), so thinking survives a tool loop through the pivot.

The cost is a second, in-memory hop between two non-chat dialects (Claude Code on Gemini, Codex on
Claude): dicts passed from one converter to the next, no extra JSON encoding (bench/ measures it).
Same-dialect requests are never translated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import anthropic as _anthropic, gemini as _gemini, openai as _openai
from .anthropic import ANTHROPIC
from .gemini import GEMINI
from .openai import OPENAI
from .record import Dialect
from .responses import RESPONSES

BY_NAME = {d.name: d for d in (OPENAI, RESPONSES, ANTHROPIC, GEMINI)}


def _bearer(key: bytes) -> tuple[bytes, bytes]:
    return (b"authorization", b"Bearer " + key)


@dataclass(frozen=True, slots=True)
class ChannelKind:
    """A channel `type` of the config: the dialect its upstream speaks, where and how."""

    name: str
    dialect: Dialect
    default_base_url: str | None
    url: Callable[[str, str, str], str]  # (base URL, endpoint, upstream model) -> URL without query
    credential: Callable[[bytes], tuple[bytes, bytes]]  # the channel's key as a header
    headers: tuple[tuple[bytes, bytes], ...] = ()  # sent unless the client sent the same header
    needs_api_version: bool = False  # Azure's `api-version` query parameter
    # (base URL) -> whether it serves the Responses API unless the config says (SPEC §6)
    serves_responses: Callable[[str], bool] = lambda base: False


CHANNEL_KINDS = {
    kind.name: kind
    for kind in (
        ChannelKind("openai", OPENAI, "https://api.openai.com/v1", _openai.url, _bearer,
                    serves_responses=lambda base: base.startswith("https://api.openai.com/")),
        ChannelKind("azure", OPENAI, None, _openai.azure_url, lambda key: (b"api-key", key),
                    needs_api_version=True, serves_responses=lambda base: True),
        ChannelKind("anthropic", ANTHROPIC, "https://api.anthropic.com", _anthropic.url,
                    lambda key: (b"x-api-key", key), headers=((b"anthropic-version", b"2023-06-01"),)),
        ChannelKind("gemini", GEMINI, "https://generativelanguage.googleapis.com", _gemini.url,
                    lambda key: (b"x-goog-api-key", key)),
    )
}

# The dialects that can be passed through to an official API with the client's own key.
PASSTHROUGH = {kind.name: kind for kind in CHANNEL_KINDS.values() if kind.default_base_url}


def guess(path: str, headers: dict[str, str], query: bytes) -> Dialect:
    """The dialect of a client whose route does not say it (errors before routing, model lists
    asked at OpenAI's path by the Anthropic SDK or google-genai)."""
    if path.startswith("/v1beta/") or "x-goog-api-key" in headers or b"key=" in query:
        return GEMINI
    if "anthropic-version" in headers or "x-api-key" in headers or path.startswith("/v1/messages"):
        return ANTHROPIC
    if path.startswith("/v1/responses"):
        return RESPONSES
    return OPENAI


__all__ = ["ANTHROPIC", "BY_NAME", "CHANNEL_KINDS", "GEMINI", "OPENAI", "PASSTHROUGH", "RESPONSES",
           "ChannelKind", "Dialect", "guess"]
