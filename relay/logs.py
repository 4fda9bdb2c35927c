"""What the proxy writes on stdout, and keeping keys out of it.

Usage records and access lines are written in small batches (`Lines`): a busy replica makes a
few writes a second instead of one per request. The access log is uvicorn's, line for line, but
written here: uvicorn's goes through `logging` and one write per request, which cost a fifth of
a request's CPU (bench/). Gemini clients may put their key in `?key=`: it never reaches a log.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
import sys

# `key` in any case or percent-encoding (`k%65y`), so no spelling slips a key past the log.
_KEY_PARAM = re.compile(r"([?&](?:k|%6b)(?:e|%65)(?:y|%79)=)[^&\s]*", re.IGNORECASE)
_STATUS = {s.value: f"{s.value} {s.phrase}" for s in http.HTTPStatus}


def redact_query(text: str) -> str:
    return _KEY_PARAM.sub(r"\1[redacted]", text)


class Lines:
    """Lines for stdout (or `out`), written together within `flush_s` of the first one."""

    def __init__(self, out=None, flush_s: float = 0.05) -> None:
        self._out = out or sys.stdout.buffer
        self._flush_s = flush_s
        self._pending: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, line: bytes) -> None:
        self._pending.append(line)
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self._flush_s, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            data, self._pending = b"".join(self._pending), []
            try:
                self._out.write(data)
                self._out.flush()
            except (OSError, ValueError):
                pass  # a closed stdout must not take requests down with it


class AccessLog(Lines):
    """One line per answered request, as uvicorn writes it (`INFO:     ip:port - "GET /p
    HTTP/1.1" 200 OK`), with the path as the client sent it and any `?key=` redacted."""

    def write(self, scope, status: int) -> None:
        client = scope.get("client")
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope["query_string"]
        if query:
            path += b"?" + query
        target = path.decode("latin-1")
        if query and b"=" in query:
            target = redact_query(target)
        self.add(
            f'INFO:     {client[0] if client else "-"}:{client[1] if client else 0} - "{scope["method"]} {target} '
            f'HTTP/{scope["http_version"]}" {_STATUS.get(status, status)}\n'.encode("utf-8", "replace")
        )


def take_over_access_log() -> bool:
    """Silence uvicorn's access log, if it is on, so the app writes it instead; whether it was.

    uvicorn decides per connection whether to log from whether its access logger has handlers,
    so this must run before the first connection (the lifespan's start-up does).
    """
    logger = logging.getLogger("uvicorn.access")
    if not logger.hasHandlers() or logger.disabled or not logger.isEnabledFor(logging.INFO):
        return False
    logger.handlers.clear()
    logger.propagate = False
    return True


class RedactKeys(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query(a) if isinstance(a, str) and "=" in a else a for a in record.args)
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = redact_query(record.msg)
        return True


def install() -> None:
    """Attach the filter to uvicorn's access and error loggers (kept across its dictConfig)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactKeys) for f in logger.filters):
            logger.addFilter(RedactKeys())
