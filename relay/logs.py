"""Keeping keys out of the server's own logs: Gemini clients may put theirs in `?key=`."""

from __future__ import annotations

import logging
import re

# `key` in any case or percent-encoding (`k%65y`), so no spelling slips a key past the log.
_KEY_PARAM = re.compile(r"([?&](?:k|%6b)(?:e|%65)(?:y|%79)=)[^&\s]*", re.IGNORECASE)


def redact_query(text: str) -> str:
    return _KEY_PARAM.sub(r"\1[redacted]", text)


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
