"""Reading the model out of a request body, and changing it, without re-encoding the rest.

JSON bodies are parsed once (orjson). Multipart uploads (audio) are forwarded byte for byte: only
the `model` part is found, and spliced when a channel maps the model to another name.
"""

from __future__ import annotations

import re

import orjson

from .errors import ProxyError

_BOUNDARY = re.compile(rb'boundary="?([^";,\s]+)"?', re.IGNORECASE)
_MODEL_PART = re.compile(rb'^content-disposition:[^\r\n]*;\s*name="?model"?\s*(;|\r?$)', re.I | re.M)
# A top-level key of a JSON object: strings and brackets are all a scan of the top level needs.
_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]]')
_JSON_SPACE = b" \t\r\n"
# How an escaped letter of "model" begins (`\u0064` is d ... `\u006f` is o): JSON keys may be
# spelled with escapes. Clients escape non-ASCII text (`\u4e2d`), almost never ASCII letters.
_ESCAPED_LETTER = b"\\u006"
_MODEL_KEY = re.compile(rb'"model"\s*:')


def json_object(body: bytes) -> dict:
    if not body:
        raise ProxyError(400, "Request body is empty: expected a JSON object", code="invalid_json")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProxyError(400, f"Request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise ProxyError(
            400, f"Request body must be a JSON object, not a JSON {type(payload).__name__}",
            code="invalid_json",
        )
    # The parser keeps the last of two `model` keys, an upstream may take the first: the token
    # would be checked and billed for one model and another would run. A string value holds no
    # unescaped quote, and a key is followed by a colon, so a body with one raw `"model":` and no
    # escaped letter has one `model` key at most (a Gemini conversation's `"role": "model"` is
    # no key); only the others need their top level scanned (a regex search, ~1 µs a KB, where
    # the scan is ~20).
    keys = _MODEL_KEY.finditer(body)
    if (next(keys, None) is not None and next(keys, None) is not None or body.find(_ESCAPED_LETTER) != -1) and (
        _top_level_count(body, "model") > 1
    ):
        raise _twice("Parameter 'model'")
    return payload


def _top_level_count(body: bytes, name: str) -> int:
    """How many keys of the (valid JSON) object `body` are `name` once unescaped."""
    depth, count, end = 0, 0, len(body)
    for m in _JSON_TOKEN.finditer(body):
        token = m.group()
        if token[0] != 0x22:  # a bracket
            depth += 1 if token in (b"{", b"[") else -1
            continue
        if depth != 1:
            continue
        at = m.end()
        while at < end and body[at] in _JSON_SPACE:
            at += 1
        if at < end and body[at] == 0x3A and (orjson.loads(token) if b"\\" in token else token[1:-1].decode()) == name:
            count += 1
    return count


def _twice(what: str) -> ProxyError:
    return ProxyError(400, f"{what} is given more than once: send it once", code="duplicate_field", param="model")


_SNIFFED_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]{1,256})"')
_SNIFFED_STREAM = re.compile(rb'"stream"\s*:\s*true')


def sniff_model(head: bytes) -> str | None:
    """The model a body's first bytes name, for the record of a body that is never read whole
    (a streamed passthrough upload); None when they do not say."""
    match = _SNIFFED_MODEL.search(head)
    if match is None:
        return None
    try:
        return checked_model(match.group(1).decode())
    except (UnicodeDecodeError, ProxyError):
        return None


def sniff_form_model(head: bytes, content_type: str) -> str | None:
    """The `model` field of a multipart upload when it comes before the file (SDKs send it first)."""
    try:
        span = _model_part(head, content_type)
        return checked_model(head[span[0]:span[1]].decode().strip()) if span else None
    except (UnicodeDecodeError, ProxyError):
        return None


def sniff_stream(head: bytes) -> bool:
    return _SNIFFED_STREAM.search(head) is not None


MAX_MODEL_CHARS = 256  # model names live in caches and metric labels: they must be small


def checked_model(model: str) -> str:
    """A model name the proxy will route: short, and never a path segment of its own."""
    if len(model) > MAX_MODEL_CHARS:
        raise ProxyError(400, f"Parameter 'model' is longer than {MAX_MODEL_CHARS} characters",
                         code="invalid_model", param="model")
    if model in (".", "..") or any(c in model for c in "\r\n\0"):
        raise ProxyError(400, f"Parameter 'model' is not a model name: {model!r}", code="invalid_model",
                         param="model")
    return model


def json_model(payload: dict) -> str:
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        what = "is missing" if model is None else "must be a non-empty string"
        raise ProxyError(400, f"Required parameter 'model' {what}", code="missing_model", param="model")
    return checked_model(model)


def _model_part(body: bytes, content_type: str) -> tuple[int, int] | None:
    """Start and end offsets of the `model` field's value in a multipart body (a second `model`
    field is refused: which one an upstream takes is its own choice)."""
    m = _BOUNDARY.search(content_type.encode("latin-1"))
    if not m:
        raise ProxyError(400, "multipart/form-data body without a boundary", code="invalid_multipart")
    delimiter = b"--" + m.group(1)
    found = None
    pos = body.find(delimiter)
    while pos != -1:
        head_start = pos + len(delimiter)
        if body.startswith(b"--", head_start):
            break  # closing delimiter
        head_end = body.find(b"\r\n\r\n", head_start)
        if head_end == -1:
            break
        nxt = body.find(b"\r\n" + delimiter, head_end)
        if nxt == -1:
            break
        if _MODEL_PART.search(body, head_start, head_end):
            if found is not None:
                raise _twice("Form field 'model'")
            found = head_end + 4, nxt
        pos = nxt + 2
    return found


def form_model(body: bytes, content_type: str) -> str:
    if not content_type.lower().startswith("multipart/form-data"):
        raise ProxyError(
            400, "This endpoint takes multipart/form-data (a file upload)", code="invalid_multipart"
        )
    span = _model_part(body, content_type)
    model = body[span[0]:span[1]].decode("utf-8", "replace").strip() if span else ""
    if not model:
        raise ProxyError(400, "Required form field 'model' is missing", code="missing_model", param="model")
    return checked_model(model)


def replace_form_model(body: bytes, content_type: str, model: str) -> bytes:
    span = _model_part(body, content_type)
    assert span is not None, "form_model() accepted this body"
    return body[: span[0]] + model.encode() + body[span[1] :]
