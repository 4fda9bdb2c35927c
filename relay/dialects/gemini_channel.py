"""OpenAI chat client -> Gemini generateContent channel: the request and the whole answer.

The streamed answer is in `gemini_channel_stream.py`. Function and response schemas go as
`parametersJsonSchema` / `responseJsonSchema`, which take JSON Schema as OpenAI clients write it
(`additionalProperties`, union types, `$ref`), instead of being cut down to the OpenAPI subset of
`parameters` / `responseSchema`. Gemini parts the client cannot use (executable code, generated
images) are left out of the answer.

Thought signatures: Gemini 3 rejects a function-calling history whose calls lack the signature
they came with. It rides along in the OpenAI tool call twice: as `extra_content.google.
thought_signature` (Google's own OpenAI-compatible shape, kept by clients that keep unknown
fields) and inside the tool call id after `__thought__` (base64url, so the id stays
[A-Za-z0-9_-]), which every client sends back verbatim. Either one restores it.
"""

from __future__ import annotations

import re

import orjson

from relay.dialects.common import (
    CANNOT,
    FINISH_FROM_GEMINI,
    as_dict,
    as_list,
    as_str,
    check_openai,
    clean_stops,
    dumps,
    new_id,
    now,
    parse_arguments,
    parse_data_url,
    refuse,
    stream_error,
    text_of,
    usage_from_gemini,
)

SIGNATURE_SEP = "__thought__"
# Google's documented stand-in for a call whose signature is lost (a history from another model).
SKIP_SIGNATURE = "skip_thought_signature_validator"
# reasoning_effort -> thinkingBudget for Gemini 2.x: Google's own OpenAI-compatible mapping.
_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576, "max": 24576}
_MIME_BY_EXT = {
    "png": "image/png", "gif": "image/gif", "webp": "image/webp", "heic": "image/heic", "heif": "image/heif",
    "pdf": "application/pdf",
}
_SAMPLING = {
    "temperature": "temperature", "top_p": "topP", "seed": "seed",
    "presence_penalty": "presencePenalty", "frequency_penalty": "frequencyPenalty",
}
_VERSION = re.compile(r"gemini-(\d+)")


def major(model: str) -> int:
    """Gemini generation from the model name; an unversioned Gemini name (gemini-flash-latest) is new."""
    match = _VERSION.search(model.lower())
    return int(match[1]) if match else 99 if "gemini" in model.lower() else 0


def tool_call(name: object, args: object, signature: str | None) -> dict:
    """The OpenAI tool call for a Gemini functionCall (which always arrives whole)."""
    call_id = new_id("call_")
    call: dict = {"id": call_id, "type": "function", "function": {"name": as_str(name), "arguments": dumps(args or {})}}
    if signature:
        call["id"] = call_id + SIGNATURE_SEP + signature.replace("+", "-").replace("/", "_").rstrip("=")
        call["extra_content"] = {"google": {"thought_signature": signature}}
    return call


def signature_of(call: dict) -> str | None:
    extra = ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")
    if isinstance(extra, str) and extra:
        return extra
    _, sep, encoded = str(call.get("id") or "").partition(SIGNATURE_SEP)
    if not sep or not encoded:
        return None
    return encoded.replace("-", "+").replace("_", "/") + "=" * (-len(encoded) % 4)


def read_parts(parts: object) -> list[tuple[str, object]]:
    """Gemini parts -> ("reasoning" | "content", text) and ("call", OpenAI tool call), in order;
    what is not a part (an upstream's mistake) is left out."""
    out: list[tuple[str, object]] = []
    for part in as_list(parts):
        part = as_dict(part)
        if isinstance(fn := part.get("functionCall"), dict):
            signature = part.get("thoughtSignature")
            out.append(("call", tool_call(fn.get("name"), fn.get("args"), signature if isinstance(signature, str) else None)))
        elif isinstance(part.get("text"), str) and part["text"]:
            out.append(("reasoning" if part.get("thought") else "content", part["text"]))
    return out


def finish_reason(candidate: object, feedback: object, called: bool) -> str | None:
    if not isinstance(candidate, dict):
        return "content_filter" if as_dict(feedback).get("blockReason") else None
    reason = candidate.get("finishReason")
    if not reason:
        return None
    if not isinstance(reason, str):
        reason = "OTHER"  # it ended, with no word for why
    mapped = FINISH_FROM_GEMINI.get(reason, "stop")
    return "tool_calls" if called and mapped == "stop" else mapped  # Gemini says STOP after calls


def request(body: dict, model: str) -> dict:
    check_openai(body)
    system, contents = _contents(body.get("messages") or [], major(model))
    out: dict = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}

    config: dict = {}
    if limit := body.get("max_completion_tokens") or body.get("max_tokens"):
        config["maxOutputTokens"] = limit
    for key, name in _SAMPLING.items():
        if isinstance(body.get(key), (int, float)):
            config[name] = body[key]
    if stops := clean_stops(body.get("stop")):
        config["stopSequences"] = stops[:5]
    fmt = body.get("response_format") if isinstance(body.get("response_format"), dict) else {}
    if fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        if schema := (fmt.get("json_schema") or {}).get("schema"):
            config["responseJsonSchema"] = _schema(schema)
    if thinking := _thinking(body, model):
        config["thinkingConfig"] = thinking
    if config:
        out["generationConfig"] = config

    declarations = [_declaration(tool, i) for i, tool in enumerate(body.get("tools") or [])]
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
        if body.get("tool_choice") is not None:
            out["toolConfig"] = {"functionCallingConfig": _calling(body["tool_choice"])}
    return out


def _thinking(body: dict, model: str) -> dict | None:
    effort = body.get("reasoning_effort")
    asked = body.get("thinking") if isinstance(body.get("thinking"), dict) else {}
    if effort == "none" or asked.get("type") == "disabled":
        # Gemini 3 and 2.5 Pro cannot stop thinking; the others turn it off with a zero budget.
        return None if major(model) >= 3 or "pro" in model else {"thinkingBudget": 0}
    if effort in _BUDGETS:
        if major(model) >= 3:  # thinkingLevel; low and high are the levels every Gemini 3 model takes
            return {"thinkingLevel": "low" if effort in ("minimal", "low") else "high", "includeThoughts": True}
        return {"thinkingBudget": _BUDGETS[effort], "includeThoughts": True}
    if asked.get("type") in ("enabled", "adaptive"):
        budget = asked.get("budget_tokens")
        config: dict = {"includeThoughts": True}
        if isinstance(budget, int) and major(model) < 3:
            config["thinkingBudget"] = budget
        return config
    return None


def _schema(schema: object) -> object:
    return {k: v for k, v in schema.items() if k != "$schema"} if isinstance(schema, dict) else schema


def _declaration(tool: dict, i: int) -> dict:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        raise refuse(f"tools[{i}].type", f"only function tools {CANNOT}")
    fn = tool.get("function") or {}
    out = {"name": fn.get("name")}
    if fn.get("description"):
        out["description"] = fn["description"]
    params = fn.get("parameters")
    if isinstance(params, dict) and params.get("properties"):
        out["parametersJsonSchema"] = _schema(params)
    return out


def _calling(choice: object) -> dict:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"mode": "ANY", "allowedFunctionNames": [(choice.get("function") or {}).get("name")]}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        if allowed.get("mode") != "required":
            return {"mode": "AUTO"}
        names = [(t.get("function") or {}).get("name") for t in allowed.get("tools") or [] if isinstance(t, dict)]
        return {"mode": "ANY", "allowedFunctionNames": [n for n in names if n]}
    return {"mode": {"none": "NONE", "required": "ANY"}.get(choice, "AUTO") if isinstance(choice, str) else "AUTO"}


def _contents(messages: list[dict], generation: int) -> tuple[list[dict], list[dict]]:
    """OpenAI messages -> (systemInstruction parts, contents); Gemini rejects empty text parts."""
    system: list[dict] = []
    contents: list[dict] = []
    names: dict[str, str] = {}  # tool call id -> function name, which functionResponse needs
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role in ("system", "developer"):
            if text := text_of(msg.get("content")):
                system.append({"text": text})
        elif role == "user":
            _append(contents, "user", _user_parts(msg.get("content"), i))
        elif role == "assistant":
            parts = [{"text": text}] if (text := text_of(msg.get("content"))) else []
            for call in msg.get("tool_calls") or []:
                fn = call.get("function") or {}
                names[str(call.get("id"))] = fn.get("name")
                part = {"functionCall": {"name": fn.get("name"), "args": parse_arguments(fn.get("arguments"))}}
                if signature := signature_of(call):
                    part["thoughtSignature"] = signature
                parts.append(part)
            calls = [part for part in parts if "functionCall" in part]
            if generation >= 3 and calls and not any("thoughtSignature" in part for part in calls):
                calls[0]["thoughtSignature"] = SKIP_SIGNATURE
            _append(contents, "model", parts)
        elif role == "tool":
            name = names.get(str(msg.get("tool_call_id"))) or msg.get("name")
            if not name:
                raise refuse(f"messages[{i}].tool_call_id", "matches no earlier assistant tool call")
            result = {"name": name, "response": _tool_output(msg.get("content"))}
            _append(contents, "user", [{"functionResponse": result}])
        else:
            raise refuse(f"messages[{i}].role", f"role {role!r} {CANNOT}")
    if not contents:
        raise refuse("messages", "at least one user or assistant message with content is required")
    return system, contents


def _append(contents: list[dict], role: str, parts: list[dict]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"] += parts
    else:
        contents.append({"role": role, "parts": parts})


def _tool_output(content: object) -> dict:
    # A JSON object result is the response itself; anything else is its "output".
    text = text_of(content)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"output": text}


def _user_parts(content: object, i: int) -> list[dict]:
    if not isinstance(content, list):
        return [{"text": content}] if isinstance(content, str) and content else []
    parts = []
    for j, part in enumerate(content):
        kind, where = part.get("type") if isinstance(part, dict) else None, f"messages[{i}].content[{j}]"
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            url = part.get("image_url")
            parts.append(_media(url.get("url") if isinstance(url, dict) else url, where))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            mime = f"audio/{audio.get('format') or 'wav'}"
            parts.append({"inlineData": {"mimeType": mime, "data": audio.get("data")}})
        elif kind == "file" and (part.get("file") or {}).get("file_data"):
            parts.append(_media(part["file"]["file_data"], where))
        else:
            raise refuse(where, f"{kind!r} content {CANNOT}")
    return parts


def _media(url: object, where: str) -> dict:
    url = url if isinstance(url, str) else ""
    if data := parse_data_url(url):
        return {"inlineData": {"mimeType": data[0], "data": data[1]}}
    if url.startswith(("https://", "http://")):
        # Gemini fetches public http(s) URLs given as fileData; it wants the MIME type up front.
        ext = url.split("?", 1)[0].rsplit(".", 1)[-1].lower()
        return {"fileData": {"fileUri": url, "mimeType": _MIME_BY_EXT.get(ext, "image/jpeg")}}
    raise refuse(where, "the URL must be a data: URL or an http(s) URL")


def response(answer: dict, model: str) -> dict:
    if answer.get("error"):
        raise stream_error(answer["error"])
    candidate = (as_list(answer.get("candidates")) or [None])[0]
    texts: dict[str, list[str]] = {"content": [], "reasoning": []}
    calls: list[dict] = []
    for kind, value in read_parts(as_dict(as_dict(candidate).get("content")).get("parts")):
        if kind == "call":
            calls.append(value)  # type: ignore[arg-type]
        else:
            texts[kind].append(value)  # type: ignore[arg-type]
    message: dict = {"role": "assistant", "content": "".join(texts["content"]) or None, "refusal": None}
    if texts["reasoning"]:
        message["reasoning_content"] = "".join(texts["reasoning"])
    if calls:
        message["tool_calls"] = calls
    finish = finish_reason(candidate, answer.get("promptFeedback"), bool(calls)) or ("tool_calls" if calls else "stop")
    return {
        "id": "chatcmpl-" + (as_str(answer.get("responseId")) or new_id("")),
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage_from_gemini(as_dict(answer.get("usageMetadata"))),
    }


def endpoint(body: dict) -> str:
    return "streamGenerateContent" if body.get("stream") else "generateContent"
