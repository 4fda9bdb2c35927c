"""What the translation modules share: reason tables, usage shapes, data URLs, effort buckets."""

from __future__ import annotations

import base64
import binascii
import re
import time
import uuid

import orjson

from relay.errors import ProxyError
from relay.usage import Usage, anthropic_usage, chat_usage, read_anthropic, read_gemini, read_openai

# Anthropic stop_reason -> OpenAI finish_reason. `pause_turn` only happens with server tools the
# client never asked for; `model_context_window_exceeded` is a length stop in OpenAI's terms.
FINISH_FROM_ANTHROPIC = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

STOP_FROM_OPENAI = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

# Gemini finishReason -> OpenAI. Every policy block is `content_filter`; the rest (OTHER, LANGUAGE,
# MALFORMED_FUNCTION_CALL, ...) ended the answer without a better OpenAI word for it.
FINISH_FROM_GEMINI = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(
        (
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT",
            "IMAGE_RECITATION",
            "MODEL_ARMOR",
        ),
        "content_filter",
    ),
}

# OpenAI reasoning models take max_completion_tokens and refuse sampling parameters.
REASONING_MODEL = re.compile(r"(^|/)(o\d|gpt-5)")
# Chat models that refuse reasoning_effort (a 400 on every Claude Code request that thinks).
NO_EFFORT = re.compile(r"(^|/)(gpt-4|gpt-3\.5|chatgpt-4o)")

# reasoning_effort -> thinking budget in tokens, for targets that take a budget. Anthropic needs at
# least 1024; the top stays under 32k so budget plus answer fits every thinking Claude's output cap.
EFFORT_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 24576, "max": 24576}


def budget_to_effort(budget: int) -> str:
    """The OpenAI reasoning_effort bucket a thinking budget falls in."""
    if budget <= EFFORT_BUDGETS["low"]:
        return "low"
    if budget <= EFFORT_BUDGETS["medium"]:
        return "medium"
    return "high"


def as_dict(value: object) -> dict:
    """A field that should hold an object; anything else (a client's or an upstream's mistake)
    reads as empty, so a wrong type is never a crash."""
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list:
    """A field that should hold a list; anything else reads as empty."""
    return value if isinstance(value, list) else []


def as_str(value: object) -> str:
    """A field that should hold a string; anything else reads as empty."""
    return value if isinstance(value, str) else ""


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def now() -> int:
    return int(time.time())


_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*);base64,(.*)", re.S)


def parse_data_url(url: str) -> tuple[str, str] | None:
    """`data:<mime>;base64,<data>` -> (mime, data); None for anything else."""
    match = _DATA_URL.fullmatch(url)
    if not match:
        return None
    return (match.group(1) or "application/octet-stream").lower(), match.group(3)


def chat_message(answer: dict) -> tuple[dict, dict, str, str]:
    """A chat.completion answer's first choice, its message, its reasoning and its text (a list
    of parts joined); an answer that is an error raises it."""
    if "error" in answer and not answer.get("choices"):
        raise stream_error(answer["error"])
    choice = as_dict((as_list(answer.get("choices")) or [{}])[0])
    message = as_dict(choice.get("message"))
    # DeepSeek and Qwen say reasoning_content; OpenRouter and vLLM say reasoning.
    reasoning = as_str(message.get("reasoning_content") or message.get("reasoning"))
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(as_str(part.get("text")) for part in content if isinstance(part, dict))
    return choice, message, reasoning, as_str(content)


def text_of(content: object) -> str:
    """The text of an OpenAI message content: a string, or the text parts of a list, joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text") or ""
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        )
    return ""


def clean_stops(stop: object) -> list[str]:
    """OpenAI `stop` (string or list) without the empty or whitespace-only strings targets reject."""
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    return [s for s in stops if isinstance(s, str) and s.strip()]


def parse_arguments(arguments: object) -> dict:
    """Tool-call arguments as the object Anthropic and Gemini need.

    A model can emit arguments that are not a JSON object. They are kept, not dropped, as
    `{"_raw": "<text>"}`: the client's tool then rejects them visibly and the model can retry,
    where `{}` would run the tool with silently wrong input.
    """
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_raw": arguments}


def dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def chunk(stream_id: str, created: int, model: str, delta: dict, finish_reason: str | None = None) -> dict:
    """One OpenAI chat.completion.chunk with a single choice."""
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return {"id": stream_id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [choice]}


def usage_from_anthropic(usage: dict) -> dict:
    """Anthropic usage -> OpenAI chat usage (prompt tokens include cache reads and writes)."""
    return chat_usage(read_anthropic(usage) or Usage())


def anthropic_usage_from_chat(usage: dict | None) -> dict:
    """OpenAI chat usage -> Anthropic usage (input tokens exclude the cached ones)."""
    return anthropic_usage(read_openai(usage or {}) or Usage())


def usage_from_gemini(meta: dict) -> dict:
    """Gemini usageMetadata -> OpenAI chat usage: thoughts count as completion tokens."""
    return chat_usage(read_gemini(meta) or Usage())


def give_reasoning(message: dict, reasoning: str, model: str) -> dict:
    """An assistant turn for an OpenAI-style upstream, with its reasoning given back where wanted.

    DeepSeek, Qwen and other OpenAI-compatible servers take their own reasoning back as
    `reasoning_content`; OpenAI's own models are not sent the field.
    """
    model = model.lower()
    if REASONING_MODEL.search(model) or NO_EFFORT.search(model):
        return message
    if reasoning or message.get("tool_calls") and "deepseek" in model:
        # DeepSeek's thinking mode answers 400 when an assistant tool-call turn lacks the field.
        message["reasoning_content"] = reasoning
    return message


# Signed Claude thinking rides through clients that cannot hold it as thinking blocks (a Responses
# reasoning item's encrypted_content, a Gemini thoughtSignature) as one opaque base64 string. The
# mark is 18 bytes, so every packed string starts with the same 24 base64 characters.
_THINKING_MARK = b"aurax.thinking.v1:"
_THINKING_PREFIX = base64.b64encode(_THINKING_MARK).decode()


def pack_thinking(blocks: object) -> str | None:
    """The signed thinking blocks of a chat answer (`thinking_blocks`) as one opaque string."""
    kept = [
        {key: block[key] for key in ("type", "thinking", "signature", "data") if key in block}
        for block in (blocks if isinstance(blocks, list) else [])
        if isinstance(block, dict)
        and (block.get("type") == "thinking" and block.get("signature") or block.get("type") == "redacted_thinking")
    ]
    return base64.b64encode(_THINKING_MARK + orjson.dumps(kept)).decode() if kept else None


def unpack_thinking(value: object) -> list[dict] | None:
    """The thinking blocks `pack_thinking` packed; None for any other string (another vendor's)."""
    if not isinstance(value, str) or not value.startswith(_THINKING_PREFIX):
        return None
    try:
        blocks = orjson.loads(base64.b64decode(value, validate=True)[len(_THINKING_MARK) :])
    except (binascii.Error, ValueError):
        return None
    return [block for block in blocks if isinstance(block, dict)] if isinstance(blocks, list) else None


def call_slot(route: dict, calls, delta: dict) -> tuple[int | None, str | None, int | None]:
    """Which of a stream's tool calls a chat tool-call delta continues: (its upstream index, its
    upstream id, the key in `calls` of the call it continues, None for a new call). The index
    finds the call; a new id at a used index starts another (servers that number every call 0,
    such as Ollama, or none)."""
    index, upstream_id = delta.get("index"), as_str(delta.get("id")) or None
    index = index if isinstance(index, int) else None  # (a list or an object is no key)
    key = route.get(index)  # the latest call at this upstream index
    if upstream_id and key is not None and calls[key]["upstream_id"] not in (None, upstream_id):
        key = None
    return index, upstream_id, key


CANNOT = "cannot be sent to this model's channel"  # how the converters' refusals say why


def refuse(param: str, what: str) -> ProxyError:
    """The 400 for a request the target cannot serve, naming the field."""
    return ProxyError(400, f"{param}: {what}", param=param)


def check_openai(body: dict) -> None:
    """Refuse what no translated OpenAI chat request can carry."""
    if (body.get("n") or 1) > 1:
        raise refuse("n", "more than one choice is not supported by this model's channel")
    if body.get("functions") or body.get("function_call"):
        raise refuse("functions", "legacy functions are not supported by this model's channel; use `tools`")


def stream_error(error: object) -> ProxyError:
    """An error an upstream sent inside a stream (or a 200 body), as the ProxyError to raise."""
    error = error if isinstance(error, dict) else {"message": str(error)}
    words = " ".join(str(error.get(key) or "") for key in ("type", "code", "status")).lower()
    if "429" in words or "rate_limit" in words or "resource_exhausted" in words:
        status = 429
    elif "503" in words or "529" in words or "overloaded" in words or "unavailable" in words:
        status = 503
    else:
        status = 502
    return ProxyError(status, str(error.get("message") or "upstream error"))
