"""Token usage read from any dialect's answers, normalised (SPEC §7).

`input_tokens` includes cached ones (OpenAI's meaning); `reasoning_tokens` are part of
`output_tokens`. A `Meter` watches one answer — a whole JSON body or stream events one by one —
and keeps the usage the upstream reported, or enough of the text to estimate it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0

    def as_dict(self) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def from_openai(u: dict) -> Usage:
    """Chat/completions (`prompt_tokens`), the Responses API and images (`input_tokens`), embeddings."""
    if "prompt_tokens" in u:
        details = u.get("prompt_tokens_details") or {}
        out_details = u.get("completion_tokens_details") or {}
        return Usage(
            _int(u.get("prompt_tokens")),
            _int(u.get("completion_tokens")),
            _int(details.get("cached_tokens")),
            _int(out_details.get("reasoning_tokens")),
        )
    details = u.get("input_tokens_details") or {}
    out_details = u.get("output_tokens_details") or {}
    return Usage(
        _int(u.get("input_tokens")),
        _int(u.get("output_tokens")),
        _int(details.get("cached_tokens")),
        _int(out_details.get("reasoning_tokens")),
    )


def from_anthropic(u: dict) -> Usage:
    """Anthropic counts cache reads and writes apart from `input_tokens`."""
    cached = _int(u.get("cache_read_input_tokens"))
    written = _int(u.get("cache_creation_input_tokens"))
    return Usage(_int(u.get("input_tokens")) + cached + written, _int(u.get("output_tokens")), cached)


def from_gemini(m: dict) -> Usage:
    thoughts = _int(m.get("thoughtsTokenCount"))
    return Usage(
        _int(m.get("promptTokenCount")),
        _int(m.get("candidatesTokenCount")) + thoughts,
        _int(m.get("cachedContentTokenCount")),
        thoughts,
    )


class Meter:
    """Usage of one answer in the upstream's dialect."""

    __slots__ = ("dialect", "usage", "text_chars", "_anthropic", "_raw_bytes", "_raw_events", "_raw_smallest")

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.usage: Usage | None = None
        self.text_chars = 0
        self._anthropic: dict = {}
        self._raw_bytes = self._raw_events = 0
        self._raw_smallest = 1 << 30

    def raw(self, size: int) -> None:
        """An event passed on unparsed, of `size` bytes (for an estimate if usage never comes)."""
        self._raw_bytes += size
        self._raw_events += 1
        if size < self._raw_smallest:
            self._raw_smallest = size

    def output_chars(self) -> int:
        """The answer's text, for an estimate: exact for parsed events; for events passed on
        unparsed, their bytes less the framing every event has (the smallest event's size)."""
        if not self._raw_events:
            return self.text_chars
        return max(self.text_chars, self._raw_bytes - self._raw_events * self._raw_smallest)

    def answer(self, body: dict) -> None:
        if self.dialect == "gemini":
            meta = body.get("usageMetadata")
            if isinstance(meta, dict):
                self.usage = from_gemini(meta)
            return
        usage = body.get("usage")
        if isinstance(usage, dict):
            self.usage = from_anthropic(usage) if self.dialect == "anthropic" else from_openai(usage)

    def event(self, data: dict) -> None:
        if self.dialect == "openai":
            self._openai_event(data)
        elif self.dialect == "anthropic":
            self._anthropic_event(data)
        else:
            self._gemini_event(data)

    def _openai_event(self, data: dict) -> None:
        usage = data.get("usage")
        if isinstance(usage, dict):
            self.usage = from_openai(usage)
        for choice in data.get("choices") or ():
            delta = choice.get("delta") or choice  # legacy completions stream carries `text`
            for field in ("content", "reasoning_content", "text"):
                text = delta.get(field)
                if isinstance(text, str):
                    self.text_chars += len(text)
            for call in delta.get("tool_calls") or ():
                self.text_chars += len((call.get("function") or {}).get("arguments") or "")
        kind = data.get("type")
        if kind is not None:  # Responses API
            if kind.endswith(".delta") and isinstance(data.get("delta"), str):
                self.text_chars += len(data["delta"])
            response = data.get("response")
            if isinstance(response, dict) and isinstance(response.get("usage"), dict):
                self.usage = from_openai(response["usage"])

    def _anthropic_event(self, data: dict) -> None:
        kind = data.get("type")
        if kind == "message_start" or kind == "message_delta":
            # message_start has the input side, message_delta the final (cumulative) counts:
            # a field the later event leaves out or null keeps its earlier value.
            usage = (data.get("message") or {}).get("usage") if kind == "message_start" else data.get("usage")
            if isinstance(usage, dict):
                self._anthropic.update((k, v) for k, v in usage.items() if v is not None)
                self.usage = from_anthropic(self._anthropic)
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            for field in ("text", "thinking", "partial_json"):
                text = delta.get(field)
                if isinstance(text, str):
                    self.text_chars += len(text)

    def _gemini_event(self, data: dict) -> None:
        meta = data.get("usageMetadata")
        if isinstance(meta, dict):
            self.usage = from_gemini(meta)
        for candidate in data.get("candidates") or ():
            for part in (candidate.get("content") or {}).get("parts") or ():
                text = part.get("text")
                if isinstance(text, str):
                    self.text_chars += len(text)


def estimate_tokens(chars: int) -> int:
    """About four characters a token: the usual rule of thumb for English and code."""
    return (chars + 3) // 4


def request_chars(payload: dict) -> int:
    """Characters of text in a request (for an estimate when the upstream reports no usage)."""
    total = 0
    stack: list = [payload.get(k) for k in ("messages", "system", "contents", "systemInstruction",
                                              "input", "prompt", "instructions", "tools")]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(v for k, v in item.items() if k not in ("url", "data", "image_url"))
        elif isinstance(item, list):
            stack.extend(item)
    return total
