"""Request bodies: a deadline for the whole body, a cap on what the process holds, nothing leaked."""

from __future__ import annotations

import asyncio

import pytest

from relay.alarms import Alarms
from relay.config import ConfigError, Proxy, parse
from relay.errors import ProxyError
from relay.intake import ClientGone, Intake

MB = 1024 * 1024


def intake(cap: int = 1000, limit: int = 10_000, timeout: float = 0.3) -> Intake:
    return Intake(Proxy(max_body_bytes=limit, max_buffered_bytes=cap, body_timeout_s=timeout), Alarms(0.01))


def receiver(*pieces: bytes, then=None, complete: bool = True):
    """An ASGI `receive` giving `pieces` of a request body (all of it when `complete`), then
    `then` (None: waits forever)."""
    messages = [{"type": "http.request", "body": p, "more_body": not complete or i < len(pieces) - 1}
                for i, p in enumerate(pieces)]

    async def receive():
        if messages:
            return messages.pop(0)
        if then is not None:
            return then
        await asyncio.Event().wait()

    return receive


def run(coro):
    return asyncio.run(coro)


def test_a_body_is_counted_while_held_and_released_after():
    async def scenario():
        reader = intake()
        async with reader.body(receiver(b"ab", b"cd", b"e"), {}) as body:
            assert body == b"abcde" and reader.held == 5
        assert reader.held == 0
        with pytest.raises(RuntimeError):
            async with reader.body(receiver(b"xyz"), {}) as body:
                assert reader.held == 3
                raise RuntimeError("the request failed on its way")
        assert reader.held == 0

    run(scenario())


def test_the_whole_body_has_a_deadline():
    async def scenario():
        reader = intake(timeout=0.2)
        started = asyncio.get_running_loop().time()
        with pytest.raises(ProxyError) as info:
            async with reader.body(receiver(b"a" * 10, b"b" * 10, complete=False), {}):  # then nothing
                pass
        assert 0.2 <= asyncio.get_running_loop().time() - started < 1.0
        assert reader.held == 0
        return info.value

    err = run(scenario())
    assert err.status == 408 and "0.2 s" in err.message and err.headers["connection"] == "close"


def test_a_trickle_that_keeps_coming_still_meets_the_deadline():
    async def scenario():
        reader = intake(timeout=0.3)

        async def receive():
            await asyncio.sleep(0.05)
            return {"type": "http.request", "body": b"x", "more_body": True}

        with pytest.raises(ProxyError) as info:
            async with reader.body(receive, {}):
                pass
        return info.value, reader.held

    err, held = run(scenario())
    assert err.status == 408 and held == 0


def test_the_process_wide_cap():
    async def scenario():
        reader = intake(cap=1000)
        async with reader.body(receiver(b"a" * 600), {}):
            assert reader.held == 600
            with pytest.raises(ProxyError) as streamed:  # its reading would pass the cap
                async with reader.body(receiver(b"b" * 300, b"c" * 300), {}):
                    pass
            assert reader.held == 600  # what it had read went at once
            with pytest.raises(ProxyError) as declared:  # known too big before a byte is read
                async with reader.body(receiver(), {"content-length": "401"}):
                    pass
            async with reader.body(receiver(b"d" * 400), {"content-length": "400"}) as body:
                assert len(body) == 400 and reader.held == 1000
        assert reader.held == 0
        return streamed.value, declared.value

    for err in run(scenario()):
        assert err.status == 503 and err.headers["connection"] == "close" and "retry-after" in err.headers


def test_too_large_and_client_gone_release_too():
    async def scenario():
        reader = intake(cap=10 * MB, limit=100)
        with pytest.raises(ProxyError) as declared:
            async with reader.body(receiver(b"x"), {"content-length": "101"}):
                pass
        with pytest.raises(ProxyError) as streamed:
            async with reader.body(receiver(b"x" * 60, b"y" * 60), {}):
                pass
        with pytest.raises(ClientGone):
            async with reader.body(receiver(b"x" * 50, then={"type": "http.disconnect"}, complete=False), {}):
                pass
        assert reader.held == 0
        return declared.value, streamed.value

    for err in run(scenario()):
        assert err.status == 413 and err.headers["connection"] == "close"


def test_config_fields():
    proxy = parse("[proxy]\nbody_timeout_s = 12\nmax_buffered_mb = 64\n").proxy
    assert proxy.body_timeout_s == 12 and proxy.max_buffered_bytes == 64 * MB
    default = parse("").proxy
    assert default.body_timeout_s == 30 and default.max_buffered_bytes == 64 * MB
    for bad in ("body_timeout_s = 0", "max_buffered_mb = -1", "max_buffered_mb = 10\nmax_body_mb = 25"):
        with pytest.raises(ConfigError):
            parse(f"[proxy]\n{bad}\n")
