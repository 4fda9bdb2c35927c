"""OpenAI chat.completion.chunk dicts -> Anthropic stream events, one chunk at a time.

Anthropic content blocks cannot interleave; OpenAI streams can: reasoning, text and several tool
calls whose argument fragments alternate. A block stays open while its source is current. A tool
call's block is closed early only once its arguments form a complete JSON object (nothing valid
can follow that); until then the fragments of the other calls wait in their buffers and are sent,
in order, when their block opens. Nothing is dropped, and each call's fragments keep their order.
"""

from __future__ import annotations

from relay.dialects.anthropic_client import call_id, message_id, stop_reason
from relay.dialects.arguments import Arguments
from relay.dialects.common import anthropic_usage_from_chat, as_dict, as_list, as_str, call_slot, dumps, new_id, stream_error


class OpenAIToAnthropicStream:
    def __init__(self, model: str) -> None:
        self.model = model
        self.started = self.done = False
        self.next_block = 0
        self.open: dict | None = None  # {"kind": "text" | "thinking" | "tool", "index", "call"}
        self.calls: dict[int, dict] = {}  # call state, numbered in arrival order
        self.route: dict[object, int] = {}  # upstream tool-call index -> its latest call
        self.deferred: list[tuple[str, str]] = []  # text that came while an unfinished call was open
        self.finish_reason: str | None = None
        self.usage: dict | None = None  # the upstream's own (OpenAI-shaped) usage, for metering

    def feed(self, chunk: dict) -> list[dict]:
        if chunk.get("error"):
            raise stream_error(chunk["error"])
        out = self._start(chunk)
        if isinstance(usage := chunk.get("usage"), dict) and usage:
            self.usage = usage
        for choice in as_list(chunk.get("choices")):
            choice = as_dict(choice)
            if choice.get("index", 0) != 0:
                continue
            delta = as_dict(choice.get("delta"))
            # DeepSeek and Qwen say reasoning_content; OpenRouter and vLLM say reasoning.
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                out += self._text("thinking", reasoning)
            for text in (delta.get("content"), delta.get("refusal")):
                if isinstance(text, str) and text:
                    out += self._text("text", text)
            for call in as_list(delta.get("tool_calls")) if "tool_calls" in delta else ():
                out += self._tool_delta(as_dict(call))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
                out += self._close_all()
        return out

    def finish(self) -> list[dict]:
        # Usage arrives after the finish_reason chunk, so the closing events wait for the end.
        if self.done:
            return []
        self.done = True
        out = self._start({}) + self._close_all()
        delta = {"stop_reason": stop_reason(self.finish_reason, bool(self.calls)), "stop_sequence": None}
        out.append({"type": "message_delta", "delta": delta, "usage": anthropic_usage_from_chat(self.usage)})
        return out + [{"type": "message_stop"}]

    def _start(self, chunk: dict) -> list[dict]:
        if self.started:
            return []
        self.started = True
        usage = anthropic_usage_from_chat(as_dict(chunk.get("usage")))
        message = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 0},
        }
        return [{"type": "message_start", "message": message}]

    def _text(self, kind: str, text: str) -> list[dict]:
        if self.deferred or self.open and self.open["kind"] == "tool" and not self.open["call"]["args"].whole:
            self.deferred.append((kind, text))
            return []
        out = [] if self.open and self.open["kind"] == kind else self._close() + self._open(kind)
        return out + [self._delta(kind, text)]

    def _tool_delta(self, delta: dict) -> list[dict]:
        fn = as_dict(delta.get("function"))
        index, upstream_id, key = call_slot(self.route, self.calls, delta)
        if key is None:
            key = self.route[index] = len(self.calls)
            call = {"upstream_id": upstream_id, "id": call_id(upstream_id) if upstream_id else new_id("toolu_")}
            call.update(name=as_str(fn.get("name")), args=Arguments(), pending=[], block=None, sent=False, closed=False)
            self.calls[key] = call
        call = self.calls[key]
        if as_str(fn.get("name")) and not call["name"]:
            call["name"] = fn["name"]
        fragment = fn.get("arguments") or ""
        fragment = fragment if isinstance(fragment, str) else dumps(fragment)
        if call["closed"]:
            return []  # past a complete JSON object only whitespace can come
        if fragment:
            call["args"].add(fragment)
            call["pending"].append(fragment)
        return self._advance()

    def _advance(self) -> list[dict]:
        out = self._flush(self.open["call"]) if self.open and self.open["kind"] == "tool" else []
        for call in self.calls.values():
            if call["block"] is not None:
                continue
            if not call["name"] or self.open and self.open["kind"] == "tool" and not self.open["call"]["args"].whole:
                break
            out += self._close() + self._open_tool(call)
        return out

    def _close_all(self) -> list[dict]:
        out: list[dict] = []
        for call in self.calls.values():
            if call["block"] is None:
                out += self._close() + self._open_tool(call)
        for kind, text in self.deferred:
            if not self.open or self.open["kind"] != kind:
                out += self._close() + self._open(kind)
            out.append(self._delta(kind, text))
        self.deferred = []
        return out + self._close()

    def _open(self, kind: str) -> list[dict]:
        if kind == "text":
            block = {"type": "text", "text": ""}
        else:
            block = {"type": "thinking", "thinking": "", "signature": ""}
        self.open = {"kind": kind, "index": self.next_block}
        self.next_block += 1
        return [{"type": "content_block_start", "index": self.open["index"], "content_block": block}]

    def _open_tool(self, call: dict) -> list[dict]:
        call["block"] = self.next_block
        self.open = {"kind": "tool", "index": self.next_block, "call": call}
        self.next_block += 1
        block = {"type": "tool_use", "id": call["id"], "name": call["name"], "input": {}}
        return [{"type": "content_block_start", "index": call["block"], "content_block": block}] + self._flush(call)

    def _flush(self, call: dict) -> list[dict]:
        if not call["pending"]:
            return []
        fragment, call["pending"], call["sent"] = "".join(call["pending"]), [], True
        delta = {"type": "input_json_delta", "partial_json": fragment}
        return [{"type": "content_block_delta", "index": call["block"], "delta": delta}]

    def _close(self) -> list[dict]:
        if not self.open:
            return []
        out: list[dict] = []
        call = self.open.get("call")
        if call:
            out += self._flush(call)
            if not call["sent"]:
                # A call without arguments still needs an object.
                call["pending"] = ["{}"]
                out += self._flush(call)
            call["closed"] = True
        out.append({"type": "content_block_stop", "index": self.open["index"]})
        self.open = None
        return out

    def _delta(self, kind: str, text: str) -> dict:
        delta = {"type": "text_delta", "text": text} if kind == "text" else {"type": "thinking_delta", "thinking": text}
        return {"type": "content_block_delta", "index": self.open["index"], "delta": delta}  # type: ignore[index]



def stream(body: dict, model: str) -> OpenAIToAnthropicStream:
    return OpenAIToAnthropicStream(model)
