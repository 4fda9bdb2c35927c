"""The route table of SPEC §4: one row per endpoint, served by one generic forwarder.

`endpoint` is where the row lives on an upstream of the same dialect, relative to the channel's
base URL (OpenAI's includes `/v1`; Anthropic's does not; Gemini's methods follow the model).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    method: str
    path: str
    dialect: str
    model_from: str  # "body" (JSON), "form" (multipart field), "path", or "" (model lists)
    endpoint: str
    stream_flag: bool = False  # the JSON body's `stream` says whether the answer streams


def _gemini(method: str, streams: bool = False) -> Row:
    return Row("POST", "/v1beta/models/{model:model}:" + method, "gemini", "path", method, streams)


ROWS: tuple[Row, ...] = (
    Row("POST", "/v1/chat/completions", "openai", "body", "chat/completions", True),
    Row("POST", "/v1/completions", "openai", "body", "completions", True),
    Row("POST", "/v1/responses", "openai", "body", "responses", True),
    Row("POST", "/v1/embeddings", "openai", "body", "embeddings"),
    Row("POST", "/v1/moderations", "openai", "body", "moderations"),
    Row("POST", "/v1/images/generations", "openai", "body", "images/generations", True),
    Row("POST", "/v1/images/edits", "openai", "form", "images/edits"),
    Row("POST", "/v1/audio/speech", "openai", "body", "audio/speech"),
    Row("POST", "/v1/audio/transcriptions", "openai", "form", "audio/transcriptions"),
    Row("POST", "/v1/audio/translations", "openai", "form", "audio/translations"),
    Row("GET", "/v1/models", "openai", "", "models"),
    Row("GET", "/v1/models/{model:model}", "openai", "", "models"),
    Row("POST", "/v1/messages", "anthropic", "body", "messages", True),
    Row("POST", "/v1/messages/count_tokens", "anthropic", "body", "messages/count_tokens"),
    _gemini("generateContent"),
    _gemini("streamGenerateContent", streams=True),
    _gemini("countTokens"),
    _gemini("embedContent"),
    _gemini("batchEmbedContents"),
    Row("GET", "/v1beta/models", "gemini", "", "models"),
    Row("GET", "/v1beta/models/{model:model}", "gemini", "", "models"),
)

# Paths a client may reach us on besides the canonical ones (SPEC §4, "Base URLs").
_ENDPOINT_TAILS = ("/chat/completions", "/completions", "/responses", "/messages", "/embeddings")
_STATIC = frozenset(row.path for row in ROWS if "{" not in row.path) | {"/healthz", "/readyz", "/metrics"}


def canonical_path(path: str) -> str:
    """`/chat/completions`, `/v1/v1/chat/completions`, `/v1/v1beta/models/x:generateContent`...
    -> the path of the table."""
    if path in _STATIC:
        return path
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    if path.startswith("/v1beta/"):
        return path
    rest = path
    while rest.startswith("/v1/"):
        rest = rest[3:]
    for tail in _ENDPOINT_TAILS:  # a base URL that already held the endpoint, plus the SDK's suffix
        if rest.startswith(tail + "/"):
            inner = rest[len(tail):]
            while inner.startswith("/v1/"):
                inner = inner[3:]
            if "/v1" + inner in _STATIC:
                rest = inner
            break
    if rest.startswith(("/v1beta/", "/v1alpha/")):
        return "/v1beta/" + rest.split("/", 2)[2]
    if rest.startswith("/models/") and ":" in rest:
        return "/v1beta" + rest
    return "/v1" + rest if rest != "/v1" else "/v1/"
