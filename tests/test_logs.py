"""The stdout lines: batched writes, the access log's format, taking it over from uvicorn."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from relay.logs import AccessLog, Lines, take_over_access_log


def scope(path="/v1/chat/completions", query=b"", raw_path=None, client=("10.0.0.7", 5123)):
    s = {"type": "http", "method": "POST", "path": path, "query_string": query, "http_version": "1.1",
         "client": client}
    if raw_path is not None:
        s["raw_path"] = raw_path
    return s


def test_lines_are_written_together_once_the_loop_lets_the_timer_run():
    out = io.BytesIO()

    async def main():
        lines = Lines(out, flush_s=0.01)
        lines.add(b"a\n")
        lines.add(b"b\n")
        assert out.getvalue() == b""  # nothing written per line
        await asyncio.sleep(0.05)
        assert out.getvalue() == b"a\nb\n"
        lines.add(b"c\n")
        lines.flush()  # shutdown: written at once, and the timer is gone
        assert out.getvalue() == b"a\nb\nc\n"

    asyncio.run(main())


def test_lines_outside_a_loop_are_written_at_once():
    out = io.BytesIO()
    Lines(out).add(b"x\n")
    assert out.getvalue() == b"x\n"


def test_access_line_is_uvicorns_with_the_path_as_sent_and_no_key():
    out = io.BytesIO()
    log = AccessLog(out)
    log.write(scope(path="/v1/chat/completions", raw_path=b"/chat/completions"), 200)
    log.write(scope(path="/v1beta/models", query=b"alt=sse&KEY=AIzaSecret"), 429)
    log.write(scope(client=None), 599)
    assert out.getvalue().decode().splitlines() == [
        'INFO:     10.0.0.7:5123 - "POST /chat/completions HTTP/1.1" 200 OK',
        'INFO:     10.0.0.7:5123 - "POST /v1beta/models?alt=sse&KEY=[redacted] HTTP/1.1" 429 Too Many Requests',
        'INFO:     -:0 - "POST /v1/chat/completions HTTP/1.1" 599',
    ]


@pytest.fixture
def access_logger():
    logger = logging.getLogger("uvicorn.access")
    saved = (list(logger.handlers), logger.propagate, logger.level, logger.disabled)
    yield logger
    logger.handlers[:], logger.propagate, logger.level, logger.disabled = saved


def test_take_over_only_when_uvicorns_access_log_is_on(access_logger):
    # as `uvicorn --no-access-log` leaves it
    access_logger.handlers.clear()
    access_logger.propagate = False
    assert take_over_access_log() is False
    # as `--log-level warning` leaves it: uvicorn would print nothing, so neither do we
    access_logger.addHandler(logging.NullHandler())
    access_logger.setLevel(logging.WARNING)
    assert take_over_access_log() is False
    # as plain `uvicorn app:app` leaves it: ours from now on, uvicorn's silenced
    access_logger.setLevel(logging.INFO)
    assert take_over_access_log() is True
    assert not access_logger.hasHandlers()
