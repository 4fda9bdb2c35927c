"""Gemini `alt=sse` events (GenerateContentResponse dicts) -> OpenAI chat.completion.chunk dicts."""

from __future__ import annotations

from relay.dialects.common import as_dict, as_list, as_str, chunk, new_id, now, stream_error, usage_from_gemini
from relay.dialects.gemini_channel import finish_reason, read_parts


class GeminiToOpenAIStream:
    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = ""
        self.created = now()
        self.calls = 0
        self.meta: dict = {}
        self.started = self.finished = self.usage_sent = False

    @property
    def usage(self) -> dict | None:
        """What the upstream reported so far, in OpenAI's shape (for metering)."""
        return usage_from_gemini(self.meta) if self.meta else None

    def feed(self, event: dict) -> list[dict]:
        if event.get("error"):
            raise stream_error(event["error"])
        self.id = self.id or "chatcmpl-" + (as_str(event.get("responseId")) or new_id(""))
        out = self._start()
        if isinstance(meta := event.get("usageMetadata"), dict) and meta:
            self.meta = meta  # running totals: the last one counts
        candidate = (as_list(event.get("candidates")) or [None])[0]
        for kind, value in read_parts(as_dict(as_dict(candidate).get("content")).get("parts")):
            if kind == "call":
                # Gemini sends each call whole: one delta carries id, name and all the arguments.
                out.append(self._chunk({"tool_calls": [{"index": self.calls, **value}]}))  # type: ignore[dict-item]
                self.calls += 1
            else:
                out.append(self._chunk({"reasoning_content" if kind == "reasoning" else "content": value}))
        reason = finish_reason(candidate, event.get("promptFeedback"), bool(self.calls))
        if reason and not self.finished:
            self.finished = True
            out.append(self._chunk({}, reason))
        return out

    def finish(self) -> list[dict]:
        out = self._start()
        if not self.finished:
            self.finished = True
            out.append(self._chunk({}, "tool_calls" if self.calls else "stop"))
        if self.include_usage and not self.usage_sent:
            self.usage_sent = True
            out.append({**self._chunk({}), "choices": [], "usage": usage_from_gemini(self.meta)})
        return out

    def _start(self) -> list[dict]:
        if self.started:
            return []
        self.started = True
        self.id = self.id or "chatcmpl-" + new_id("")
        return [self._chunk({"role": "assistant", "content": ""})]

    def _chunk(self, delta: dict, finish: str | None = None) -> dict:
        return chunk(self.id, self.created, self.model, delta, finish)


def stream(body: dict, model: str) -> GeminiToOpenAIStream:
    return GeminiToOpenAIStream(model, bool((body.get("stream_options") or {}).get("include_usage")))
