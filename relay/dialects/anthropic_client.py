"""Anthropic messages client -> OpenAI chat channel (Claude Code on GPT, DeepSeek, Qwen): the
request and the whole answer. The streamed answer is in `anthropic_client_stream.py`.

What has no OpenAI form is left out: `top_k`, `cache_control`, `service_tier`, `container`,
server tools (web search, code execution, bash/editor/computer tool versions) and their result
blocks, signed Claude thinking in the history. A document or image the model could not see is
refused rather than silently dropped.
"""

from __future__ import annotations

import re

from relay.dialects.common import (
    NO_EFFORT,
    REASONING_MODEL,
    STOP_FROM_OPENAI,
    anthropic_usage_from_chat,
    as_dict,
    as_list,
    as_str,
    budget_to_effort,
    chat_message,
    dumps,
    give_reasoning,
    new_id,
    parse_arguments,
    refuse,
)

# Output caps of common chat models; Claude Code asks for 32000 and these would refuse it.
_MAX_OUTPUT = (
    (re.compile(r"(^|/)gpt-4\.1"), 32768),
    (re.compile(r"(^|/)(gpt-4o|chatgpt-4o)"), 16384),
    (re.compile(r"(^|/)(gpt-4-|gpt-4$|gpt-3\.5)"), 4096),
    (re.compile(r"(^|/)deepseek-chat"), 8192),
)
_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def request(body: dict, model: str) -> dict:
    name = model.lower()
    messages: list[dict] = []
    if system := _system_text(body.get("system")):
        messages.append({"role": "system", "content": system})
    for i, msg in enumerate(body.get("messages") or []):
        messages += _message(msg, i, name)
    out: dict = {"model": model, "messages": messages}

    limit = body.get("max_tokens")
    if isinstance(limit, int):
        cap = next((cap for pattern, cap in _MAX_OUTPUT if pattern.search(name)), None)
        limit = min(limit, cap) if cap else limit
        out["max_completion_tokens" if REASONING_MODEL.search(name) else "max_tokens"] = limit
    if not REASONING_MODEL.search(name):
        for key in ("temperature", "top_p"):
            if isinstance(body.get(key), (int, float)):
                out[key] = body[key]
    if stops := [s for s in body.get("stop_sequences") or [] if isinstance(s, str) and s]:
        out["stop"] = stops
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str) and user:
        out["user"] = user[:64]
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # so message_delta carries real usage

    if (effort := _effort(body)) and not NO_EFFORT.search(name):
        out["reasoning_effort"] = effort
    fmt = (body.get("output_config") or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = {"name": "output", "schema": fmt.get("schema") or {}}
        out["response_format"] = {"type": "json_schema", "json_schema": schema}

    # Server tools (web search, code execution, versioned bash/editor tools) run at Anthropic only.
    tools = [_tool(t) for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") in (None, "custom")]
    if tools:
        out["tools"] = tools
        choice = body.get("tool_choice") or {}
        kind = choice.get("type")
        if kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        elif kind in ("any", "none", "auto"):
            out["tool_choice"] = {"any": "required"}.get(kind, kind)
        if choice.get("disable_parallel_tool_use") and kind != "none":
            out["parallel_tool_calls"] = False
    return out


def _effort(body: dict) -> str | None:
    """Anthropic thinking -> OpenAI reasoning_effort. xhigh and max become high: the level every
    reasoning upstream takes. Disabled thinking sends nothing (OpenAI has no off switch)."""
    level = (body.get("output_config") or {}).get("effort")
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "disabled":
        return None
    if level in ("low", "medium", "high"):
        return level
    if level in ("xhigh", "max"):
        return "high"
    if thinking.get("type") == "enabled" and isinstance(thinking.get("budget_tokens"), int):
        return budget_to_effort(thinking["budget_tokens"])
    return "medium" if thinking.get("type") in ("enabled", "adaptive") else None


def _system_text(system: object) -> str:
    if isinstance(system, list):
        texts = [block.get("text") or "" for block in system if isinstance(block, dict) and block.get("type") == "text"]
        return "\n\n".join(texts)
    return system if isinstance(system, str) else ""


def _tool(tool: dict) -> dict:
    fn = {"name": tool.get("name"), "parameters": tool.get("input_schema") or {"type": "object", "properties": {}}}
    if tool.get("description"):
        fn["description"] = tool["description"]
    return {"type": "function", "function": fn}


def call_id(value: object) -> str:
    return _ID_CHARS.sub("_", str(value or "")) or "call_unknown"


def _message(msg: dict, i: int, model: str) -> list[dict]:
    role, content = (msg.get("role"), msg.get("content")) if isinstance(msg, dict) else (None, None)
    if role == "system":
        return [{"role": "system", "content": _system_text(content)}]
    if role not in ("user", "assistant"):
        raise refuse(f"messages.{i}.role", f"{role!r} is not a message role")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks = [block for block in content or [] if isinstance(block, dict)]
    if role == "assistant":
        return [_assistant(blocks, model)]
    # Tool results become `tool` messages, which must directly follow the assistant's calls; the
    # rest of the turn (and images a tool returned, which tool messages cannot carry) follows them.
    tool_messages: list[dict] = []
    images: list[dict] = []
    parts: list[dict] = []
    for j, block in enumerate(blocks):
        if block.get("type") == "tool_result":
            text, returned = _tool_result(block.get("content"), f"messages.{i}.content.{j}")
            tool_messages.append({"role": "tool", "tool_call_id": call_id(block.get("tool_use_id")), "content": text})
            images += returned
        else:
            parts += _part(block, f"messages.{i}.content.{j}")
    parts = images + parts
    if not parts:
        return tool_messages
    if all(part["type"] == "text" for part in parts):
        return tool_messages + [{"role": "user", "content": "\n\n".join(part["text"] for part in parts)}]
    return tool_messages + [{"role": "user", "content": parts}]


def _assistant(blocks: list[dict], model: str) -> dict:
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[dict] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text") or "")
        elif kind == "thinking" and not block.get("signature"):
            # Unsigned thinking came from an OpenAI-style upstream through this proxy (DeepSeek,
            # Qwen): those want it back as reasoning_content. Signed Claude thinking means nothing
            # to another model and is dropped.
            reasoning.append(block.get("thinking") or "")
        elif kind == "tool_use":
            call = {"name": block.get("name"), "arguments": dumps(block.get("input") or {})}
            calls.append({"id": call_id(block.get("id")), "type": "function", "function": call})
    # OpenAI wants content unless there are tool calls; an empty string is always accepted.
    out: dict = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        out["tool_calls"] = calls
    return give_reasoning(out, "".join(reasoning), model)


def _tool_result(content: object, where: str) -> tuple[str, list[dict]]:
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[dict] = []
    for block in content or []:
        for part in _part(block, where):
            if part["type"] == "text":
                texts.append(part["text"])
            else:
                images.append(part)
    return "\n".join(texts), images


def _part(block: dict, where: str) -> list[dict]:
    if not isinstance(block, dict):
        return []
    kind = block.get("type")
    source = block.get("source")
    source = source if isinstance(source, dict) else {}  # a search result's source is its URL
    if kind == "text":
        return [{"type": "text", "text": block.get("text") or ""}] if block.get("text") else []
    if kind == "image" and source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        return [{"type": "image_url", "image_url": {"url": url}}]
    if kind == "image" and source.get("type") == "url":
        return [{"type": "image_url", "image_url": {"url": source.get("url")}}]
    if kind == "document" and source.get("type") == "base64":
        data = f"data:{source.get('media_type') or 'application/pdf'};base64,{source.get('data')}"
        return [{"type": "file", "file": {"filename": block.get("title") or "document.pdf", "file_data": data}}]
    if kind == "document" and source.get("type") == "text":
        return [{"type": "text", "text": source.get("data") or ""}]
    if kind == "document" and source.get("type") == "content":
        inner = source.get("content")
        if isinstance(inner, str):
            return [{"type": "text", "text": inner}]
        return [part for item in inner or [] for part in _part(item, where)]
    if kind == "search_result":
        found = [part for item in block.get("content") or [] for part in _part(item, where)]
        text = "\n".join(part["text"] for part in found if part["type"] == "text")
        return [{"type": "text", "text": f"{block.get('title') or ''} ({block.get('source') or ''})\n{text}"}]
    if kind in ("image", "document"):
        raise refuse(where, f"a {kind} from a {source.get('type')!r} source cannot be sent to this model's channel")
    return []  # thinking in a user turn, server tool blocks, blocks newer than this proxy


def response(answer: dict, model: str) -> dict:
    choice, message, reasoning, text = chat_message(answer)
    content: list[dict] = []
    if reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    for value in (text, message.get("refusal")):
        if isinstance(value, str) and value:
            content.append({"type": "text", "text": value})
    calls = [call for call in as_list(message.get("tool_calls")) if isinstance(call, dict)]
    for call in calls:
        fn = as_dict(call.get("function"))
        arguments = parse_arguments(fn.get("arguments"))
        content.append({"type": "tool_use", "id": call_id(call.get("id")), "name": as_str(fn.get("name")), "input": arguments})
    return {
        "id": message_id(answer.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason"), bool(calls)),
        "stop_sequence": None,
        "usage": anthropic_usage_from_chat(as_dict(answer.get("usage"))),
    }


def stop_reason(finish_reason: object, called_tools: bool) -> str:
    # Some OpenAI-compatible servers (vLLM, Qwen) say "stop" after tool calls; clients drive their
    # tool loop from tool_use.
    reason = STOP_FROM_OPENAI.get(as_str(finish_reason), "end_turn")
    return "tool_use" if called_tools and reason == "end_turn" else reason


def message_id(upstream_id: object) -> str:
    value = str(upstream_id or "")
    if value.startswith("msg_"):
        return value
    return "msg_" + value.removeprefix("chatcmpl-") if value else new_id("msg_")
