"""The benchmark runs and prints its table (bench/run.py --quick). No timing is asserted: machines
are noisy. What is asserted: every row is there, and no run saw a non-2xx answer, a wrong body,
a socket error or a missing usage line."""

from __future__ import annotations

import asyncio
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

TRANSLATED = ("Anthropic-on-OpenAI", "Responses-on-chat", "Gemini-on-OpenAI")
# Rows of the proxies alone: translated streams (nobody else translates) and ratios between proxies.
PROXY_ONLY_ROWS = (
    *(f"{name} stream CPU s / 1k chunks" for name in TRANSLATED),
    *(f"{name} / pass-through stream, CPU per chunk" for name in TRANSLATED),
    "Redis store: redis-server CPU ms/req",
    "Redis / memory:// non-stream req/s", "Redis / memory:// non-stream CPU per request",
)
ROWS = (
    "non-stream req/s", "non-stream CPU ms/req", "non-stream CPU busy %", "100 KB body req/s",
    "100 KB body CPU ms/req", "stream TTFC p50 ms", "stream added TTFC p50 ms", "stream CPU s / 1k chunks",
    "Anthropic stream TTFC p50 ms", "Anthropic stream added TTFC p50 ms", "Anthropic stream CPU s / 1k chunks",
    "Redis store: non-stream req/s", "Redis store: non-stream CPU ms/req",
    "idle RSS MB", "peak RSS MB", "cold start to first 200 s", *PROXY_ONLY_ROWS,
)
SCENARIOS = ("chat", "chat_100k", "stream", "anthropic_stream")
TRANSLATED_SCENARIOS = ("anthropic_on_openai", "responses_on_chat", "gemini_on_openai")
NUMBER = re.compile(r"[+-]?[0-9][0-9,]*(\.[0-9]+)?×?")


def _table(text: str, first_column_header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_column_header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


@pytest.mark.timeout(150)
def test_quick_benchmark_prints_its_table_without_errors(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(tmp_path)],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]

    scenarios = _table(out, "scenario")
    labels = [row[0] for row in scenarios]
    for name in ROWS:
        assert any(label.startswith(name) for label in labels), f"row {name!r} missing from:\n{out}"
    for row in scenarios:
        assert len(row) == 14, row
        assert NUMBER.fullmatch(row[2]), f"no proxy value in {row}"
        if row[0].startswith(PROXY_ONLY_ROWS):
            continue
        assert row[4] not in ("", "—", "skipped"), f"no ceiling value in {row}"
        assert row[6] not in ("", "—", "skipped"), f"no lean value in {row}"

    runs = _table(out, "run")
    targets = {row[0].split(" / ")[0] for row in runs}
    references = ("direct", "ceiling (Starlette + aiohttp)", "lean (Starlette + httpx)")
    assert {*references, "proxy", "proxy, Redis store"} <= targets

    def scenarios_of(target: str) -> set[str]:
        return {row[0].split(" / ")[1] for row in runs if row[0].startswith(target + " /")}

    for target in references:
        assert scenarios_of(target) == set(SCENARIOS)
    assert scenarios_of("proxy") == {*SCENARIOS, *TRANSLATED_SCENARIOS}
    assert scenarios_of("proxy, Redis store") == {"chat"}
    for row in runs:
        answers, ok, non_2xx, wrong, socket_errors = row[3:8]
        assert int(answers) > 0 and int(ok) == int(answers), row
        assert (non_2xx, wrong, socket_errors) == ("0", "0", "0"), row

    assert "⚠" not in out
    assert "errors: 0 in timed runs" in out and "state store errors: 0" in out
    assert "proxy, Redis store: redis, 0 errors" in out  # /metrics said so: no admission fell back
    assert "machine:" in out and "packages:" in out
    assert (tmp_path / "table.md").exists() and (tmp_path / "results.json").exists()


# -- the stream load driver (bench/loadgen.py) --------------------------------------------------

sys.path.insert(0, str(ROOT / "bench"))
import loadgen


def _bench_module(name: str):
    """A module of bench/ that imports bench/fake_upstream.py: imported without leaving that in
    sys.modules, where it would take the place of tests/fake_upstream.py for the other tests."""
    saved = sys.modules.pop("fake_upstream", None)
    try:
        return importlib.import_module(name)
    finally:
        sys.modules.pop("fake_upstream", None)
        if saved is not None:
            sys.modules["fake_upstream"] = saved


translated = _bench_module("translated")


def test_a_translated_responses_stream_must_repeat_the_ids_it_made_up():
    body = {"model": "gpt-4o-mini", "instructions": "Be brief.", "stream": True, "store": False, "input": "Hi"}
    pattern = translated.responses_on_chat(3, body)
    resp, msg = "resp_" + "0123456789abcdef01234567", "msg_" + "89abcdef0123456789abcdef"
    good = translated.responses_stream(3, body, resp, msg, 1796606925)
    assert pattern.fullmatch(good)
    other = "msg_" + "f" * 24
    at = good.index(msg.encode()) + 1  # a second message id from the second event that names one on
    assert pattern.fullmatch(good[:at] + good[at:].replace(msg.encode(), other.encode(), 1)) is None
    assert pattern.fullmatch(good.replace(b"1796606925", b"1796606926", 1)) is None
    assert pattern.fullmatch(good.replace(b'"store":false', b'"store":true')) is None
    assert pattern.fullmatch(translated.responses_stream(4, body, resp, msg, 1796606925)) is None

STREAM_BODY = b"data: {\"n\":1}\n\n"
CHUNKED_ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                  + b"%x\r\n%s\r\n0\r\n\r\n" % (len(STREAM_BODY), STREAM_BODY))


async def _chunked_server(arrivals: list[tuple[int, float]], delay: float):
    """Answers every request after `delay` s with one SSE event, chunked, keeping the connection
    open; notes which connection each request came on, and when."""
    loop = asyncio.get_running_loop()
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        number = connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                              if line.startswith(b"content-length:"))
                await reader.readexactly(length)
                arrivals.append((number, loop.time()))
                if delay:
                    await asyncio.sleep(delay)
                writer.write(CHUNKED_ANSWER)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _drive_streams(count: int, spread: float, delay: float) -> tuple[loadgen.Result, list[tuple[int, float]]]:
    arrivals: list[tuple[int, float]] = []
    server = await _chunked_server(arrivals, delay)
    async with server:
        port = server.sockets[0].getsockname()[1]
        request = loadgen.build_request("POST", "/v1/chat/completions", f"127.0.0.1:{port}", {}, b"{}")
        result = await asyncio.wait_for(
            loadgen.drive("127.0.0.1", port, request, STREAM_BODY, connections=2, count=count, stream=True,
                          spread=spread), timeout=10)
    return result, arrivals


def test_stream_driver_keeps_its_connections_open_between_chunked_answers():
    result, arrivals = asyncio.run(_drive_streams(6, spread=0.0, delay=0.0))
    assert (result.ok, result.errors, len(result.ttfc)) == (6, 0, 6)
    # Two connections carried all six streams: none was closed and opened again.
    assert {number for number, _ in arrivals} == {1, 2}


def test_stream_driver_spreads_the_first_requests():
    # Each answer takes 0.3 s, so the first connection is still busy when the second starts.
    result, arrivals = asyncio.run(_drive_streams(2, spread=0.4, delay=0.3))
    assert (result.ok, result.errors) == (2, 0)
    first = {}
    for number, at in arrivals:
        first.setdefault(number, at)
    # The second connection waits spread / connections (0.2 s) before its first request; the
    # first starts at once (asyncio.sleep never returns early).
    assert first[2] - first[1] >= 0.1


def test_stream_driver_closes_the_connections_it_opened_again():
    """A server that closes each connection after its first answer: the driver reconnects, and
    when it is done it closes those new connections too (none is left open)."""
    open_now: set[int] = set()
    answered = 0

    async def main():
        nonlocal answered
        opened = 0
        all_four_closed = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal opened, answered
            opened += 1
            number = opened
            open_now.add(number)
            first = True
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    await reader.readexactly(int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0]))
                    answered += 1
                    if first and number <= 2:  # the driver's own first two connections
                        writer.write(CHUNKED_ANSWER.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1))
                        break
                    writer.write(CHUNKED_ANSWER)
                    first = False
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            writer.close()
            open_now.discard(number)
            if opened == 4 and not open_now:
                all_four_closed.set()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            request = loadgen.build_request("POST", "/v1/chat/completions", f"127.0.0.1:{port}", {}, b"{}")
            result = await asyncio.wait_for(
                loadgen.drive("127.0.0.1", port, request, STREAM_BODY, connections=2, count=6, stream=True),
                timeout=10)
            try:  # a connection the driver left open never ends its handler
                await asyncio.wait_for(all_four_closed.wait(), timeout=5)
            except TimeoutError:
                pass
        return result, opened

    result, opened = asyncio.run(main())
    assert (result.ok, result.errors) == (6, 0) and answered == 6
    assert opened == 4  # two closed by the server after one answer each, two opened again
    assert not open_now
