"""Every error the proxy answers, in the client's own dialect.

Handlers raise `ProxyError`; the client's dialect record (`relay.dialects`) turns it into the
shape its SDK expects (SPEC §8). Upstream error bodies are read with `upstream_message` and redacted before they
reach anyone.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl

import httpx
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
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.kind = kind  # OpenAI's error `type` where the status alone does not say it


# Upstream error messages may quote the key they were sent ("Incorrect API key provided: sk-ab***").
_SECRETS = re.compile(
    r"(sk-[A-Za-z0-9_\-*.]{4,}|AIza[0-9A-Za-z_\-]{10,}|key-[A-Za-z0-9]{10,}|Bearer\s+[A-Za-z0-9._~+/=\-]+|[?&]key=[^&\s\"']+)"
)
# A mask run: how upstreams echo a key they will not quote whole ("sk-abcd***wxyz",
# "abcd****wxyz", "AIza...xyz", "...wxyz"); the key-like characters either side say whose.
_MASK = re.compile(r"[*.…•]+")  # (one class: a regex of alternatives tries each at every character)
_MASK_MARKS = ("*", "..", "…", "•")
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# A key shorter than this is only replaced as a word of its own: a four-letter key must not
# take every word that holds those letters with it. Longer ones go wherever they appear.
_ANYWHERE = 8
# A masked echo names a known key by its first or last characters: four on one side (what
# providers show), or two on each side of the mask.
_ONE_SIDE, _TWO_SIDES = 4, 2


def redact(text: str, *secrets: str | None) -> str:
    """`text` without the given keys, their masked echoes, or anything shaped like a key.

    `secrets` are the keys this request carried (the channel's, the client's own key of any
    shape, the proxy token); empty ones are skipped.
    """
    known = [s for s in secrets if s]
    for secret in known:
        if secret in text:
            text = text.replace(secret, "[redacted]") if len(secret) >= _ANYWHERE else _replace_word(text, secret)
    if known and any(mark in text for mark in _MASK_MARKS):
        text = _without_masked_echoes(text, [s for s in known if len(s) >= _ANYWHERE])
    return _SECRETS.sub("[redacted]", text)


def _replace_word(text: str, word: str) -> str:
    out, start, at = [], 0, text.find(word)
    while at != -1:
        end = at + len(word)
        if (at == 0 or text[at - 1] not in _WORD_CHARS) and (end == len(text) or text[end] not in _WORD_CHARS):
            out += (text[start:at], "[redacted]")
            start = end
        at = text.find(word, end)
    return "".join(out) + text[start:] if out else text


def _without_masked_echoes(text: str, known: list[str]) -> str:
    out, start, size = [], 0, len(text)
    for m in _MASK.finditer(text):
        head, tail = m.start(), m.end()
        if head < start or m.group() == ".":
            continue  # part of an echo already taken out, or a full stop
        while head > start and text[head - 1] in _WORD_CHARS:
            head -= 1
        while tail < size and text[tail] in _WORD_CHARS:
            tail += 1
        if _echoes(text[head:m.start()], text[m.end():tail], known):
            out += (text[start:head], "[redacted]")
            start = tail
    return "".join(out) + text[start:] if out else text


def _echoes(head: str, tail: str, known: list[str]) -> bool:
    """Whether `head` + a mask + `tail` is a known key with its middle masked."""
    for secret in known:
        starts = len(head) >= _TWO_SIDES and secret.startswith(head)
        ends = len(tail) >= _TWO_SIDES and secret.endswith(tail)
        if (starts and len(head) >= _ONE_SIDE) or (ends and len(tail) >= _ONE_SIDE) or (starts and ends):
            return True
    return False


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


def unreachable(exc: BaseException, dialect: str) -> ProxyError:
    """The client's error for an upstream that sent no answer head: 504 for timeouts, 502 for
    the rest. It says which dialect's upstream failed and how, never the channel's name or
    address (the caller logs those)."""
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return ProxyError(504, f"The {dialect} upstream timed out while connecting", code="upstream_timeout")
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        return ProxyError(504, f"The {dialect} upstream timed out before answering", code="upstream_timeout")
    return ProxyError(502, f"The {dialect} upstream could not be reached ({_how(exc)})", code="upstream_unreachable")


_ERRNOS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "no route to its host",
    errno.ENETUNREACH: "no route to its host",
}


def _how(exc: BaseException) -> str:
    """What went wrong, in words that name no host: from the OS error under the transport's."""
    seen: BaseException | None = exc
    while seen is not None:
        cause = getattr(seen, "os_error", None) or getattr(seen, "certificate_error", None) or seen
        if isinstance(cause, socket.gaierror):
            return "its host name did not resolve"
        if isinstance(cause, ssl.SSLError) or isinstance(seen, ssl.SSLError):
            return "TLS handshake failed"
        if isinstance(cause, OSError) and cause.errno in _ERRNOS:
            return _ERRNOS[cause.errno]
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection closed before an answer"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in str(exc).lower() else "connection failed"
    return "network error"


class UpstreamFailure(ProxyError):
    """An upstream's error answer. A client of the upstream's own dialect family gets the
    upstream's body (redacted), which keeps provider codes such as `context_length_exceeded`;
    others get the message in their dialect."""

    def __init__(self, status: int, message: str, raw: bytes | None, family: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, code="upstream_error", headers=headers)
        self.raw = raw
        self.family = family
