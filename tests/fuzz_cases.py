"""What the fuzz tests start from and how they spoil it: one valid, feature-rich request per
translated client route, one valid answer and stream per channel dialect, and Hypothesis
strategies that put a value of another JSON type (or nested garbage) at any path of them.

Every request here is served (200) on every channel dialect unchanged, so a mutation is what
makes the difference; every field a converter reads appears at least once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import orjson
from hypothesis import strategies as st

PNG = "iVBORw0KGgo="
PDF = "JVBERi0xLjQK"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

# -- client requests ---------------------------------------------------------------------------

CHAT = {
    "model": "{model}",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use the tools.", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "name": "ann", "content": [
            {"type": "text", "text": "Weather in Paris?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
            {"type": "image_url", "image_url": "https://example.com/a.png"},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": f"data:application/pdf;base64,{PDF}"}},
        ]},
        {"role": "assistant", "content": [{"type": "text", "text": "Looking."}], "reasoning_content": "They ask.",
         "thinking_blocks": [{"type": "thinking", "thinking": "Paris.", "signature": "c2ln"},
                             {"type": "redacted_thinking", "data": "ZGF0YQ=="}],
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                         "extra_content": {"google": {"thought_signature": "c2ln"}}}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": [{"type": "text", "text": "sunny"}]},
        {"role": "user", "content": "Thanks. And tomorrow?"},
        {"role": "assistant", "content": "It will"},
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                                "parameters": SCHEMA, "strict": False}}],
    "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
        {"type": "function", "function": {"name": "get_weather"}}]}},
    "parallel_tool_calls": False,
    "max_completion_tokens": 300,
    "max_tokens": 300,
    "temperature": 0.5,
    "top_p": 0.9,
    "stop": ["END"],
    "seed": 7,
    "presence_penalty": 0.1,
    "frequency_penalty": 0.1,
    "user": "u-1",
    "n": 1,
    "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA, "strict": False}},
    "reasoning_effort": "low",
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "metadata": {"k": "v"},
    "stream": False,
    "stream_options": {"include_usage": True},
}

RESPONSES = {
    "model": "{model}",
    "instructions": "Be brief.",
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Use the tools."}]},
        {"role": "user", "content": [
            {"type": "input_text", "text": "Weather in Paris?"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "low"},
            {"type": "input_file", "filename": "a.pdf", "file_data": f"data:application/pdf;base64,{PDF}"},
        ]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "They ask."}],
         "content": [{"type": "reasoning_text", "text": "They ask."}], "encrypted_content": "opaque"},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Looking.", "annotations": []}, {"type": "refusal", "refusal": ""}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "custom_tool_call", "call_id": "call_2", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "done"}]},
        {"type": "local_shell_call", "call_id": "call_3", "id": "lsh_3", "status": "completed",
         "action": {"type": "exec", "command": ["ls"], "working_directory": "/tmp", "timeout_ms": 1000, "env": {}}},
        {"type": "local_shell_call_output", "call_id": "call_3", "output": "a.txt"},
        {"role": "user", "content": "Thanks. And tomorrow?"},
    ],
    "tools": [
        {"type": "function", "name": "get_weather", "description": "Weather in a city", "parameters": SCHEMA,
         "strict": False},
        {"type": "custom", "name": "apply_patch", "description": "Edit files.",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: hunk+"}},
        {"type": "local_shell"},
        {"type": "namespace", "name": "files", "tools": [{"type": "function", "name": "read", "parameters": SCHEMA}]},
    ],
    "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [
        {"type": "function", "name": "get_weather"}, {"type": "custom", "name": "apply_patch"}, {"type": "local_shell"}]},
    "parallel_tool_calls": True,
    "max_output_tokens": 300,
    "temperature": 0.5,
    "top_p": 0.9,
    "reasoning": {"effort": "low", "summary": "auto"},
    "text": {"format": {"type": "json_schema", "name": "w", "schema": SCHEMA, "strict": False,
                        "description": "The weather"}, "verbosity": "low"},
    "user": "u-1",
    "safety_identifier": "s-1",
    "store": True,  # (the proxy keeps the answer for previous_response_id)
    "metadata": {"k": "v"},
    "include": ["reasoning.encrypted_content"],
    "truncation": "disabled",
    "prompt_cache_key": "k",
    "service_tier": "auto",
    "max_tool_calls": 5,
    "top_logprobs": 0,
    "background": False,
    "previous_response_id": None,
    "stream": False,
}

MESSAGES = {
    "model": "{model}",
    "max_tokens": 300,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "Weather in Paris?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "document", "title": "a.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
            {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "more"}]}},
            {"type": "search_result", "title": "t", "source": "https://example.com",
             "content": [{"type": "text", "text": "found"}]},
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Paris.", "signature": ""},
            {"type": "text", "text": "Looking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                {"type": "text", "text": "sunny"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]},
            {"type": "text", "text": "Thanks. And tomorrow?"},
        ]},
        {"role": "assistant", "content": "It will"},
    ],
    "tools": [{"name": "get_weather", "description": "Weather in a city", "input_schema": SCHEMA},
              {"type": "custom", "name": "get_time", "input_schema": SCHEMA}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 5,
    "stop_sequences": ["END"],
    "metadata": {"user_id": "u-1"},
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": SCHEMA}},
    "stream": False,
}

COUNT_MESSAGES = {k: MESSAGES[k] for k in ("model", "system", "messages", "tools", "tool_choice", "thinking")}

GEMINI = {
    "contents": [
        {"role": "user", "parts": [
            {"text": "Weather in Paris?"},
            {"inlineData": {"mimeType": "image/png", "data": PNG}},
            {"inline_data": {"mime_type": "image/jpeg", "data": PNG}},
            {"inlineData": {"mimeType": "application/pdf", "data": PDF, "displayName": "a.pdf"}},
            {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a.png"}},
        ]},
        {"role": "model", "parts": [
            {"text": "Paris.", "thought": True},
            {"text": "Looking."},
            {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"id": "call_1", "name": "get_weather", "response": {"output": "sunny"},
                                  "parts": [{"inlineData": {"mimeType": "image/png", "data": PNG}}]}},
            {"text": "Thanks. And tomorrow?"},
        ]},
    ],
    "systemInstruction": {"role": "system", "parts": [{"text": "Be brief."}]},
    "tools": [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather in a city",
         "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING", "nullable": True}},
                        "required": ["city"], "propertyOrdering": ["city"]}},
        {"name": "get_time", "parametersJsonSchema": SCHEMA},
    ]}],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather", "get_time"]}},
    "generationConfig": {
        "maxOutputTokens": 300, "temperature": 0.5, "topP": 0.9, "topK": 5, "seed": 3, "candidateCount": 1,
        "presencePenalty": 0.1, "frequencyPenalty": 0.1, "stopSequences": ["END"], "responseModalities": ["TEXT"],
        "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "properties": {"t": {"type": "STRING"}}, "anyOf": [{"type": "OBJECT"}]},
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024},
    },
    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
}

COUNT_GEMINI = {"generateContentRequest": {"model": "models/{model}", **GEMINI}}


# -- channel answers ------------------------------------------------------------------------------

CHAT_ANSWER = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "m",
    "choices": [{"index": 0, "logprobs": None, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Sunny.", "reasoning_content": "Easy.", "refusal": "no",
        "thinking_blocks": [{"type": "thinking", "thinking": "Easy.", "signature": "c2ln"}],
        "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                        "extra_content": {"google": {"thought_signature": "c2ln"}}}]}}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "prompt_cache_hit_tokens": 1,
              "prompt_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 1},
              "completion_tokens_details": {"reasoning_tokens": 1}},
}


def _chunk(delta: dict | None, finish: str | None = None, **extra: object) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "m",
            "choices": choices, **extra}


CHAT_STREAM = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"reasoning_content": "Easy."}),
    _chunk({"content": "Sunny."}),
    _chunk({"refusal": "no"}),
    _chunk({"tool_calls": [{"index": 0, "id": "call_9", "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"ci'}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Rome"}'}}]}),
    _chunk({"thinking_blocks": [{"type": "thinking", "thinking": "Easy.", "signature": "c2ln", "index": 0}]}),
    _chunk({}, "tool_calls"),
    _chunk(None, usage=CHAT_ANSWER["usage"]),
]

MESSAGE_ANSWER = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
    "content": [
        {"type": "thinking", "thinking": "Easy.", "signature": "c2ln"},
        {"type": "redacted_thinking", "data": "ZGF0YQ=="},
        {"type": "text", "text": "Sunny."},
        {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Rome"}},
        {"type": "tool_use", "id": "toolu_10", "name": "json_tool_call", "input": {"t": "x"}},
    ],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 2, "cache_creation_input_tokens": 1},
}

MESSAGE_STREAM = [
    {"type": "message_start", "message": {**MESSAGE_ANSWER, "content": [], "stop_reason": None,
                                          "usage": {"input_tokens": 10, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Easy."}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "c2ln"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "ZGF0YQ=="}},
    {"type": "content_block_stop", "index": 1},
    {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": "Su"}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "nny."}},
    {"type": "content_block_stop", "index": 2},
    {"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}}},
    {"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": '{"city":'}},
    {"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": '"Rome"}'}},
    {"type": "content_block_stop", "index": 3},
    {"type": "ping"},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
     "usage": {"output_tokens": 5, "cache_read_input_tokens": 2}},
    {"type": "message_stop"},
]

GEMINI_ANSWER = {
    "candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
        {"text": "Easy.", "thought": True},
        {"text": "Sunny."},
        {"functionCall": {"id": "fc_1", "name": "get_weather", "args": {"city": "Rome"}}, "thoughtSignature": "c2ln"},
    ]}}],
    "promptFeedback": {"safetyRatings": []},
    "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 16,
                      "thoughtsTokenCount": 1, "cachedContentTokenCount": 2},
    "modelVersion": "m", "responseId": "r1",
}

GEMINI_STREAM = [
    {"candidates": [{"index": 0, "content": {"role": "model", "parts": [{"text": "Easy.", "thought": True}]}}],
     "usageMetadata": {"promptTokenCount": 10}, "modelVersion": "m", "responseId": "r1"},
    {"candidates": [{"index": 0, "content": {"role": "model", "parts": [{"text": "Sunny."}]}}],
     "modelVersion": "m", "responseId": "r1"},
    {**GEMINI_ANSWER},
]

COUNTED = {"anthropic": {"input_tokens": 12}, "gemini": {"totalTokens": 12, "cachedContentTokenCount": 0}}


# -- paths and spoilers -------------------------------------------------------------------------

def paths(document: object, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path into `document` (keys and list indexes), the root excluded."""
    items = document.items() if isinstance(document, dict) else enumerate(document) if isinstance(document, list) else ()
    for key, inner in items:
        yield (*prefix, key)
        yield from paths(inner, (*prefix, key))


def at(document: object, path: tuple) -> object:
    for key in path:
        document = document[key]  # type: ignore[index]
    return document


def holder(document: object, path: tuple) -> dict | list | None:
    """The object or list that holds `path`'s last key; None when `document` has no such path."""
    for key in path[:-1]:
        if isinstance(document, dict) and key in document or isinstance(document, list) and isinstance(key, int) and key < len(document):
            document = document[key]  # type: ignore[index]
        else:
            return None
    last = path[-1]
    if isinstance(document, dict) and last in document or isinstance(document, list) and isinstance(last, int) and last < len(document):
        return document
    return None


def copied(document: object) -> object:
    return orjson.loads(orjson.dumps(document))  # a JSON document's deep copy, a tenth of deepcopy's time


def replaced(document: object, path: tuple, value: object) -> object:
    """A copy of `document` with `value` at `path`."""
    changed = copied(document)
    at(changed, path[:-1])[path[-1]] = value  # type: ignore[index]
    return changed


def spelled(path: tuple) -> str:
    """A path as errors name it: `messages[2].content[0].type`."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else f".{key}" if out else key
    return out


KINDS = ("null", "boolean", "integer", "number", "string", "array", "object")


def kind_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1),  # the integers a JSON parser gives
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
)
_NESTED = SCALARS | st.lists(SCALARS, max_size=3) | st.dictionaries(st.text(max_size=6), SCALARS, max_size=3)
GARBAGE = SCALARS | st.lists(_NESTED, max_size=3) | st.dictionaries(st.text(max_size=6), _NESTED, max_size=3)  # two levels deep


_OF_KIND = {
    "null": st.none(),
    "boolean": st.booleans(),
    "integer": st.sampled_from([0, 1, -1, 2, 2**40]) | st.integers(-2**63, 2**64 - 1),
    "number": st.sampled_from([0.5, -1.5, 1e300]) | st.floats(allow_nan=False, allow_infinity=False),
    "string": st.sampled_from(["", "x", "auto", "function", "text", "user", "tool_use", "STOP", "data:,"])
    | st.text(max_size=12),
    "array": st.lists(GARBAGE, max_size=4),
}
_OTHER_KINDS = {kind: st.sampled_from([k for k in KINDS if k != kind]) for kind in KINDS}


@functools.lru_cache(maxsize=None)
def _object(keys: tuple[str, ...]) -> st.SearchStrategy:
    names = st.sampled_from(keys) | st.text(max_size=8) if keys else st.text(max_size=8)
    return st.dictionaries(names, GARBAGE, max_size=4)


def of_kind(kind: str, original: object) -> st.SearchStrategy:
    """A value of JSON `kind`; an object may hold `original`'s own keys, so the fields a reader
    looks for are there, with garbage in them."""
    if kind == "object":
        return _object(tuple(original) if isinstance(original, dict) else ())
    return _OF_KIND[kind]


@st.composite
def spoiled(draw, document: object, paths_: list[tuple], most: int = 3) -> tuple[object, list[tuple[tuple, str]]]:
    """`document` with 1 to `most` of its paths given a value of another JSON type; the (path,
    new kind) pairs, in the order they were applied (a later one may sit under an earlier)."""
    changed = copied(document)
    done: list[tuple[tuple, str]] = []
    for _ in range(draw(st.integers(1, most))):
        path = draw(st.sampled_from(paths_))
        parent = holder(changed, path)
        if parent is None:
            continue  # an earlier change took this path away
        original = parent[path[-1]]  # type: ignore[index]
        kind = draw(_OTHER_KINDS[kind_of(original)])
        parent[path[-1]] = draw(of_kind(kind, original))  # type: ignore[index]
        done.append((path, kind))
    return changed, done


def filled(document: object, model: str) -> object:
    """`document` with its `{model}` placeholders replaced."""
    if isinstance(document, str):
        return document.replace("{model}", model)
    if isinstance(document, list):
        return [filled(item, model) for item in document]
    if isinstance(document, dict):
        return {key: filled(value, model) for key, value in document.items()}
    return document
