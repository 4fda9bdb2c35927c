"""Gemini client (Gemini CLI, google-genai) -> a chat-completions request, and a chat.completion
answer -> a GenerateContentResponse. The streamed answer is in `gemini_client_stream.py`.

Chat completions is the internal form (see `responses_client.py`): this module knows nothing about
the channel behind it. Field names are read in camelCase and snake_case alike: the REST API takes
both, and Google's own curl examples use `system_instruction` and `inline_data`.

Function calls. Gemini calls carry an optional id. A call without one gets `call_<content>_<part>`,
the same on every turn, so a conversation's prefix does not change and upstream prompt caches
keep hitting; a functionResponse is matched to the earliest unanswered call of the model turn
before it with its id, else with its name. Answers give the chat call's id as functionCall.id,
which Gemini clients send back with the functionResponse. A functionResponse that answers no call
(a history whose call was compacted away) goes to the model as text rather than failing the turn.

Thinking. reasoning_content is shown as `thought: true` parts when
thinkingConfig.includeThoughts is set, as Gemini itself does. Signed Claude thinking (chat
`thinking_blocks`) rides on the first functionCall part as its thoughtSignature, packed by
`common.pack_thinking`: Gemini clients keep signatures on function calls (Gemini CLI drops
thought parts from its history but keeps those), so Claude keeps thinking across a tool loop. A
real Gemini signature (`extra_content.google.thought_signature`, from Google's OpenAI-compatible
API on an openai channel) goes out and comes back on its own call.

Left out: safetySettings (chat upstreams have their own filters and no such settings), labels,
topK, mediaResolution, media the model itself generated in the history. Refused (400, naming the
field): cachedContent (a prompt cached at Google that another vendor cannot read: answering
without it would be silently wrong), candidateCount > 1, output modalities other than text, log
probabilities, built-in tools (googleSearch, codeExecution, urlContext...), code execution parts,
and Files API or gs:// URIs (stored at Google).
"""

from __future__ import annotations

import re

from relay.usage import Usage, gemini_usage, read_openai

from .common import (
    CANNOT,
    NO_EFFORT,
    REASONING_MODEL,
    as_dict,
    as_list,
    as_str,
    budget_to_effort,
    chat_message,
    clean_stops,
    new_id,
    pack_thinking,
    parse_arguments,
    refuse,
)
from .gemini_client_input import get, messages, text_of

FINISH_TO_GEMINI = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "function_call": "STOP",
                    "content_filter": "SAFETY"}
_LEVELS = {"MINIMAL": "minimal", "LOW": "low", "MEDIUM": "medium", "HIGH": "high", "XHIGH": "xhigh"}
_SAMPLING = {"temperature": "temperature", "topP": "top_p", "presencePenalty": "presence_penalty",
             "frequencyPenalty": "frequency_penalty", "seed": "seed"}
_SCHEMA_DROP = frozenset({"propertyOrdering", "example"})


def request(body: dict, model: str, stream: bool = False) -> dict:
    """A generateContent request -> a chat-completions request for `model`; `stream` for
    streamGenerateContent (the path says it, not the body)."""
    name = model.lower()
    if get(body, "cachedContent"):
        raise refuse("cachedContent", f"a prompt cached at Google {CANNOT}")
    system = text_of(get(body, "systemInstruction"))
    head = [{"role": "system", "content": system}] if system else []
    out: dict = {"model": model, "messages": head + messages(body.get("contents"), name)}
    config = get(body, "generationConfig")
    _config(out, config if isinstance(config, dict) else {}, name)

    tools = _tools(body.get("tools"))
    calling = get(get(body, "toolConfig"), "functionCallingConfig")
    choice, allowed = _tool_choice(calling if isinstance(calling, dict) else {})
    if allowed:
        tools = [tool for tool in tools if tool["function"]["name"] in allowed]
    if tools:
        out["tools"] = tools
        if choice is not None:
            out["tool_choice"] = choice
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # the last event carries usageMetadata
    return out


def _config(out: dict, config: dict, model: str) -> None:
    where = "generationConfig."
    count = get(config, "candidateCount")
    if isinstance(count, int) and count > 1:
        raise refuse(where + "candidateCount", f"more than one candidate {CANNOT}")
    modalities = get(config, "responseModalities")
    if isinstance(modalities, list) and any(str(m).upper() != "TEXT" for m in modalities):
        raise refuse(where + "responseModalities", f"output other than text {CANNOT}")
    if get(config, "responseLogprobs"):
        raise refuse(where + "responseLogprobs", f"log probabilities {CANNOT}")
    limit = get(config, "maxOutputTokens")
    if isinstance(limit, int):
        out["max_completion_tokens" if REASONING_MODEL.search(model) else "max_tokens"] = limit
    if not REASONING_MODEL.search(model):  # OpenAI reasoning models refuse sampling parameters
        for key, target in _SAMPLING.items():
            if isinstance(get(config, key), (int, float)):
                out[target] = get(config, key)
    if stops := clean_stops(get(config, "stopSequences")):
        out["stop"] = stops[:4]  # OpenAI takes at most 4 (Gemini 5)
    if get(config, "responseMimeType") == "application/json":
        schema = get(config, "responseJsonSchema") or json_schema(get(config, "responseSchema"))
        if isinstance(schema, dict) and schema:
            out["response_format"] = {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
        else:
            out["response_format"] = {"type": "json_object"}
    effort = _effort(get(config, "thinkingConfig"))
    if effort and not NO_EFFORT.search(model):
        out["reasoning_effort"] = effort


def _effort(thinking: object) -> str | None:
    """thinkingConfig -> reasoning_effort. A zero budget (thinking off) sends none: OpenAI-style
    upstreams have no common off switch, and Anthropic channels think only when asked."""
    level = get(thinking, "thinkingLevel")
    if isinstance(level, str) and level.upper() in _LEVELS:
        return _LEVELS[level.upper()]
    budget = get(thinking, "thinkingBudget")
    if not isinstance(budget, int) or budget == 0:
        return None
    return "medium" if budget < 0 else budget_to_effort(budget)  # -1: thinking as the model sees fit


def shows_thoughts(body: dict) -> bool:
    """Whether the client asked to see thinking (Gemini shows none unless asked)."""
    return get(get(get(body, "generationConfig"), "thinkingConfig"), "includeThoughts") is True


def json_schema(schema: object) -> object:
    """A Gemini (OpenAPI subset) schema -> JSON Schema: lower-case types, `nullable` as a null type."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict = {}
    for key, value in schema.items():
        key = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)  # any_of -> anyOf
        if key in _SCHEMA_DROP or key == "nullable":
            continue
        if key == "type" and isinstance(value, str):
            value = value.lower()
        elif key == "properties" and isinstance(value, dict):
            value = {name: json_schema(inner) for name, inner in value.items()}
        elif key in ("items", "anyOf"):
            value = json_schema(value)
        out[key] = value
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _tools(tools: object) -> list[dict]:
    out = []
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        for key, value in (tool.items() if isinstance(tool, dict) else ()):
            if key in ("functionDeclarations", "function_declarations"):
                out += [_function(decl, f"tools[{i}].functionDeclarations[{j}]") for j, decl in enumerate(as_list(value))]
            elif value is not None:
                raise refuse(f"tools[{i}].{key}", f"the {key} tool runs only at Google and {CANNOT}")
    return out


def _function(decl: object, where: str) -> dict:
    name = get(decl, "name")
    if not isinstance(name, str) or not name:
        raise refuse(where + ".name", "a function needs a name")
    parameters = get(decl, "parametersJsonSchema") or json_schema(get(decl, "parameters"))
    fn: dict = {"name": name, "parameters": parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}}
    if get(decl, "description"):
        fn["description"] = get(decl, "description")
    return {"type": "function", "function": fn}


def _tool_choice(calling: dict) -> tuple[object, set[str] | None]:
    """(chat tool_choice, the function names allowedFunctionNames keeps, or None for all)."""
    mode = str(get(calling, "mode") or "AUTO").upper()
    names = get(calling, "allowedFunctionNames")
    allowed = {n for n in names if isinstance(n, str)} if isinstance(names, list) and names else None
    if mode == "NONE":
        return "none", None
    if mode != "ANY":
        return None, allowed if mode == "VALIDATED" else None
    if allowed and len(allowed) == 1:
        return {"type": "function", "function": {"name": next(iter(allowed))}}, allowed
    return "required", allowed


# ---- the answer ---------------------------------------------------------------------------

def response(answer: dict, model: str, body: dict) -> dict:
    """A chat.completion answer -> a GenerateContentResponse."""
    choice, message, reasoning, content = chat_message(answer)
    parts = []
    if shows_thoughts(body) and reasoning:
        parts.append({"text": reasoning, "thought": True})
    for text in (content, message.get("refusal")):
        if isinstance(text, str) and text:
            parts.append({"text": text})
    calls = [call for call in as_list(message.get("tool_calls")) if isinstance(call, dict)]
    parts += call_parts(calls, pack_thinking(message.get("thinking_blocks")))
    return event(response_id(answer.get("id")), model, parts, as_str(choice.get("finish_reason")) or "stop", answer.get("usage"))


def call_parts(calls: list[dict], packed: str | None) -> list[dict]:
    """Whole chat tool calls -> functionCall parts; packed Claude thinking signs the first."""
    parts = []
    for call in calls:
        fn = as_dict(call.get("function"))
        part: dict = {"functionCall": {"id": as_str(call.get("id")) or new_id("call_"), "name": as_str(fn.get("name")),
                                       "args": parse_arguments(fn.get("arguments"))}}
        google = as_dict(as_dict(call.get("extra_content")).get("google")).get("thought_signature")
        signature = google if isinstance(google, str) and google else packed if not parts else None
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def event(ident: str, model: str, parts: list[dict], finish_reason: str | None = None, usage: dict | None = None) -> dict:
    """One GenerateContentResponse; the last of a stream has the finish reason and the usage."""
    candidate: dict = {"content": {"role": "model", "parts": parts}, "index": 0}
    out: dict = {"candidates": [candidate]}
    if finish_reason is not None:
        candidate["finishReason"] = FINISH_TO_GEMINI.get(finish_reason, "STOP")
        out["usageMetadata"] = usage_metadata(usage)
    out["modelVersion"] = model
    out["responseId"] = ident
    return out


def usage_metadata(usage: dict | None) -> dict:
    """Chat usage -> usageMetadata (through the one normaliser: relay.usage)."""
    return gemini_usage(read_openai(as_dict(usage)) or Usage())


def response_id(upstream_id: object) -> str:
    value = str(upstream_id or "").removeprefix("chatcmpl-")
    return value or new_id("")
