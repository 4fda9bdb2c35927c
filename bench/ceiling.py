"""The ceiling of this design: Starlette's router and aiohttp called directly, and nothing else.

Issue #6's row "Starlette + aiohttp called directly (ceiling for this design)": no auth,
routing, usage, translation, httpx or timeouts. The client's headers and body go to the fake
upstream as they are; its answer comes back as it is, streamed chunk by chunk. What the proxy
costs above this column is the price of its features (and of httpx's interface) on this
machine; what this column costs above nginx is the price of Python, uvicorn and aiohttp.

    BENCH_UPSTREAM=http://127.0.0.1:PORT uvicorn --app-dir bench ceiling:app --loop uvloop ...
"""

from __future__ import annotations

import os

import aiohttp
from starlette.routing import Route, Router

PATHS = ("/v1/chat/completions", "/v1/messages")
_NOT_PASSED = frozenset({b"host", b"content-length", b"connection", b"transfer-encoding", b"date", b"server"})
_session: aiohttp.ClientSession | None = None


class Forward:
    def __init__(self, url: str) -> None:
        self.url = url

    async def __call__(self, scope, receive, send) -> None:
        global _session
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if _session is None:
            # No timeout: aiohttp's default (5 minutes) would arm a timer per request.
            _session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                                             timeout=aiohttp.ClientTimeout(total=None))
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k not in _NOT_PASSED]
        async with _session.post(self.url, data=body, headers=headers) as response:
            out = [(k.lower(), v) for k, v in response.raw_headers if k.lower() not in _NOT_PASSED]
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                await send({"type": "http.response.start", "status": response.status, "headers": out})
                async for chunk in response.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            else:
                data = await response.read()
                out.append((b"content-length", str(len(data)).encode()))
                await send({"type": "http.response.start", "status": response.status, "headers": out})
                await send({"type": "http.response.body", "body": data})


app = Router([Route(path, Forward(os.environ["BENCH_UPSTREAM"] + path), methods=["POST"]) for path in PATHS])
