"""What the benchmark's two reference apps share (`ceiling.py`, `lean.py`): the routes, the
headers not passed on, reading the body, and passing an upstream's answer back as it is.

Each app only says how it calls the upstream. The answer's chunks go from that call's own
iterator straight to `send`: no layer of ours sits between them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Callable

from starlette.routing import Route, Router

PATHS = ("/v1/chat/completions", "/v1/messages")
NOT_PASSED = frozenset({b"host", b"content-length", b"connection", b"transfer-encoding", b"date", b"server"})


async def read_body(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def relay(send, status: int, raw_headers, chunks: AsyncIterable[bytes]) -> None:
    """The upstream's answer as it came: an event stream chunk by chunk, anything else whole
    (with its length)."""
    out = [(k.lower(), v) for k, v in raw_headers if k.lower() not in NOT_PASSED]
    if any(k == b"content-type" and v.startswith(b"text/event-stream") for k, v in out):
        await send({"type": "http.response.start", "status": status, "headers": out})
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        data = b"".join([chunk async for chunk in chunks])
        out.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": data})


def router(forward: Callable[[str], object]) -> Router:
    """Starlette's router over PATHS, each route `forward(upstream URL of that path)`."""
    upstream = os.environ["BENCH_UPSTREAM"]
    return Router([Route(path, forward(upstream + path), methods=["POST"]) for path in PATHS])
