"""Every error the proxy answers, in the client's own dialect.

Handlers raise `ProxyError`; the client's dialect record (`relay.dialects`) turns it into the
shape its SDK expects (SPEC §8). Upstream error bodies are read with `upstream_message` and redacted before they
reach anyone.
"""

from __future__ import annotations

import re

import orjson

# status -> (OpenAI `type`, Anthropic `error.type`, Gemini `status`)
_KINDS = {
    400: ("invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    401: ("authentication_error", "authentication_error", "UNAUTHENTICATED"),
    403: ("permission_error", "permission_error", "PERMISSION_DENIED"),
    404: ("invalid_request_error", "not_found_error", "NOT_FOUND"),
    405: ("invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    408: ("timeout_error", "timeout_error", "DEADLINE_EXCEEDED"),
    413: ("invalid_request_error", "request_too_large", "INVALID_ARGUMENT"),
    422: ("invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    429: ("rate_limit_error", "rate_limit_error", "RESOURCE_EXHAUSTED"),
    431: ("invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    500: ("server_error", "api_error", "INTERNAL"),
    502: ("upstream_error", "api_error", "UNAVAILABLE"),
    503: ("service_unavailable", "overloaded_error", "UNAVAILABLE"),
    504: ("timeout_error", "timeout_error", "DEADLINE_EXCEEDED"),
    529: ("service_unavailable", "overloaded_error", "UNAVAILABLE"),
}


def kind(status: int) -> tuple[str, str, str]:
    """(OpenAI `type`, Anthropic `error.type`, Gemini `status`) for an HTTP status."""
    return _KINDS.get(status) or _KINDS[400 if status < 500 else 502]


class ProxyError(Exception):
    """An answer the proxy gives instead of the upstream's: status, message, OpenAI-style code."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}


# Upstream error messages may quote the key they were sent ("Incorrect API key provided: sk-ab***").
_SECRETS = re.compile(
    r"(sk-[A-Za-z0-9_\-*.]{4,}|AIza[0-9A-Za-z_\-]{10,}|key-[A-Za-z0-9]{10,}|Bearer\s+[A-Za-z0-9._~+/=\-]+|[?&]key=[^&\s\"']+)"
)


def redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _SECRETS.sub("[redacted]", text)


def upstream_message(raw: bytes) -> str:
    """The human message inside any provider's error body (or the body itself, shortened)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:500].decode("utf-8", "replace").strip() or "upstream error"
    if isinstance(data, list) and data:  # Gemini's streaming JSON array
        data = data[0]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
    return raw[:500].decode("utf-8", "replace")


class UpstreamFailure(ProxyError):
    """An upstream's error answer. A client of the upstream's own dialect family gets the
    upstream's body (redacted), which keeps provider codes such as `context_length_exceeded`;
    others get the message in their dialect."""

    def __init__(self, status: int, message: str, raw: bytes | None, family: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, code="upstream_error", headers=headers)
        self.raw = raw
        self.family = family
