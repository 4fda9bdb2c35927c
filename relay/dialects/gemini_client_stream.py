"""chat.completion.chunk dicts -> Gemini `alt=sse` events (GenerateContentResponse dicts).

Text and thoughts go out as they come, one event per chunk. A tool call goes out whole, as Gemini
sends them: once its arguments form a complete JSON object (nothing valid can follow that), or at
the end. The last event carries the calls still owed, the finishReason and the usageMetadata,
which chat streams send after their finish_reason chunk.
"""

from __future__ import annotations

from .arguments import Arguments
from .common import as_dict, as_list, call_slot, dumps, new_id, pack_thinking, stream_error
from .gemini_client import call_parts, event, response_id, shows_thoughts


class ChatToGeminiStream:
    def __init__(self, body: dict, model: str) -> None:
        self.model = model
        self.thoughts = shows_thoughts(body)
        self.id = ""
        self.calls: list[dict] = []  # in arrival order: {"id", "name", "args", "sent"}
        self.route: dict[object, int] = {}  # upstream tool-call index -> its latest call
        self.blocks: list[dict] = []  # signed Claude thinking, for the first call's signature
        self.signed = False  # whether a call carried the packed thinking already
        self.finish_reason: str | None = None
        self.usage: dict | None = None  # the chat usage, as the upstream reported it
        self.done = False

    def feed(self, chunk: dict) -> list[dict]:
        if chunk.get("error"):
            raise stream_error(chunk["error"])
        self.id = self.id or response_id(chunk.get("id"))
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        parts: list[dict] = []
        for choice in as_list(chunk.get("choices")):
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = as_dict(choice.get("delta"))
            # DeepSeek and Qwen say reasoning_content; OpenRouter and vLLM say reasoning.
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if self.thoughts and isinstance(reasoning, str) and reasoning:
                parts.append({"text": reasoning, "thought": True})
            if delta.get("thinking_blocks"):
                self.blocks += [block for block in as_list(delta["thinking_blocks"]) if isinstance(block, dict)]
            for text in (delta.get("content"), delta.get("refusal")):
                if isinstance(text, str) and text:  # Gemini clients drop an event with an empty text part
                    parts.append({"text": text})
            if delta.get("tool_calls"):
                for call in as_list(delta["tool_calls"]):
                    self._tool_delta(as_dict(call))
            if isinstance(choice.get("finish_reason"), str) and choice["finish_reason"]:
                self.finish_reason = choice["finish_reason"]
        if self.calls:
            parts += self._calls(whole_only=True)
        return [event(self.id, self.model, parts)] if parts else []

    def finish(self) -> list[dict]:
        if self.done:
            return []
        self.done = True
        parts = self._calls(whole_only=False)
        return [event(self.id or new_id(""), self.model, parts, self.finish_reason or "stop", self.usage)]

    def _tool_delta(self, delta: dict) -> None:
        fn = as_dict(delta.get("function"))
        index, upstream_id, key = call_slot(self.route, self.calls, delta)
        if key is None:
            key = self.route[index] = len(self.calls)
            self.calls.append({"upstream_id": upstream_id, "id": upstream_id or new_id("call_"), "name": "",
                               "args": Arguments(), "extra": None, "sent": False})
        call = self.calls[key]
        if isinstance(fn.get("name"), str) and not call["name"]:
            call["name"] = fn["name"]
        if isinstance(delta.get("extra_content"), dict):
            call["extra"] = delta["extra_content"]
        fragment = fn.get("arguments") or ""
        if fragment and not call["sent"]:  # past a complete JSON object only whitespace can come
            call["args"].add(fragment if isinstance(fragment, str) else dumps(fragment))

    def _calls(self, whole_only: bool) -> list[dict]:
        """functionCall parts for the calls not sent yet, in order; whole ones only while streaming."""
        ready = []
        for call in self.calls:
            if call["sent"]:
                continue
            if whole_only and not (call["name"] and call["args"].whole):
                break  # a later call may not overtake an earlier one
            call["sent"] = True
            args = call["args"]  # (parsed already when whole: call_parts takes the object as it is)
            chat_call = {"id": call["id"], "function": {"name": call["name"],
                                                        "arguments": args.object if args.object is not None else args.text}}
            if call["extra"]:
                chat_call["extra_content"] = call["extra"]
            ready.append(chat_call)
        if not ready:
            return []
        packed = None if self.signed else pack_thinking(self.blocks)
        self.signed = self.signed or packed is not None
        return call_parts(ready, packed)


def stream(body: dict, model: str) -> ChatToGeminiStream:
    """Fresh state for one streamed answer to the generateContent request `body`, shown as `model`."""
    return ChatToGeminiStream(body, model)
