"""Passthrough bodies (a client's own provider key) larger than a chunk go upstream as they arrive
(SPEC §9): the proxy never holds them whole, and they keep the body deadline and size limit."""

from __future__ import annotations

import asyncio
import hashlib
import json

import httpx
import openai
import pytest

import servers

CONFIG = """
[proxy]
body_timeout_s = 2
max_body_mb = 4
[passthrough]
openai = "{up}/v1"
[groups.default]
multiplier = 1
[[tokens]]
name = "frank"
key = "sk-ax-frank"
group = "default"
[[channels]]
name = "oa"
type = "openai"
base_url = "{up}/v1"
keys = ["oa-key"]
models = ["gpt-4o", "whisper-1"]
"""

PROVIDER_KEY = "sk-provider-own-key-0042"


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    server = servers.proxy(CONFIG.format(up=upstream.url), tmp_path_factory.mktemp("pt-bodies"))
    yield server
    server.stop()
    assert "Traceback" not in server.stderr()


def test_a_large_json_body_reaches_the_upstream_byte_for_byte(proxy, received):
    document = "lorem ipsum dolor " * 20_000  # ~360 KB
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=PROVIDER_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": document}])
    assert raw.parse().choices[0].message.content
    got = received.last()
    assert got["credential"] == PROVIDER_KEY and json.loads(got["body"])["messages"][0]["content"] == document
    record = servers.usage_record(proxy, raw.headers["x-request-id"])
    assert record["passthrough"] and record["model"] == "gpt-4o" and record["status"] == 200


def test_a_large_upload_goes_through_and_its_model_is_recorded(proxy, received):
    audio = bytes(range(256)) * 2000  # 512 KB
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=PROVIDER_KEY, max_retries=0)
    raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=("a.wav", audio, "audio/wav"))
    assert hashlib.sha256(audio).hexdigest() in raw.parse().text
    assert servers.usage_record(proxy, raw.headers["x-request-id"])["model"] == "whisper-1"


async def trickle(url: str, key: str, size: int, pieces: int, gap_s: float, metrics_every: int = 1) -> tuple[bytes, int]:
    """POST a chat body of `size` bytes in `pieces`, `gap_s` apart, reading the proxy's held body
    bytes meanwhile; (the answer's first bytes, the most body bytes the proxy held)."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * size}]}).encode()
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
                 f"authorization: Bearer {key}\r\ncontent-length: {len(body)}\r\n\r\n".encode())
    answer = asyncio.create_task(reader.read(4096))  # read as it comes: an early answer is followed by a close
    step, most = -(-len(body) // pieces), 0
    async with httpx.AsyncClient(timeout=10) as http:
        for i in range(pieces):
            try:
                writer.write(body[i * step:(i + 1) * step])
                await writer.drain()
            except ConnectionError:
                break  # the proxy answered and closed before the body was over (a 408, a 413)
            if i % metrics_every == 0:
                text = (await http.get(f"{url}/metrics")).text
                held = next(line for line in text.splitlines() if line.startswith("aurax_request_body_bytes"))
                most = max(most, int(float(held.split()[-1])))
            await asyncio.sleep(gap_s)
    head = await asyncio.wait_for(answer, 20)
    writer.close()
    return head, most


def test_a_slow_passthrough_upload_is_never_held_whole(proxy):
    head, most = asyncio.run(trickle(proxy.url, PROVIDER_KEY, 1_500_000, 30, 0.02))
    assert head.startswith(b"HTTP/1.1 200")
    assert most <= 256 * 1024  # a chunk or so in hand, never the 1.5 MB
    # A proxy token's request is read whole (its body is routed and billed): held until it is.
    head, most = asyncio.run(trickle(proxy.url, "sk-ax-frank", 1_500_000, 30, 0.02))
    assert head.startswith(b"HTTP/1.1 200") and most > 1_000_000


def test_a_passthrough_body_slower_than_the_deadline_is_408(proxy):
    head, _ = asyncio.run(trickle(proxy.url, PROVIDER_KEY, 400_000, 8, 0.5, metrics_every=100))
    assert head.startswith(b"HTTP/1.1 408") and b"did not arrive within 2 s" in head


def test_a_passthrough_body_over_the_limit_is_413(proxy, received):
    received.clear()

    def chunks():
        for _ in range(50):
            yield b"x" * 100_000  # 5 MB without a length: chunked

    response = httpx.post(f"{proxy.url}/v1/chat/completions", content=chunks(), timeout=20,
                          headers={"authorization": f"Bearer {PROVIDER_KEY}", "content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
