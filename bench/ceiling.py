"""The ceiling of this design: Starlette's router and aiohttp called directly, and nothing else.

Issue #6's row "Starlette + aiohttp called directly (ceiling for this design)": no auth,
routing, usage, translation, httpx or timeouts. The client's headers and body go to the fake
upstream as they are; its answer comes back as it is, streamed chunk by chunk. What the proxy
costs above this column is the price of its features (and of httpx's interface) on this
machine; what this column costs above nginx is the price of Python, uvicorn and aiohttp.

    BENCH_UPSTREAM=http://127.0.0.1:PORT uvicorn --app-dir bench ceiling:app --loop uvloop ...
"""

from __future__ import annotations

import aiohttp

from reference import NOT_PASSED, read_body, relay, router

_session: aiohttp.ClientSession | None = None


class Forward:
    def __init__(self, url: str) -> None:
        self.url = url

    async def __call__(self, scope, receive, send) -> None:
        global _session
        body = await read_body(receive)
        if _session is None:
            # No timeout: aiohttp's default (5 minutes) would arm a timer per request.
            _session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                                             timeout=aiohttp.ClientTimeout(total=None))
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k not in NOT_PASSED]
        async with _session.post(self.url, data=body, headers=headers) as response:
            await relay(send, response.status, response.raw_headers, response.content.iter_any())


app = router(Forward)
