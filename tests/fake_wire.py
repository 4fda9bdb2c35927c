"""Pure helpers for the fake upstream: wire encodings, error bodies, usage maps, fixtures.

Everything here is deterministic and free of I/O so that `fake_upstream.py` only has to decide
*what* to answer; shapes follow the official SDK types (openai, anthropic, google-genai).
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import zlib
from dataclasses import dataclass

import orjson

CREATED = 1735689600  # fixed timestamp: answers must be byte-for-byte reproducible


# ---- byte fixtures -----------------------------------------------------------------------------

def _png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00\x00\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _wav_silence(samples: int = 8, rate: int = 8000) -> bytes:
    data = b"\x00\x00" * samples
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


PNG = _png_1x1()
WAV = _wav_silence()


def speech_bytes(text: str) -> bytes:
    """The exact bytes `/v1/audio/speech` answers for `text` (tests recompute them)."""
    return b"ID3" + hashlib.sha256(text.encode()).digest() * 64


def embedding(text: str, dims: int) -> list[float]:
    """A deterministic vector whose values are exact in float32 (so base64 and float agree)."""
    seed = hashlib.sha256(text.encode()).digest()
    while len(seed) < dims:
        seed += hashlib.sha256(seed).digest()
    return [(b - 128) / 256 for b in seed[:dims]]


def embedding_b64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


# ---- stream framing ----------------------------------------------------------------------------

def sse(data: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


def sse_crlf(data: object) -> bytes:
    # Gemini's alt=sse frames end with CRLF pairs, unlike OpenAI/Anthropic.
    return b"data: " + orjson.dumps(data) + b"\r\n\r\n"


def json_array_stream(items: list[object]) -> list[bytes]:
    """Gemini's streamGenerateContent without alt=sse: one JSON array, sent element by element."""
    if not items:
        return [b"[]"]
    out = [b"[" + orjson.dumps(items[0])]
    out += [b"\r\n," + orjson.dumps(item) for item in items[1:]]
    out.append(b"]")
    return out


DONE = b"data: [DONE]\n\n"


def pieces(text: str, n: int) -> list[str]:
    """Split text into at most n non-empty, roughly even pieces ([] for empty text)."""
    if not text:
        return []
    n = max(1, min(n, len(text)))
    size, extra = divmod(len(text), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


def fragments(text: str, size: int = 4) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def interleave(lists: list[list]) -> list[tuple[int, object]]:
    """Round-robin over several lists, tagging each item with the index of its list."""
    out, depth = [], max((len(x) for x in lists), default=0)
    for j in range(depth):
        out += [(i, x[j]) for i, x in enumerate(lists) if j < len(x)]
    return out


# ---- knobs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Usage:
    prompt: int
    completion: int
    cached: int
    reasoning: int
    written: int = 0  # Anthropic cache writes (part of prompt)

    @classmethod
    def parse(cls, header: str | None, reasoning_default: int = 0) -> Usage:
        if not header:
            return cls(10, 5, 0, reasoning_default)
        nums = [int(x) for x in header.split(",")] + [0, 0, 0, 0]
        return cls(*nums[:4])

    def openai(self) -> dict:
        return {
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
            "prompt_tokens_details": {"cached_tokens": self.cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def responses(self) -> dict:
        return {
            "input_tokens": self.prompt,
            "input_tokens_details": {"cached_tokens": self.cached, "cache_write_tokens": 0},
            "output_tokens": self.completion,
            "output_tokens_details": {"reasoning_tokens": self.reasoning},
            "total_tokens": self.prompt + self.completion,
        }

    def anthropic(self, output_tokens: int | None = None) -> dict:
        """Usage of a message; `output_tokens` for a stream's message_start, before any thinking."""
        out: dict = {
            "input_tokens": self.prompt - self.cached - self.written,
            "cache_creation_input_tokens": self.written,
            "cache_read_input_tokens": self.cached,
            "cache_creation": {"ephemeral_5m_input_tokens": self.written, "ephemeral_1h_input_tokens": 0},
            "output_tokens": self.completion if output_tokens is None else output_tokens,
            "service_tier": "standard",
        }
        if output_tokens is None:
            out.update(self.anthropic_thinking())
        return out

    def anthropic_thinking(self) -> dict:
        # Anthropic reports the thinking inside output_tokens as output_tokens_details.thinking_tokens.
        return {"output_tokens_details": {"thinking_tokens": self.reasoning}} if self.reasoning else {}

    def gemini(self, final: bool = True) -> dict:
        out: dict = {"promptTokenCount": self.prompt}
        if final:
            out["candidatesTokenCount"] = self.completion - self.reasoning
        out["totalTokenCount"] = self.prompt + (self.completion if final else 0)
        if self.cached:
            out["cachedContentTokenCount"] = self.cached
        out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.prompt}]
        if final and self.reasoning:
            out["thoughtsTokenCount"] = self.reasoning
        return out


# ---- request reading ---------------------------------------------------------------------------

def text_of(content: object, kinds: tuple[str, ...] = ("text", "input_text")) -> str:
    """Text of a message content: a string, or the text parts of a list joined with a space."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content
                        if isinstance(p, dict) and p.get("type") in kinds and isinstance(p.get("text"), str))
    return ""


def echo(text: str) -> str:
    return f"echo: {text}" if text else "ok"


def _schema_type(schema: dict) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), None)
    return kind.lower() if isinstance(kind, str) else None


def fill_schema(schema: object) -> object:
    """A value that satisfies a JSON schema (or Gemini Schema): required properties filled. A
    schema it cannot read is a 400, as providers answer an invalid one."""
    try:
        return _fill(schema)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError):
        raise ApiError(400, "Invalid schema: not a JSON Schema the model can answer to") from None


def _fill(schema: object, defs: dict | None = None) -> object:
    if not isinstance(schema, dict):
        return "test"
    if defs is None:
        defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    if "$ref" in schema:
        return _fill(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or [] if not (isinstance(o, dict) and _schema_type(o) == "null")]
        if options:
            return _fill(options[0], defs)
    kind = _schema_type(schema)
    if kind == "object" or (kind is None and "properties" in schema):
        props, names = schema.get("properties") or {}, schema.get("required") or []
        if not all(isinstance(name, str) for name in names):
            raise TypeError("required names a property by something else than a string")
        return {name: _fill(props.get(name, {}), defs) for name in names}
    if kind == "array":
        return [_fill(schema.get("items", {}), defs) for _ in range(max(1, schema.get("minItems", 1)))]
    return {"number": 1, "integer": 1, "boolean": True, "null": None}.get(kind, "test")


def json_text(schema: object) -> str:
    return orjson.dumps(fill_schema(schema)).decode()


def pick_calls(tools: list[tuple[str, object]], chosen: str | None, parallel: bool) -> list[tuple[str, object]]:
    """Which (name, schema) pairs to call: the chosen one, or the first, or (parallel) each, at least two."""
    if chosen:
        tools = [t for t in tools if t[0] == chosen] or tools
    if not parallel:
        return tools[:1]
    return tools if len(tools) >= 2 else tools[:1] * 2


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[bytes, str | None]]:
    """Form fields of a multipart/form-data body: name -> (raw bytes, filename or None)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        return {}
    fields: dict[str, tuple[bytes, str | None]] = {}
    for part in body.split(b"--" + match.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, value = part.partition(b"\r\n\r\n")
        if value.endswith(b"\r\n"):
            value = value[:-2]
        disposition = head.decode("utf-8", "replace")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name:
            fields[name.group(1)] = (value, filename.group(1) if filename else None)
    return fields


# ---- error bodies ------------------------------------------------------------------------------

def bad_key_message(credential: str) -> str:
    return (f"Incorrect API key provided: {credential}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.")


_OPENAI_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", None, "Not found."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for requests. Please try again in 1s."),
    500: ("server_error", None,
          "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

_ANTHROPIC_ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    529: ("overloaded_error", "Overloaded"),
}

_GEMINI_ERRORS = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "API key not valid. Please pass a valid API key."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in "
                      "https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}


_AZURE_GATEWAY = {
    401: ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
          "key for an active subscription and use a correct regional API endpoint for your resource."),
    404: "Resource not found",
    429: ("Requests to the ChatCompletions_Create Operation under Azure OpenAI API have exceeded call rate "
          "limit of your current OpenAI S0 pricing tier. Please retry after 1 second."),
}


class ApiError(Exception):
    """A provider refusal: rendered in the dialect of the path that was called."""

    def __init__(self, status: int, message: str | None = None, *, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def error_body(dialect: str, status: int, message: str | None = None, *, credential: str | None = None,
               param: str | None = None, code: str | None = None) -> dict:
    """The error JSON a provider answers with for `status` (dialect: openai, azure, anthropic, gemini)."""
    if status == 401 and credential is not None and message is None:
        message = bad_key_message(credential)
    if dialect == "azure" and (status == 401 or (status in _AZURE_GATEWAY and message is None)):
        # Azure's gateway answers these itself, in its own {code, message} shape.
        return {"error": {"code": str(status), "message": message or _AZURE_GATEWAY[status]}}
    if dialect == "anthropic":
        kind, default = _ANTHROPIC_ERRORS.get(status, ("api_error" if status >= 500 else "invalid_request_error",
                                                       "Error"))
        if status == 401 and credential is not None:
            message = f"invalid x-api-key: {message}"
        return {"type": "error", "error": {"type": kind, "message": message or default}}
    if dialect == "gemini":
        state, default = _GEMINI_ERRORS.get(status, ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION",
                                                     "Error"))
        return {"error": {"code": status, "message": message or default, "status": state}}
    if status == 401:
        kind, dflt_code, default = "invalid_request_error", "invalid_api_key", (
            "You didn't provide an API key. You need to provide your API key in an Authorization header using "
            "Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from "
            "https://platform.openai.com/account/api-keys.")
    else:
        kind, dflt_code, default = _OPENAI_ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error"))
    return {"error": {"message": message or default, "type": kind, "param": param, "code": code or dflt_code}}


# ---- answer shapes and tables -------------------------------------------------------------------

OPENAI_MODELS = ("gpt-4o", "gpt-4o-mini", "o3-mini", "text-embedding-3-small", "whisper-1", "tts-1", "dall-e-3")
GEMINI_MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "gemini-embedding-001")
AZURE_FILTER = {name: {"filtered": False, "severity": "safe"} for name in ("hate", "self_harm", "sexual", "violence")}
MODERATION_CATEGORIES = ("harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
                         "illicit/violent", "self-harm", "self-harm/instructions", "self-harm/intent", "sexual",
                         "sexual/minors", "violence", "violence/graphic")
SPEECH_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
                "wav": "audio/wav", "pcm": "audio/pcm"}


def model_object(model: str) -> dict:
    return {"id": model, "object": "model", "created": CREATED, "owned_by": "openai"}


def gemini_model_object(model: str) -> dict:
    embed = "embedding" in model
    methods = ["embedContent", "batchEmbedContents"] if embed else ["generateContent", "countTokens"]
    return {"name": f"models/{model}", "version": "001", "displayName": model.replace("-", " ").title(),
            "description": f"Fake {model}", "inputTokenLimit": 1048576, "outputTokenLimit": 8192 if embed else 65536,
            "supportedGenerationMethods": methods, "temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2,
            "thinking": not embed}


def anthropic_events(message: dict, usage: Usage, chunks: int) -> list[bytes]:
    """The SSE event sequence of a streamed Anthropic message."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": usage.anthropic(output_tokens=1)}
    out = [sse({"type": "message_start", "message": start}, "message_start"), sse({"type": "ping"}, "ping")]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces(block["thinking"], chunks)]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "tool_use":
            opening = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p}
                      for p in ["", *fragments(orjson.dumps(block["input"]).decode())]]
        else:
            opening = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in pieces(block["text"], chunks)]
        out.append(sse({"type": "content_block_start", "index": index, "content_block": opening},
                       "content_block_start"))
        out += [sse({"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta")
                for d in deltas]
        out.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    final = {"output_tokens": usage.completion, **usage.anthropic_thinking()}
    out.append(sse({"type": "message_delta", "delta": delta, "usage": final}, "message_delta"))
    out.append(sse({"type": "message_stop"}, "message_stop"))
    return out


# ---- request validation, as strict as the real APIs --------------------------------------------

O_SERIES = re.compile(r"^o\d")


def check_openai_chat(body: dict, model: str | None) -> None:
    if not model:
        raise ApiError(400, "you must provide a model parameter")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise ApiError(400, "Missing required parameter: 'messages'.", param="messages",
                       code="missing_required_parameter")
    if not messages:
        raise ApiError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                            "empty array instead.", param="messages", code="empty_array")
    if body.get("stream_options") is not None and not body.get("stream"):
        raise ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                       param="stream_options")
    if O_SERIES.match(model) and "max_tokens" in body:
        raise ApiError(400, "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                            "'max_completion_tokens' instead.", param="max_tokens", code="unsupported_parameter")
    pending: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "developer", "user", "assistant", "tool", "function"):
            raise ApiError(400, f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                                "'function', 'tool', and 'developer'.", param=f"messages[{i}].role",
                           code="invalid_value")
        if role == "tool":
            if message.get("tool_call_id") not in pending:
                raise ApiError(400, "Invalid parameter: messages with role 'tool' must be a response to a "
                                    "preceeding message with 'tool_calls'.", param=f"messages.[{i}].role")
            pending.discard(message["tool_call_id"])
            continue
        if pending:
            break
        if role == "assistant":
            pending = {call.get("id") for call in message.get("tool_calls") or []}
    if pending:
        raise ApiError(400, "An assistant message with 'tool_calls' must be followed by tool messages responding "
                            "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                            + ", ".join(sorted(map(str, pending))), param="messages")


ANTHROPIC_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature", "top_p",
    "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers", "context_management",
    "output_config", "output_format", "inference_geo", "cache_control", "diagnostics", "speed",
    "user_profile_id", "workspace_id",
})
ANTHROPIC_BLOCKS = frozenset({
    "text", "image", "document", "search_result", "thinking", "redacted_thinking", "tool_use", "tool_result",
    "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
    "bash_code_execution_tool_result", "text_editor_code_execution_tool_result", "tool_search_tool_result",
    "container_upload", "mcp_tool_use", "mcp_tool_result", "tool_reference",
})
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_NON_EMPTY = "messages: all messages must have non-empty content except for the optional final assistant message"


def _anthropic_range(body: dict, name: str) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ApiError(400, f"{name}: Input should be a valid number")
    if value < 0:
        raise ApiError(400, f"{name}: Input should be greater than or equal to 0")
    if value > 1:
        raise ApiError(400, f"{name}: Input should be less than or equal to 1")


def _anthropic_block(block: object, where: str) -> None:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in ANTHROPIC_BLOCKS:
        raise ApiError(400, f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected "
                            "tags: " + ", ".join(f"'{t}'" for t in sorted(ANTHROPIC_BLOCKS)))
    if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
        raise ApiError(400, "messages: text content blocks must be non-empty")
    if kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64":
            if source.get("media_type") not in _IMAGE_TYPES:
                raise ApiError(400, f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', "
                                    "'image/png', 'image/gif' or 'image/webp'")
            try:
                base64.b64decode(source.get("data") or "", validate=True)
            except ValueError:
                raise ApiError(400, f"{where}.image.source.base64.data: Invalid base64 data") from None
        elif source.get("type") != "url" or not source.get("url"):
            raise ApiError(400, f"{where}.image.source: Input tag '{source.get('type')}' found using 'type' does "
                                "not match any of the expected tags: 'base64', 'url', 'file'")


def check_anthropic(body: dict, count_only: bool) -> None:
    allowed = ANTHROPIC_FIELDS - {"max_tokens", "stream"} if count_only else ANTHROPIC_FIELDS
    for name in body:
        if name not in allowed:
            raise ApiError(400, f"{name}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str):
        raise ApiError(400, "model: Field required")
    if not count_only:
        if "max_tokens" not in body:
            raise ApiError(400, "max_tokens: Field required")
        if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
            raise ApiError(400, "max_tokens: Input should be greater than or equal to 1")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise ApiError(400, "messages: Field required")
    if not messages:
        raise ApiError(400, "messages: at least one message is required")
    if messages[0].get("role") != "user":
        raise ApiError(400, 'messages: first message must use the "user" role')
    system = body.get("system")
    if isinstance(system, list) and any(not b.get("text") for b in system if isinstance(b, dict)):
        raise ApiError(400, "system: text content blocks must be non-empty")
    for stop in body.get("stop_sequences") or []:
        if not isinstance(stop, str) or not stop.strip():
            raise ApiError(400, "stop_sequences: each stop sequence must contain non-whitespace")
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        final_assistant = role == "assistant" and i == len(messages) - 1
        if role == "system" and i and messages[i - 1].get("role") == "user":
            # A mid-conversation system message (SystemMessageParam: text only) may follow a user turn.
            _system_message(content, i)
            continue
        if role not in ("user", "assistant"):
            raise ApiError(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if isinstance(content, str):
            if not content and not final_assistant:
                raise ApiError(400, _NON_EMPTY)
            continue
        if not isinstance(content, list) or (not content and not final_assistant):
            raise ApiError(400, _NON_EMPTY)
        for j, block in enumerate(content):
            _anthropic_block(block, f"messages.{i}.content.{j}")
        _check_tool_pairs(messages, i)
    _anthropic_range(body, "temperature")
    _anthropic_range(body, "top_p")
    for i, tool in enumerate(body.get("tools") or []):
        if not tool.get("name"):
            raise ApiError(400, f"tools.{i}.custom.name: Field required")
        if "type" not in tool and "input_schema" not in tool:
            raise ApiError(400, f"tools.{i}.custom.input_schema: Field required")
    _check_thinking(body, count_only)


def _system_message(content: object, i: int) -> None:
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(blocks, list) or not blocks:
        raise ApiError(400, _NON_EMPTY)
    for j, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind != "text":
            raise ApiError(400, f"messages.{i}.content.{j}: Input tag '{kind}' found using 'type' does not match "
                                "any of the expected tags: 'text'")
        _anthropic_block(block, f"messages.{i}.content.{j}")


def _tool_ids(message: dict, kind: str, key: str) -> list[str]:
    content = message.get("content")
    return [b.get(key) for b in content if b.get("type") == kind] if isinstance(content, list) else []


def _check_tool_pairs(messages: list[dict], i: int) -> None:
    message = messages[i]
    if message["role"] == "user":
        offered = _tool_ids(messages[i - 1], "tool_use", "id") if i else []
        for j, block in enumerate(message["content"]):
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in offered:
                raise ApiError(400, f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                                    f"blocks: {block.get('tool_use_id')}. Each `tool_result` block must have a "
                                    "corresponding `tool_use` block in the previous message.")
    elif i + 1 < len(messages):
        missing = set(_tool_ids(message, "tool_use", "id")) - set(_tool_ids(messages[i + 1], "tool_result",
                                                                            "tool_use_id"))
        if missing:
            raise ApiError(400, f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
                                f"after: {', '.join(sorted(missing))}. Each `tool_use` block must have a "
                                "corresponding `tool_result` block in the next message.")


def _check_thinking(body: dict, count_only: bool) -> None:
    thinking = body.get("thinking") or {}
    if thinking.get("type") not in ("enabled", "adaptive"):
        return
    docs = "Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
    if thinking["type"] == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise ApiError(400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if not count_only and budget >= body["max_tokens"]:
            raise ApiError(400, f"`max_tokens` must be greater than `thinking.budget_tokens`. {docs}")
    if body.get("temperature") not in (None, 1):
        raise ApiError(400, f"`temperature` may only be set to 1 when thinking is enabled. {docs}")
    if body.get("top_k") is not None:
        raise ApiError(400, f"`top_k` must be unset when thinking is enabled. {docs}")
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        raise ApiError(400, "Thinking may not be enabled when tool_choice forces tool use.")
    messages = body["messages"]
    last = messages[-1] if len(messages) > 1 else {}
    if last.get("role") == "user" and _tool_ids(last, "tool_result", "tool_use_id"):
        # The turn that called the tools must give back its (signed) thinking first.
        called = messages[-2].get("content")
        first = called[0] if isinstance(called, list) and called else {}
        if first.get("type") not in ("thinking", "redacted_thinking"):
            raise ApiError(400, f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or "
                                f"`redacted_thinking`, but found `{first.get('type')}`. When `thinking` is enabled, "
                                "a final `assistant` message must start with a thinking block (preceeding the "
                                f"lastmost set of `tool_use` and `tool_result` blocks). {docs}")
        if first.get("type") == "thinking" and not str(first.get("signature") or "").startswith("sig-"):
            raise ApiError(400, f"messages.{len(messages) - 2}.content.0: Invalid `signature` in `thinking` block")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def camel_keys(obj: object) -> dict:
    """Proto3 JSON accepts field names in snake_case too: normalise one level to lowerCamelCase."""
    return {camel(k): v for k, v in obj.items()} if isinstance(obj, dict) else {}


GEMINI_FIELDS = frozenset({
    "model", "contents", "systemInstruction", "generationConfig", "safetySettings", "tools", "toolConfig",
    "labels", "cachedContent", "serviceTier", "continuationToken", "store",
})
GEMINI_GENERATION_FIELDS = frozenset({
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "_responseJsonSchema",
    "responseModalities", "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed",
    "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers",
    "speechConfig", "thinkingConfig", "imageConfig", "mediaResolution", "audioTimestamp", "routingConfig",
    "modelSelectionConfig", "audioTranscriptionConfig",
})
GEMINI_PART_DATA = ("text", "inlineData", "functionCall", "functionResponse", "fileData", "executableCode",
                    "codeExecutionResult")


def gemini_declarations(tools: object) -> list[tuple[str, object]]:
    out = []
    for tool in tools if isinstance(tools, list) else []:
        for decl in camel_keys(tool).get("functionDeclarations") or []:
            decl = camel_keys(decl)
            out.append((decl.get("name"), decl.get("parametersJsonSchema") or decl.get("parameters")))
    return out


def check_gemini(raw_body: dict) -> None:
    for name in raw_body:
        if camel(name) not in GEMINI_FIELDS:
            raise ApiError(400, f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.')
    body = camel_keys(raw_body)
    config = body.get("generationConfig") or {}
    for name in config:
        if camel(name) not in GEMINI_GENERATION_FIELDS:
            raise ApiError(400, f"Invalid JSON payload received. Unknown name \"{name}\" at 'generation_config': "
                                "Cannot find field.")
    budget = camel_keys(camel_keys(config).get("thinkingConfig")).get("thinkingBudget")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool)):
        raise ApiError(400, "Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32), "
                            + orjson.dumps(budget).decode())
    contents = body.get("contents")
    if not contents:
        raise ApiError(400, "* GenerateContentRequest.contents: contents is not specified\n")
    declared = {name for name, _ in gemini_declarations(body.get("tools"))}
    calls = 0  # function calls of the last model turn
    for i, content in enumerate(contents):
        content = camel_keys(content)
        parts = [camel_keys(p) for p in content.get("parts") or []]
        answers = sum(1 for p in parts if p.get("functionResponse") is not None)
        if answers and answers != calls:
            raise ApiError(400, "Please ensure that the number of function response parts is equal to the number "
                                "of function call parts of the function call turn.")
        calls = sum(1 for p in parts if p.get("functionCall") is not None)
        if content.get("role", "user") not in ("user", "model"):
            raise ApiError(400, "Please use a valid role: user, model.")
        if not content.get("parts"):
            raise ApiError(400, f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n")
        for j, part in enumerate(content["parts"]):
            part = camel_keys(part)
            where = f"* GenerateContentRequest.contents[{i}].parts[{j}]"
            if not any(part.get(k) is not None for k in GEMINI_PART_DATA):
                raise ApiError(400, f"{where}.data: required oneof field 'data' must have one initialized field\n")
            response = camel_keys(part.get("functionResponse"))
            if response and response.get("name") not in declared:
                raise ApiError(400, f"{where}.function_response.name: function response name "
                                    f"\"{response.get('name')}\" does not match any declared function\n")
