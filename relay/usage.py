"""Token usage: the one normaliser between every dialect's counts and ours (SPEC §7).

`Usage` has OpenAI's meaning: `input_tokens` includes cached reads and cache writes, and
`output_tokens` includes reasoning. `read_*` turn a dialect's usage object into a `Usage`;
`*_usage` write one back in a dialect's shape, so translating usage is always `write(read(x))`
and the two directions cannot disagree. A reader answers None for usage it cannot trust (a
negative or non-numeric count): that is never billed, the request is estimated instead.

A `Meter` watches one answer in the upstream's dialect — a whole JSON body, or stream events one
by one — and keeps the usage the upstream reported, whether that was its final word, and enough of
the text to estimate what the client received when it was not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0

    def as_dict(self) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }


class _Untrusted(Exception):
    pass


# More tokens than any answer has: a count above it is a broken upstream's (and sums of counts
# must stay within the 64 bits JSON encoders take).
MOST_TOKENS = 10**12


def _count(value) -> int:
    """A token count as sent: absent is 0; negative, fractional, absurd or not a number is untrusted."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Untrusted
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise _Untrusted
        value = int(value)
    if value < 0 or value > MOST_TOKENS:
        raise _Untrusted
    return value


def _details(u: dict, key: str) -> dict:
    details = u.get(key)
    if details is None:
        return {}
    if not isinstance(details, dict):
        raise _Untrusted
    return details


# -- readers ---------------------------------------------------------------------------------

def read_openai(u: dict) -> Usage | None:
    """Chat/completions (`prompt_tokens`), the Responses API and images (`input_tokens`), embeddings."""
    try:
        if "prompt_tokens" in u:
            details, out = _details(u, "prompt_tokens_details"), _details(u, "completion_tokens_details")
            # DeepSeek reports cache hits in a field of its own.
            cached = _count(details.get("cached_tokens")) or _count(u.get("prompt_cache_hit_tokens"))
            return Usage(_count(u.get("prompt_tokens")), _count(u.get("completion_tokens")), cached,
                          _count(out.get("reasoning_tokens")), _count(details.get("cache_write_tokens")))
        details, out = _details(u, "input_tokens_details"), _details(u, "output_tokens_details")
        return Usage(_count(u.get("input_tokens")), _count(u.get("output_tokens")),
                     _count(details.get("cached_tokens")), _count(out.get("reasoning_tokens")),
                     _count(details.get("cache_write_tokens")))
    except _Untrusted:
        return None


def read_anthropic(u: dict) -> Usage | None:
    """Anthropic counts cache reads and writes apart from `input_tokens`."""
    try:
        cached = _count(u.get("cache_read_input_tokens"))
        written = _count(u.get("cache_creation_input_tokens"))
        thinking = _count(_details(u, "output_tokens_details").get("thinking_tokens"))
        return Usage(_count(u.get("input_tokens")) + cached + written, _count(u.get("output_tokens")), cached,
                     thinking, written)
    except _Untrusted:
        return None


def read_gemini(m: dict) -> Usage | None:
    """Thoughts count as output (Gemini bills them so); tool-use prompts as input."""
    try:
        thoughts = _count(m.get("thoughtsTokenCount"))
        return Usage(
            _count(m.get("promptTokenCount")) + _count(m.get("toolUsePromptTokenCount")),
            _count(m.get("candidatesTokenCount")) + thoughts,
            _count(m.get("cachedContentTokenCount")),
            thoughts,
        )
    except _Untrusted:
        return None


# -- writers ---------------------------------------------------------------------------------

def chat_usage(u: Usage) -> dict:
    """OpenAI chat completions' usage object."""
    details: dict = {"cached_tokens": u.cached_input_tokens}
    if u.cache_write_tokens:
        details["cache_write_tokens"] = u.cache_write_tokens
    usage = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": details,
    }
    if u.reasoning_tokens:
        usage["completion_tokens_details"] = {"reasoning_tokens": u.reasoning_tokens}
    return usage


def responses_usage(u: Usage) -> dict:
    """The Responses API's usage object."""
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_input_tokens, "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.input_tokens + u.output_tokens,
    }


def anthropic_usage(u: Usage) -> dict:
    """Anthropic's usage object: input without the cache reads and writes."""
    out = {
        "input_tokens": max(u.input_tokens - u.cached_input_tokens - u.cache_write_tokens, 0),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_input_tokens,
    }
    if u.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    return out


def gemini_usage(u: Usage) -> dict:
    """Gemini's usageMetadata."""
    meta = {
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": max(u.output_tokens - u.reasoning_tokens, 0),
        "totalTokenCount": u.input_tokens + u.output_tokens,
    }
    if u.cached_input_tokens:
        meta["cachedContentTokenCount"] = u.cached_input_tokens
    if u.reasoning_tokens:
        meta["thoughtsTokenCount"] = u.reasoning_tokens
    return meta


# -- metering --------------------------------------------------------------------------------

_CALIBRATION_EVENTS = 3


class Meter:
    """Usage of one answer in the upstream's dialect; a subclass per dialect reads its events.

    `final` says the upstream's last word on usage was seen (a whole answer, the usage chunk,
    `message_delta`, Gemini's finishing event). Without it the client got less than a whole
    answer, and `estimate_output` says how much: the text of the events parsed, plus, for content
    events passed on unparsed, their bytes less the framing of a content event, learnt by
    parsing the first few of them.
    """

    __slots__ = ("usage", "final", "untrusted", "text_chars", "text_events", "_raw_chars", "_raw_events",
                 "_samples", "_framing", "calibrating")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.final = False
        self.untrusted = False  # the upstream sent usage that could not be read (never billed)
        self.text_chars = 0
        self.text_events = 0
        self._raw_chars = self._raw_events = 0
        self._samples: list[int] = []
        self._framing = 0
        # whether an event that is only passed on should still be parsed, to learn the framing
        self.calibrating = True

    def answer(self, body: dict) -> None:
        raise NotImplementedError

    def event(self, data: dict) -> None:
        raise NotImplementedError

    def _set(self, usage: Usage | None, final: bool) -> None:
        if usage is None:
            self.untrusted = True
        else:
            self.usage = usage
            self.final = self.final or final

    def _text(self, text: object) -> None:
        if isinstance(text, str) and text:
            self.text_chars += len(text)
            self.text_events += 1

    def sample(self, size: int, chars_before: int) -> None:
        """An event of `size` bytes was parsed to calibrate (its text is counted already)."""
        gained = self.text_chars - chars_before
        if gained:
            self._samples.append(size - gained)
            if len(self._samples) == _CALIBRATION_EVENTS:
                self.calibrating = False
                self._framing = sorted(self._samples)[_CALIBRATION_EVENTS // 2]

    def raw(self, size: int) -> None:
        """An event passed on unparsed, of `size` bytes (for an estimate if usage never comes)."""
        extra = size - self._framing
        if extra > 0:  # smaller than a content event's framing: not a content event
            self._raw_chars += extra
            self._raw_events += 1

    def output_chars(self) -> int:
        return self.text_chars + self._raw_chars

    def estimate_output(self) -> int:
        """Tokens the client was sent: ~4 characters a token, and at least one per content event
        (upstreams send a token or more per event; text in many scripts is ~1 character a token)."""
        return max(estimate_tokens(self.output_chars()), self.text_events + self._raw_events)


def estimate_tokens(chars: int) -> int:
    """About four characters a token: the usual rule of thumb for English and code."""
    return (chars + 3) // 4


_NOT_TEXT = frozenset({"id", "object", "model", "role", "type", "finish_reason", "stop_reason", "status",
                       "system_fingerprint", "call_id", "index", "responseId", "modelVersion", "finishReason",
                       "signature", "thoughtSignature", "usage", "usageMetadata"})


def answer_chars(answer: dict) -> int:
    """Characters of text in a whole answer of any dialect (its strings, less ids and names)."""
    total = 0
    stack: list = [answer]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(v for k, v in item.items() if k not in _NOT_TEXT)
        elif isinstance(item, list):
            stack.extend(item)
    return total


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
