"""Anthropic stream events -> OpenAI chat.completion.chunk dicts, one event at a time.

Whatever the upstream puts in a field, the chunks made hold the types chat says (strings for
text, names and ids): a wrong one reads as empty.
"""

from __future__ import annotations

from relay.dialects.common import (
    FINISH_FROM_ANTHROPIC, as_dict, as_str, chunk, dumps, now, stream_error, usage_from_anthropic,
)
from relay.dialects.anthropic_channel import JSON_TOOL


class AnthropicToOpenAIStream:
    """Per-stream state. Tool calls are numbered over tool calls only (OpenAI's `index`), not over
    Anthropic content blocks; thinking blocks are numbered apart for `thinking_blocks`."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = ""
        self.created = now()
        self.blocks: dict[int, dict] = {}
        self.tool_calls = 0
        self.thinking_blocks = 0
        self.raw_usage: dict = {}
        self.started = self.finished = self.usage_sent = False

    @property
    def usage(self) -> dict | None:
        """What the upstream reported so far, in OpenAI's shape (for metering)."""
        return usage_from_anthropic(self.raw_usage) if self.raw_usage else None

    def feed(self, event: dict) -> list[dict]:
        kind = event.get("type")
        if kind == "error":
            raise stream_error(event.get("error"))
        if kind == "message_start":
            message = as_dict(event.get("message"))
            self.id = as_str(message.get("id")) or self.id
            self.raw_usage = dict(as_dict(message.get("usage")))
            return self._start()
        out = self._start()
        index = event.get("index")
        index = index if isinstance(index, int) else None  # (a list or an object is no key)
        if kind == "content_block_start":
            out += self._block_start(index, as_dict(event.get("content_block")))
        elif kind == "content_block_delta":
            out += self._block_delta(self.blocks.get(index), as_dict(event.get("delta")))
        elif kind == "content_block_stop":
            out += self._block_stop(self.blocks.get(index))
        elif kind == "message_delta":
            # Usage counts in message_delta are running totals; absent ones keep message_start's.
            self.raw_usage.update({k: v for k, v in as_dict(event.get("usage")).items() if v is not None})
            out += self._finish(as_str(as_dict(event.get("delta")).get("stop_reason")))
        elif kind == "message_stop":
            out += self._usage_chunk()
        return out  # ping and event types this version does not know are ignored

    def finish(self) -> list[dict]:
        return self._start() + self._finish("") + self._usage_chunk()

    def _block_start(self, index: int | None, block: dict) -> list[dict]:
        kind = block.get("type")
        # Thinking comes as a list of pieces: `+=` on a held string copies all of it every time.
        info: dict = {"kind": kind, "text": [as_str(block.get("thinking"))], "signature": as_str(block.get("signature"))}
        info["data"], info["input"] = as_str(block.get("data")), block.get("input")
        self.blocks[index] = info  # type: ignore[index]
        if kind == "text" and as_str(block.get("text")):
            return self._delta({"content": block["text"]})
        if kind == "tool_use" and block.get("name") == JSON_TOOL:
            info["kind"] = "json"
        elif kind == "tool_use":
            info["call"] = self.tool_calls
            self.tool_calls += 1
            call = {"name": as_str(block.get("name")), "arguments": ""}
            head = {"index": info["call"], "id": as_str(block.get("id")), "type": "function", "function": call}
            return self._delta({"tool_calls": [head]})
        return []

    def _block_delta(self, info: dict | None, delta: dict) -> list[dict]:
        if info is None:
            return []
        kind = delta.get("type")
        text = as_str(delta.get("text" if kind == "text_delta" else "thinking" if kind == "thinking_delta" else "partial_json"))
        if kind == "text_delta" and text:
            return self._delta({"content": text})
        if kind == "thinking_delta" and text:
            info["text"].append(text)
            return self._delta({"reasoning_content": text})
        if kind == "signature_delta":
            info["signature"] = as_str(delta.get("signature"))
        elif kind == "input_json_delta" and text:
            info["sent"] = True
            if info["kind"] == "json":
                return self._delta({"content": text})
            if info["kind"] == "tool_use":
                fragment = {"index": info["call"], "function": {"arguments": text}}
                return self._delta({"tool_calls": [fragment]})
        return []

    def _block_stop(self, info: dict | None) -> list[dict]:
        if info is None or info.get("stopped"):
            return []
        info["stopped"] = True
        if info["kind"] in ("thinking", "redacted_thinking"):
            # The whole signed block once, at its end: enough to send it back next turn.
            if info["kind"] == "thinking":
                entry = {"type": "thinking", "thinking": "".join(info["text"]), "signature": info["signature"]}
            else:
                entry = {"type": "redacted_thinking", "data": info["data"]}
            entry["index"] = self.thinking_blocks
            self.thinking_blocks += 1
            return self._delta({"thinking_blocks": [entry]})
        if info["kind"] in ("tool_use", "json") and not info.get("sent"):
            # A call without arguments still needs an object, never an empty string.
            arguments = dumps(info["input"] if isinstance(info["input"], dict) else {})
            if info["kind"] == "json":
                return self._delta({"content": arguments})
            return self._delta({"tool_calls": [{"index": info["call"], "function": {"arguments": arguments}}]})
        return []

    def _start(self) -> list[dict]:
        if self.started:
            return []
        self.started = True
        return self._delta({"role": "assistant", "content": ""})

    def _finish(self, stop_reason: str) -> list[dict]:
        if self.finished:
            return []
        out = [event for info in self.blocks.values() for event in self._block_stop(info)]
        self.finished = True
        reason = FINISH_FROM_ANTHROPIC.get(stop_reason, "tool_calls" if self.tool_calls else "stop")
        if reason == "tool_calls" and not self.tool_calls:
            reason = "stop"  # the JSON answer tool was the only call
        return out + [self._chunk({}, reason)]

    def _usage_chunk(self) -> list[dict]:
        if not self.include_usage or self.usage_sent:
            return []
        self.usage_sent = True
        return [{**self._chunk({}, None), "choices": [], "usage": usage_from_anthropic(self.raw_usage)}]

    def _delta(self, delta: dict) -> list[dict]:
        return [self._chunk(delta, None)]

    def _chunk(self, delta: dict, finish_reason: str | None) -> dict:
        return chunk(self.id, self.created, self.model, delta, finish_reason)


def stream(body: dict, model: str) -> AnthropicToOpenAIStream:
    return AnthropicToOpenAIStream(model, bool((body.get("stream_options") or {}).get("include_usage")))
