"""Lean: Starlette's router, and the proxy's httpx client and transport used through `client.send`.

Issue #6's row "Starlette + httpx, lean: `httpx.Request` straight to `client.send`, no cookie
jar, small app-owned aiohttp transport". The client and transport are the proxy's own
(`UpstreamClient` over `relay.transport.AiohttpTransport`), used through httpx's public
interface and nothing else: no auth, routing, usage, translation or timeouts. The client's
headers and body go to the fake upstream as they are; its answer comes back as it is, raw bytes
streamed chunk by chunk (`aiter_raw`). The proxy skips `client.send` and httpx's stream wrapper
(it calls the transport and reads its chunks), so proxy/lean is the price of its features net
of what that saves; lean/ceiling is the price of httpx's full client interface.

    BENCH_UPSTREAM=http://127.0.0.1:PORT uvicorn --app-dir bench lean:app --loop uvloop ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from reference import NOT_PASSED, read_body, relay, router

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from relay.transport import AiohttpTransport, UpstreamClient  # noqa: E402

_client: httpx.AsyncClient | None = None


class Forward:
    def __init__(self, url: str) -> None:
        self.url = url

    async def __call__(self, scope, receive, send) -> None:
        global _client
        body = await read_body(receive)
        if _client is None:
            # trust_env=False, as the proxy's: an HTTP(S)_PROXY in the environment must not
            # swap the transport under test for httpx's proxy transport.
            _client = UpstreamClient(transport=AiohttpTransport(), timeout=None, trust_env=False)
        headers = [(k, v) for k, v in scope["headers"] if k not in NOT_PASSED]
        response = await _client.send(httpx.Request("POST", self.url, headers=headers, content=body), stream=True)
        try:
            await relay(send, response.status_code, response.headers.raw, response.aiter_raw())  # (aread decodes)
        finally:
            await response.aclose()


app = router(Forward)
