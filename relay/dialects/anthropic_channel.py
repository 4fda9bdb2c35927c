"""OpenAI chat client -> Anthropic messages channel: the request and the whole answer.

The streamed answer is in `anthropic_channel_stream.py`.
"""

from __future__ import annotations

import base64
import re

from relay.dialects.common import (
    CANNOT,
    EFFORT_BUDGETS,
    FINISH_FROM_ANTHROPIC,
    as_dict,
    as_list,
    as_str,
    budget_to_effort,
    check_openai,
    clean_stops,
    dumps,
    now,
    parse_arguments,
    parse_data_url,
    refuse,
    stream_error,
    text_of,
    usage_from_anthropic,
)

# The tool a JSON-schema answer is forced through; its input comes back to the client as content.
JSON_TOOL = "json_tool_call"
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

# Claude generations whose rules differ (model names carry them: claude-opus-4-6, claude-3-5-haiku).
THINKING = (3, 7)  # earlier Claude models cannot think at all
ADAPTIVE = (4, 6)  # adaptive thinking + output_config.effort; budget_tokens deprecated, then removed
NO_SAMPLING = (4, 7)  # temperature, top_p and top_k are rejected
THINKS_BY_DEFAULT = (5, 0)  # a forced tool_choice clashes with thinking the model does anyway
NATIVE_JSON = (4, 5)  # output_config.format (structured outputs)
_VERSION = re.compile(r"claude-(?:[a-z]+-)?(\d+)(?:[-.](\d)(?!\d))?")
_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")
# output_config.effort words; `minimal` has no Anthropic level.
_EFFORT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "max"}


def generation(model: str) -> tuple[int, int]:
    """(major, minor) of a Claude model name.

    A Claude name without a version is a new model and gets the newest rules; another vendor's
    model behind an Anthropic-style API (DeepSeek, Kimi, GLM) gets the most widely accepted ones.
    """
    name = model.lower()
    match = _VERSION.search(name)
    if match:
        return int(match[1]), int(match[2] or 0)
    return (99, 0) if "claude" in name else (0, 0)


def default_max_tokens(gen: tuple[int, int]) -> int:
    # Anthropic requires max_tokens; OpenAI clients often send none. Claude 3 Haiku/Opus stop at
    # 4096 output tokens, later models take more; 8192 keeps a non-streamed answer well inside the
    # first-byte timeout.
    return 8192 if gen >= (3, 5) else 4096


def tool_id(value: object) -> str:
    """Anthropic tool ids must match ^[A-Za-z0-9_-]+$; other providers' ids (Kimi's
    `functions.get_weather:0`) are mapped the same way in tool_use and tool_result."""
    return _ID_CHARS.sub("_", str(value or "")) or "toolu_unknown"


def request(body: dict, model: str) -> dict:
    check_openai(body)
    if body.get("audio"):
        raise refuse("audio", "audio output is not supported by this model's channel")
    gen = generation(model)
    system, turns = _messages(body.get("messages") or [])
    out: dict = {"model": model, "messages": turns}
    tools = [_tool(tool, i) for i, tool in enumerate(body.get("tools") or [])]
    choice = body.get("tool_choice")

    thinking, effort, budget = _thinking(body, gen)
    if thinking and (_unsigned_tool_turn(turns) or tools and _forces_tool(choice)):
        # Anthropic refuses thinking with a forced tool, and after an assistant tool call that came
        # without its thinking block (a history from another model): the client's tool contract
        # matters more than the reasoning, so the answer comes without thinking.
        thinking = effort = None
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    max_tokens = limit or default_max_tokens(gen)
    if thinking:
        out["thinking"] = thinking
        if effort:
            out["output_config"] = {"effort": effort}
        if not limit:
            max_tokens += budget or EFFORT_BUDGETS.get(body.get("reasoning_effort"), EFFORT_BUDGETS["high"])
        elif budget and limit <= budget:
            max_tokens = budget + limit  # budget_tokens must stay below max_tokens
    out["max_tokens"] = max_tokens

    if not thinking and gen < NO_SAMPLING:
        # OpenAI's temperature runs 0-2, Anthropic's 0-1. Clamped, not halved: clients mostly send
        # 0-1 values chosen for their meaning (0.2 precise, 0.7 balanced) and those keep it; the
        # rare value above 1 asks for "very random", which 1 is on Anthropic's scale.
        if isinstance(body.get("temperature"), (int, float)):
            out["temperature"] = min(max(float(body["temperature"]), 0.0), 1.0)
        elif isinstance(body.get("top_p"), (int, float)):
            # Recent Claude models refuse temperature and top_p together; temperature wins.
            out["top_p"] = body["top_p"]
    if stops := clean_stops(body.get("stop")):
        out["stop_sequences"] = stops
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    if body.get("stream"):
        out["stream"] = True

    fmt = body.get("response_format") if isinstance(body.get("response_format"), dict) else {}
    if fmt.get("type") in ("json_schema", "json_object"):
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt["type"] == "json_schema" else None
        if not thinking and gen < THINKS_BY_DEFAULT:
            # A forced tool works on every Claude model and takes any JSON Schema as input_schema.
            answer_tool = {
                "name": JSON_TOOL,
                "description": "Give the final answer to the user as this tool's input.",
                "input_schema": _object_schema(schema or {"type": "object"}),
            }
            if not tools or choice == "none":
                tools, choice = [], {"type": "function", "function": {"name": JSON_TOOL}}
            elif not _forces_tool(choice):
                choice = "required"  # a client tool or the answer, never free text
            tools.append(answer_tool)
        elif schema and gen >= NATIVE_JSON:
            # Thinking forbids a forced tool; structured outputs work with it.
            out.setdefault("output_config", {})["format"] = {"type": "json_schema", "schema": schema}
        else:
            rule = "Answer with a single JSON object and nothing else."
            if schema:
                rule += " It must match this JSON Schema: " + dumps(schema)
            system.append({"type": "text", "text": rule})
    if system:
        out["system"] = system
    if tools:
        out["tools"] = tools
        if choice is not None or body.get("parallel_tool_calls") is False:
            out["tool_choice"] = _tool_choice(choice, body.get("parallel_tool_calls"))
    return out


def _forces_tool(choice: object) -> bool:
    if isinstance(choice, dict):
        return choice.get("type") == "function" or (choice.get("allowed_tools") or {}).get("mode") == "required"
    return choice == "required"


def _thinking(body: dict, gen: tuple[int, int]) -> tuple[dict | None, str | None, int]:
    """(thinking, output_config effort, budget) from reasoning_effort or a DeepSeek/Anthropic-style
    `thinking` object on the OpenAI body."""
    effort = body.get("reasoning_effort")
    asked = body.get("thinking") if isinstance(body.get("thinking"), dict) else {}
    if effort == "none" or asked.get("type") == "disabled":
        return None, None, 0
    if effort not in EFFORT_BUDGETS and asked.get("type") not in ("enabled", "adaptive") or (0, 0) < gen < THINKING:
        return None, None, 0
    budget = asked.get("budget_tokens") if isinstance(asked.get("budget_tokens"), int) else None
    if gen >= ADAPTIVE:
        word = effort if effort in _EFFORT else budget_to_effort(budget) if budget else None
        level = _EFFORT.get(word) if word else None
        if level == "xhigh" and gen < NO_SAMPLING:
            level = "high"  # xhigh arrived with Opus 4.7
        # Newer models omit thinking text unless asked; the client wants it as reasoning_content.
        return {"type": "adaptive", "display": "summarized"}, level, 0
    budget = max(budget or EFFORT_BUDGETS.get(effort, EFFORT_BUDGETS["medium"]), 1024)
    return {"type": "enabled", "budget_tokens": budget}, None, budget


def _unsigned_tool_turn(turns: list[dict]) -> bool:
    """True when the request continues a tool loop whose assistant turn has no thinking block."""
    if len(turns) < 2 or not any(block["type"] == "tool_result" for block in turns[-1]["content"]):
        return False
    last = turns[-2]["content"]
    called = any(block["type"] == "tool_use" for block in last)
    return called and last[0]["type"] not in ("thinking", "redacted_thinking")


def _object_schema(schema: dict) -> dict:
    return schema if schema.get("type") == "object" else {**schema, "type": "object"}


def _tool(tool: dict, i: int) -> dict:
    if tool.get("type", "function") != "function":
        raise refuse(f"tools[{i}].type", f"only function tools {CANNOT}")
    fn = tool.get("function") or {}
    out = {"name": fn.get("name"), "input_schema": _object_schema(fn.get("parameters") or {"properties": {}})}
    if fn.get("description"):
        out["description"] = fn["description"]
    if tool.get("cache_control"):
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: object, parallel: object) -> dict:
    if isinstance(choice, dict) and choice.get("type") == "function":
        out = {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        out = {"type": "any" if (choice.get("allowed_tools") or {}).get("mode") == "required" else "auto"}
    else:
        out = {"type": {"none": "none", "required": "any"}.get(choice, "auto") if isinstance(choice, str) else "auto"}
    if parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _messages(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    """OpenAI messages -> (Anthropic system blocks, alternating turns without empty text)."""
    system: list[dict] = []
    turns: list[dict] = []
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role in ("system", "developer"):
            system += _text_blocks(msg.get("content"))
        elif role == "user":
            _append(turns, "user", _user_blocks(msg.get("content"), i))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(msg, i))
        elif role == "tool":
            result: dict = {"type": "tool_result", "tool_use_id": tool_id(msg.get("tool_call_id"))}
            if text_of(msg.get("content")).strip():
                result["content"] = text_of(msg.get("content"))
            _append(turns, "user", [result])
        else:
            raise refuse(f"messages[{i}].role", f"role {role!r} {CANNOT}")
    if turns and turns[-1]["role"] == "assistant":
        # A prefilled final assistant turn may not end in whitespace.
        last = turns[-1]["content"]
        if last[-1]["type"] == "text":
            last[-1]["text"] = last[-1]["text"].rstrip()
            if not last[-1]["text"]:
                last.pop()
        if not last:
            turns.pop()
    if not turns:
        raise refuse("messages", "at least one message with content is required")
    return system, turns


def _append(turns: list[dict], role: str, blocks: list[dict]) -> None:
    if not blocks:
        return  # Anthropic rejects empty turns; dropping one may join its neighbours below
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"] += blocks
    else:
        turns.append({"role": role, "content": blocks})


def _text_blocks(content: object) -> list[dict]:
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    blocks = []
    for part in content if isinstance(content, list) else []:
        text = part.get("text") if isinstance(part, dict) and part.get("type") == "text" else None
        if isinstance(text, str) and text.strip():
            block = {"type": "text", "text": text}
            if part.get("cache_control"):
                block["cache_control"] = part["cache_control"]
            blocks.append(block)
    return blocks


def _user_blocks(content: object, i: int) -> list[dict]:
    if not isinstance(content, list):
        return _text_blocks(content)
    blocks = []
    for j, part in enumerate(content):
        kind, where = part.get("type") if isinstance(part, dict) else None, f"messages[{i}].content[{j}]"
        if kind == "text":
            blocks += _text_blocks([part])
        elif kind == "image_url":
            url = part.get("image_url")
            blocks.append(_image(url.get("url") if isinstance(url, dict) else url, where))
        elif kind == "file":
            blocks.append(_document(part.get("file") or {}, where))
        else:
            raise refuse(where, f"{kind!r} content {CANNOT}")
    return blocks


def _image(url: object, where: str) -> dict:
    url = url if isinstance(url, str) else ""
    data = parse_data_url(url)
    if data:
        if data[0] not in IMAGE_TYPES:
            raise refuse(where, f"image type {data[0]} is not supported (jpeg, png, gif, webp)")
        return {"type": "image", "source": {"type": "base64", "media_type": data[0], "data": data[1]}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise refuse(where, "image_url must be a data: URL or an http(s) URL")


def _document(file: dict, where: str) -> dict:
    data = parse_data_url(file.get("file_data") or "")
    if data and data[0] == "application/pdf":
        return {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data[1]}}
    if data and data[0] == "text/plain":
        text = base64.b64decode(data[1]).decode("utf-8", "replace")
        return {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": text}}
    raise refuse(where, f"only PDF or plain-text file_data {CANNOT}")


def _assistant_blocks(msg: dict, i: int) -> list[dict]:
    # Signed thinking goes back first and unchanged, so a tool loop with thinking can go on.
    blocks = []
    for block in msg.get("thinking_blocks") or []:
        if block.get("type") == "thinking" and block.get("signature"):
            text = block.get("thinking") or ""
            blocks.append({"type": "thinking", "thinking": text, "signature": block["signature"]})
        elif block.get("type") == "redacted_thinking" and block.get("data"):
            blocks.append({"type": "redacted_thinking", "data": block["data"]})
    blocks += _text_blocks(msg.get("content"))
    for j, call in enumerate(msg.get("tool_calls") or []):
        if call.get("type", "function") != "function":
            raise refuse(f"messages[{i}].tool_calls[{j}]", f"only function calls {CANNOT}")
        fn = call.get("function") or {}
        arguments = parse_arguments(fn.get("arguments"))
        blocks.append({"type": "tool_use", "id": tool_id(call.get("id")), "name": fn.get("name"), "input": arguments})
    return blocks


def response(answer: dict, model: str) -> dict:
    if answer.get("type") == "error" or "error" in answer and "content" not in answer:
        raise stream_error(answer.get("error"))
    text: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict] = []
    calls: list[dict] = []
    for block in as_list(answer.get("content")):
        block = as_dict(block)
        kind = block.get("type")
        if kind == "text":
            text.append(as_str(block.get("text")))
        elif kind == "thinking":
            thought = as_str(block.get("thinking"))
            reasoning.append(thought)
            thinking_blocks.append({"type": "thinking", "thinking": thought, "signature": as_str(block.get("signature"))})
        elif kind == "redacted_thinking":
            thinking_blocks.append({"type": "redacted_thinking", "data": as_str(block.get("data"))})
        elif kind == "tool_use" and block.get("name") == JSON_TOOL:
            text.append(dumps(block.get("input") or {}))
        elif kind == "tool_use":
            call = {"name": as_str(block.get("name")), "arguments": dumps(block.get("input") or {})}
            calls.append({"id": as_str(block.get("id")), "type": "function", "function": call})
    finish = FINISH_FROM_ANTHROPIC.get(as_str(answer.get("stop_reason")), "stop")
    if finish == "tool_calls" and not calls:
        finish = "stop"  # only the JSON answer tool was called
    message: dict = {"role": "assistant", "content": "".join(text) if text else None, "refusal": None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if thinking_blocks:
        message["thinking_blocks"] = thinking_blocks
    if calls:
        message["tool_calls"] = calls
    return {
        "id": as_str(answer.get("id")),
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage_from_anthropic(as_dict(answer.get("usage"))),
    }
