"""The route table of SPEC §4: one row per endpoint, served by one generic forwarder.

`endpoint` is where the row lives on an upstream of the same dialect, relative to the channel's
base URL (OpenAI's includes `/v1`; Anthropic's does not; Gemini's methods follow the model).
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.dialects import ANTHROPIC, GEMINI, OPENAI, RESPONSES, Dialect

# What a row does, for rows that other dialects' channels can serve through translation.
GENERATE = "generate"  # an answer from the model
COUNT = "count"  # the tokens of a request, counted


@dataclass(frozen=True, slots=True)
class Row:
    method: str
    path: str
    dialect: Dialect
    model_from: str  # "body" (JSON), "form" (multipart field), "path", or "" (model lists)
    endpoint: str
    streams: str = ""  # "flag": the JSON body's `stream` says whether the answer streams; "always"
    does: str = ""  # GENERATE or COUNT: what a channel of another dialect can be asked to do
    keeps: bool = False  # answers are kept for a later request to continue (`previous_response_id`)


def _gemini(method: str, streams: str = "", does: str = "") -> Row:
    return Row("POST", "/v1beta/models/{model:model}:" + method, GEMINI, "path", method, streams, does)


ROWS: tuple[Row, ...] = (
    Row("POST", "/v1/chat/completions", OPENAI, "body", "chat/completions", "flag", GENERATE),
    Row("POST", "/v1/completions", OPENAI, "body", "completions", "flag"),
    Row("POST", "/v1/responses", RESPONSES, "body", "responses", "flag", GENERATE, keeps=True),
    Row("GET", "/v1/responses/{response_id}", RESPONSES, "", "responses"),
    Row("POST", "/v1/embeddings", OPENAI, "body", "embeddings"),
    Row("POST", "/v1/moderations", OPENAI, "body", "moderations"),
    Row("POST", "/v1/images/generations", OPENAI, "body", "images/generations", "flag"),
    Row("POST", "/v1/images/edits", OPENAI, "form", "images/edits"),
    Row("POST", "/v1/audio/speech", OPENAI, "body", "audio/speech"),
    Row("POST", "/v1/audio/transcriptions", OPENAI, "form", "audio/transcriptions"),
    Row("POST", "/v1/audio/translations", OPENAI, "form", "audio/translations"),
    Row("GET", "/v1/models", OPENAI, "", "models"),
    Row("GET", "/v1/models/{model:model}", OPENAI, "", "models"),
    Row("POST", "/v1/messages", ANTHROPIC, "body", "messages", "flag", GENERATE),
    Row("POST", "/v1/messages/count_tokens", ANTHROPIC, "body", "messages/count_tokens", "", COUNT),
    _gemini("generateContent", does=GENERATE),
    _gemini("streamGenerateContent", "always", GENERATE),
    _gemini("countTokens", does=COUNT),
    _gemini("embedContent"),
    _gemini("batchEmbedContents"),
    Row("GET", "/v1beta/models", GEMINI, "", "models"),
    Row("GET", "/v1beta/models/{model:model}", GEMINI, "", "models"),
)

# Paths a client may reach us on besides the canonical ones (SPEC §4, "Base URLs").
_ENDPOINT_TAILS = ("/chat/completions", "/completions", "/responses", "/messages", "/embeddings")
# OpenAI's old billing paths, which apps (NextChat) call with the user's key to show a balance.
BILLING_PATHS = ("/v1/dashboard/billing/subscription", "/v1/dashboard/billing/usage")
_STATIC = (frozenset(row.path for row in ROWS if "{" not in row.path) | {"/healthz", "/readyz", "/metrics"}
           | frozenset(BILLING_PATHS))
ADMIN = "/admin"  # the operator's API lives at its own paths: no base-URL spellings


def canonical_path(path: str) -> str:
    """`/chat/completions`, `/v1/v1/chat/completions`, `/v1/v1beta/models/x:generateContent`...
    -> the path of the table."""
    if path in _STATIC or path == ADMIN or path.startswith(ADMIN + "/"):
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
