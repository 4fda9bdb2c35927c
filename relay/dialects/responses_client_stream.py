"""chat.completion.chunk dicts -> OpenAI Responses stream events, one chunk at a time.

The events come as OpenAI sends them: `response.created`, `response.in_progress`, then per output
item `response.output_item.added` ... `response.output_item.done` (with the content part, text,
reasoning summary and argument events between), and last `response.completed` (or
`response.incomplete`) carrying usage. Every event has the next `sequence_number`.

One output item is open at a time. A chat stream can interleave reasoning, text and several tool
calls whose argument fragments alternate: a call's item is closed early only once its arguments
form a complete JSON object (nothing valid can follow that); until then the fragments of other
calls wait in their buffers, and text waits behind them, and all of it is sent in order when its
item opens. Nothing is dropped and each call's fragments keep their order. Custom tool and local
shell calls are sent whole when they close: their input sits inside JSON arguments and has no
deltas of its own until the JSON is whole.
"""

from __future__ import annotations

from .arguments import Arguments
from .common import as_dict, as_list, call_slot, dumps, new_id, now, pack_thinking, stream_error
from .responses_client import (
    call_item,
    envelope,
    message_item,
    outcome,
    output_text,
    reasoning_item,
    tool_map,
    usage,
)


class ChatToResponsesStream:
    def __init__(self, body: dict, model: str) -> None:
        self.body = body
        self.model = model
        self.names = tool_map(body)
        self.id = new_id("resp_")
        self.created = now()
        self.sequence = 0
        self.output: list[dict] = []  # closed items; position = output_index
        self.open: dict | None = None  # the item being sent: {"kind": "reasoning" | "message" | "call", ...}
        self.calls: list[dict] = []  # call state, in arrival order
        self.route: dict[object, int] = {}  # upstream tool-call index -> its latest call
        self.deferred: list[tuple[str, str]] = []  # text that came while an unfinished call was open
        self.blocks: list[dict] = []  # signed thinking not yet given to a reasoning item
        self.finish_reason: str | None = None
        self.chat_usage: dict | None = None
        self.started = self.done = False
        self.final: dict | None = None

    @property
    def response(self) -> dict:
        """The response object: after `finish`, the one `response.completed` carried (to store)."""
        return self.final or envelope(self.id, self.created, self.model, self.body, list(self.output), "in_progress")

    def feed(self, chunk: dict) -> list[dict]:
        if chunk.get("error"):
            raise stream_error(chunk["error"])
        out = self._start()
        if isinstance(chunk.get("usage"), dict):
            self.chat_usage = chunk["usage"]
        for choice in as_list(chunk.get("choices")):
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = as_dict(choice.get("delta"))
            # DeepSeek and Qwen say reasoning_content; OpenRouter and vLLM say reasoning.
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                out += self._text("reasoning", reasoning)
            for block in as_list(delta.get("thinking_blocks")) if "thinking_blocks" in delta else ():
                if isinstance(block, dict):
                    self.blocks.append({key: value for key, value in block.items() if key != "index"})
            for kind in ("content", "refusal"):
                if isinstance(delta.get(kind), str) and delta[kind]:
                    out += self._text(kind, delta[kind])
            for call in as_list(delta.get("tool_calls")) if "tool_calls" in delta else ():
                out += self._tool_delta(as_dict(call))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
                out += self._close_all()
        return out

    def finish(self) -> list[dict]:
        # Usage arrives after the finish_reason chunk, so the last event waits for the end.
        if self.done:
            return []
        self.done = True
        out = self._start() + self._close_all()
        if self.blocks:  # signed thinking that came without any text (redacted) is still owed
            out += self._open_item("reasoning") + self._close()
        status, incomplete = outcome(self.finish_reason)
        self.final = envelope(self.id, self.created, self.model, self.body, list(self.output), status,
                              usage(self.chat_usage), incomplete)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + [self._event(kind, response=self.final)]

    def _event(self, kind: str, **fields: object) -> dict:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _start(self) -> list[dict]:
        if self.started:
            return []
        self.started = True
        return [self._event("response.created", response=self.response),
                self._event("response.in_progress", response=self.response)]

    # ---- text and reasoning --------------------------------------------------------------

    def _text(self, kind: str, text: str) -> list[dict]:
        if self.deferred or self._call_unfinished():
            self.deferred.append((kind, text))
            return []
        return self._write(kind, text)

    def _write(self, kind: str, text: str) -> list[dict]:
        item_kind = "reasoning" if kind == "reasoning" else "message"
        out = [] if self.open and self.open["kind"] == item_kind else self._close() + self._open_item(item_kind)
        item: dict = self.open  # type: ignore[assignment]  # open now, whatever it was
        where = {"item_id": item["id"], "output_index": item["index"]}
        if item_kind == "reasoning":
            if not item["texts"]:
                part = {"type": "summary_text", "text": ""}
                out.append(self._event("response.reasoning_summary_part.added", **where, summary_index=0, part=part))
            item["texts"].append(text)
            return out + [self._event("response.reasoning_summary_text.delta", **where, summary_index=0, delta=text)]
        part_kind = "output_text" if kind == "content" else "refusal"
        if item["part"] != part_kind:
            out += self._end_part(item) + self._start_part(item, part_kind)
        item["texts"].append(text)
        where["content_index"] = len(item["parts"])
        if part_kind == "refusal":
            return out + [self._event("response.refusal.delta", **where, delta=text)]
        return out + [self._event("response.output_text.delta", **where, delta=text, logprobs=[])]

    def _open_item(self, kind: str) -> list[dict]:
        prefix = "rs_" if kind == "reasoning" else "msg_"
        # Text comes as a list of pieces: `+=` on a dict value copies the whole string every time.
        self.open = {"kind": kind, "index": len(self.output), "id": new_id(prefix), "texts": [], "parts": [], "part": None}
        if kind == "reasoning":
            skeleton = reasoning_item(self.open["id"], "", None)
        else:
            skeleton = message_item(self.open["id"], [], "in_progress")
        return [self._event("response.output_item.added", output_index=self.open["index"], item=skeleton)]

    def _start_part(self, item: dict, kind: str) -> list[dict]:
        item["part"], item["texts"] = kind, []
        part = output_text("") if kind == "output_text" else {"type": "refusal", "refusal": ""}
        where = {"item_id": item["id"], "output_index": item["index"], "content_index": len(item["parts"])}
        return [self._event("response.content_part.added", **where, part=part)]

    def _end_part(self, item: dict) -> list[dict]:
        if item["part"] is None:
            return []
        where = {"item_id": item["id"], "output_index": item["index"], "content_index": len(item["parts"])}
        text = "".join(item["texts"])
        if item["part"] == "output_text":
            part = output_text(text)
            out = [self._event("response.output_text.done", **where, text=text, logprobs=[])]
        else:
            part = {"type": "refusal", "refusal": text}
            out = [self._event("response.refusal.done", **where, refusal=text)]
        item["parts"].append(part)
        item["part"] = None
        return out + [self._event("response.content_part.done", **where, part=part)]

    # ---- tool calls ----------------------------------------------------------------------

    def _tool_delta(self, delta: dict) -> list[dict]:
        fn = as_dict(delta.get("function"))
        index, upstream_id, key = call_slot(self.route, self.calls, delta)
        if key is None:
            key = self.route[index] = len(self.calls)
            self.calls.append({"upstream_id": upstream_id, "call_id": upstream_id or new_id("call_"), "name": "",
                               "args": Arguments(), "pending": [], "item": None, "index": None, "closed": False})
        call = self.calls[key]
        if isinstance(fn.get("name"), str) and not call["name"]:
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
        out = self._flush(self.open["call"]) if self.open and self.open["kind"] == "call" else []
        for call in self.calls:
            if call["item"] is not None:
                continue
            if not call["name"] or self._call_unfinished():
                break
            out += self._close() + self._open_call(call)
        return out

    def _call_unfinished(self) -> bool:
        return bool(self.open) and self.open["kind"] == "call" and not self.open["call"]["args"].whole

    def _open_call(self, call: dict) -> list[dict]:
        call["index"] = len(self.output)
        call["item"] = call_item(call["call_id"], call["name"], "", self.names, "in_progress")
        self.open = {"kind": "call", "index": call["index"], "call": call}
        added = self._event("response.output_item.added", output_index=call["index"], item=call["item"])
        return [added] + self._flush(call)

    def _flush(self, call: dict) -> list[dict]:
        pending = call["pending"]
        if not pending:
            return []
        call["pending"] = []
        if call["item"]["type"] != "function_call":
            return []  # a custom or shell call is sent whole when it closes, from its `args`
        return [self._event("response.function_call_arguments.delta", item_id=call["item"]["id"],
                            output_index=call["index"], delta="".join(pending))]

    def _close_call(self, call: dict) -> list[dict]:
        call["closed"] = True
        kind = call["item"]["type"]
        where = {"item_id": call["item"]["id"], "output_index": call["index"]}
        out = self._flush(call)
        args = call["args"].text
        if not args.strip():
            args = "{}"  # a call without arguments still takes an object
            if kind == "function_call":
                out.append(self._event("response.function_call_arguments.delta", **where, delta=args))
        done = call_item(call["call_id"], call["name"], args, self.names, "completed", call["item"]["id"],
                         call["args"].object)
        if kind == "function_call":
            out.append(self._event("response.function_call_arguments.done", **where, arguments=args))
        elif kind == "custom_tool_call":
            if done["input"]:
                out.append(self._event("response.custom_tool_call_input.delta", **where, delta=done["input"]))
            out.append(self._event("response.custom_tool_call_input.done", **where, input=done["input"]))
        return out + self._done(call["index"], done)

    # ---- closing -------------------------------------------------------------------------

    def _close(self) -> list[dict]:
        item, self.open = self.open, None
        if item is None:
            return []
        if item["kind"] == "call":
            return self._close_call(item["call"])
        where = {"item_id": item["id"], "output_index": item["index"]}
        if item["kind"] == "message":
            status = "incomplete" if outcome(self.finish_reason)[1] else "completed"
            return self._end_part(item) + self._done(item["index"], message_item(item["id"], item["parts"], status))
        out = []
        text = "".join(item["texts"])
        if text:
            part = {"type": "summary_text", "text": text}
            out += [self._event("response.reasoning_summary_text.done", **where, summary_index=0, text=text),
                    self._event("response.reasoning_summary_part.done", **where, summary_index=0, part=part)]
        packed, self.blocks = pack_thinking(self.blocks), []
        return out + self._done(item["index"], reasoning_item(item["id"], text, packed))

    def _done(self, index: int, item: dict) -> list[dict]:
        self.output.append(item)
        return [self._event("response.output_item.done", output_index=index, item=item)]

    def _close_all(self) -> list[dict]:
        out: list[dict] = []
        for call in self.calls:
            if call["item"] is None:
                out += self._close() + self._open_call(call)
        deferred, self.deferred = self.deferred, []
        for kind, text in deferred:
            out += self._write(kind, text)
        return out + self._close()


def stream(body: dict, model: str) -> ChatToResponsesStream:
    """Fresh state for one streamed answer to the Responses request `body`, shown as `model`."""
    return ChatToResponsesStream(body, model)
