"""A Responses request's `instructions` and `input` items -> chat-completions messages.

Consecutive assistant items (reasoning, an assistant message, calls) make one assistant message;
the media a tool returned (images, files) follow the tool messages as one user message, since a
chat tool message holds text only. `responses_client.request` builds the rest of the request.
"""

from __future__ import annotations

from .common import (
    CANNOT,
    as_dict,
    as_list,
    as_str,
    dumps,
    give_reasoning,
    new_id,
    parse_data_url,
    refuse,
    unpack_thinking,
)

NAMESPACE_SEP = "__"  # a function inside a namespace is the chat function `<namespace>__<name>`
CUSTOM_INPUT = "input"  # the one string parameter a custom tool's function takes
LOCAL_SHELL = "local_shell"
SHELL_KEYS = ("command", "working_directory", "timeout_ms")  # the local_shell function's parameters
_IMAGE_DETAIL = frozenset({"auto", "low", "high"})


def chat_name(namespace: object, name: object) -> str:
    name = name if isinstance(name, str) else ""
    return f"{namespace}{NAMESPACE_SEP}{name}" if isinstance(namespace, str) and namespace else name


def arguments(value: object) -> str:
    """Call arguments as the JSON text chat wants; never empty."""
    if isinstance(value, str) and value.strip():
        return value
    return dumps(value) if isinstance(value, dict) else "{}"


def messages(body: dict, model: str) -> list[dict]:
    """The chat messages for a Responses request to `model` (lower case)."""
    talk = _Conversation(model)
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        talk.add({"role": "system", "content": instructions})
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    elif not isinstance(items, list):
        raise refuse("input", "must be a string or a list of items")
    for i, item in enumerate(items):
        _item(talk, item, f"input[{i}]")
    talk.end_turn()
    talk.flush_media()
    if all(message["role"] == "system" for message in talk.messages):
        raise refuse("input", "at least one message is required")
    return talk.messages


class _Conversation:
    def __init__(self, model: str) -> None:
        self.model = model
        self.messages: list[dict] = []
        self.turn: dict | None = None  # the assistant message being built
        self.reasoning: list[str] = []  # for the next (or current) assistant message
        self.blocks: list[dict] = []
        self.media: list[dict] = []  # returned by tools, waiting for the last tool message

    def assistant(self) -> dict:
        self.flush_media()
        if self.turn is None:
            self.turn = {"role": "assistant", "content": [], "tool_calls": []}
        return self.turn

    def end_turn(self) -> None:
        turn, self.turn = self.turn, None
        if turn is None:
            return
        calls = turn.pop("tool_calls")
        text = "".join(turn["content"])
        # Chat wants content unless there are tool calls; an empty string is always accepted.
        turn["content"] = text if text or not calls else None
        if calls:
            turn["tool_calls"] = calls
        if self.blocks:
            turn["thinking_blocks"] = self.blocks
        self.messages.append(give_reasoning(turn, "\n\n".join(self.reasoning), self.model))
        self.reasoning, self.blocks = [], []

    def flush_media(self) -> None:
        if self.media:
            self.messages.append({"role": "user", "content": self.media})
            self.media = []

    def add(self, message: dict) -> None:
        self.end_turn()
        self.flush_media()
        self.reasoning, self.blocks = [], []  # reasoning that no answer followed leads nowhere
        self.messages.append(message)

    def call(self, call_id: object, name: str, args: str) -> None:
        call = {"id": as_str(call_id) or new_id("call_"), "type": "function", "function": {"name": name, "arguments": args}}
        self.assistant()["tool_calls"].append(call)

    def tool_output(self, call_id: object, output: object, where: str) -> None:
        self.end_turn()
        text, media = _output(output, where)
        self.messages.append({"role": "tool", "tool_call_id": as_str(call_id), "content": text})
        self.media += media


def _item(talk: _Conversation, item: object, where: str) -> None:
    if not isinstance(item, dict):
        raise refuse(where, "an input item must be an object")
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind == "message":
        _message(talk, item, where)
    elif kind == "reasoning":
        texts = [as_str(s.get("text")) for s in as_list(item.get("summary")) if isinstance(s, dict)]
        if not any(texts):
            texts = [as_str(c.get("text")) for c in as_list(item.get("content")) if isinstance(c, dict)]
        talk.reasoning += [text for text in texts if text]
        # Another vendor's encrypted reasoning means nothing here and is dropped.
        talk.blocks += unpack_thinking(item.get("encrypted_content")) or []
    elif kind == "function_call":
        talk.call(item.get("call_id"), chat_name(item.get("namespace"), item.get("name")), arguments(item.get("arguments")))
    elif kind == "custom_tool_call":
        args = dumps({CUSTOM_INPUT: as_str(item.get("input"))})
        talk.call(item.get("call_id"), chat_name(item.get("namespace"), item.get("name")), args)
    elif kind == "local_shell_call":
        action = as_dict(item.get("action"))
        talk.call(item.get("call_id"), LOCAL_SHELL, dumps({key: action[key] for key in SHELL_KEYS if action.get(key)}))
    elif kind in ("function_call_output", "custom_tool_call_output"):
        talk.tool_output(item.get("call_id"), item.get("output"), f"{where}.output")
    elif kind == "local_shell_call_output":
        # The SDK types name the call by `id`; accept `call_id` as function outputs have it.
        talk.tool_output(item.get("call_id") or item.get("id"), item.get("output"), f"{where}.output")
    elif kind == "item_reference":
        raise refuse(where, f"item_reference: this proxy keeps no items; send the item {item.get('id')!r} itself")
    else:
        raise refuse(f"{where}.type", f"{kind!r} items {CANNOT}")


def _message(talk: _Conversation, item: dict, where: str) -> None:
    role, content = item.get("role"), item.get("content")
    if role == "assistant":
        parts = [content] if isinstance(content, str) else content if isinstance(content, list) else []
        for j, part in enumerate(parts):
            text = part if isinstance(part, str) else _assistant_text(part, f"{where}.content[{j}]")
            talk.assistant()["content"].append(text)
    elif role in ("system", "developer"):
        # Every chat upstream takes `system`; not all take `developer`.
        texts = [part["text"] for part in _parts(content, where) if part["type"] == "text"]
        talk.add({"role": "system", "content": "\n\n".join(texts)})
    elif role == "user":
        parts = _parts(content, where)
        if all(part["type"] == "text" for part in parts):
            # Some upstreams (DeepSeek) take only string content.
            talk.add({"role": "user", "content": "\n".join(part["text"] for part in parts)})
        else:
            talk.add({"role": "user", "content": parts})
    else:
        raise refuse(f"{where}.role", f"{role!r} is not a message role")


def _assistant_text(part: object, where: str) -> str:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("output_text", "input_text", "text"):
        return as_str(part.get("text"))  # type: ignore[union-attr]
    if kind == "refusal":
        return as_str(part.get("refusal"))  # type: ignore[union-attr]
    raise refuse(where, f"{kind!r} content in an assistant message {CANNOT}")


def _parts(content: object, where: str) -> list[dict]:
    """Message content (a string or input parts) -> chat content parts."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise refuse(f"{where}.content", "must be a string or a list of parts")
    return [_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]


def _part(part: object, where: str) -> dict:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": as_str(part.get("text"))}  # type: ignore[union-attr]
    if kind == "refusal":
        return {"type": "text", "text": as_str(part.get("refusal"))}  # type: ignore[union-attr]
    if kind == "input_image":
        url = part.get("image_url")  # type: ignore[union-attr]
        if not isinstance(url, str) or not url:
            raise refuse(where, f"an image by file_id is stored at OpenAI and {CANNOT}; send image_url")
        image = {"url": url}
        if as_str(part.get("detail")) in _IMAGE_DETAIL:  # type: ignore[union-attr]
            image["detail"] = part["detail"]  # type: ignore[index]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        data = part.get("file_data")  # type: ignore[union-attr]
        if not isinstance(data, str) or not data:
            raise refuse(where, f"a file by file_id or file_url is stored elsewhere and {CANNOT}; send file_data")
        filename = as_str(part.get("filename")) or "file.pdf"  # type: ignore[union-attr]
        if not parse_data_url(data):
            # Bare base64, as some clients send it: chat upstreams want a data URL.
            data = f"data:{'text/plain' if filename.endswith('.txt') else 'application/pdf'};base64,{data}"
        return {"type": "file", "file": {"filename": filename, "file_data": data}}
    if kind == "input_audio":
        audio = as_dict(part.get("input_audio"))  # type: ignore[union-attr]
        return {"type": "input_audio", "input_audio": {"data": audio.get("data"), "format": audio.get("format")}}
    raise refuse(where, f"{kind!r} content {CANNOT}")


def _output(output: object, where: str) -> tuple[str, list[dict]]:
    """A tool's output -> (the tool message's text, media for a user message after it)."""
    if isinstance(output, str):
        return output, []
    if not isinstance(output, list):
        return (dumps(output) if output is not None else ""), []
    texts: list[str] = []
    media: list[dict] = []
    for j, part in enumerate(output):
        converted = _part(part, f"{where}[{j}]")
        if converted["type"] == "text":
            texts.append(converted["text"])
        else:
            media.append(converted)
    return "\n".join(texts), media
