"""On a real uvicorn: deadlines for request headers (relay.protocol) and bodies (relay.intake)."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

import servers

CONFIG = """
[proxy]
body_timeout_s = 0.6
max_body_mb = 1
max_buffered_mb = 1
[passthrough]
anthropic = "{upstream}"
[groups.default]
multiplier = 1
[[tokens]]
name = "alice"
key = "sk-ax-alice"
[[channels]]
name = "fake"
type = "openai"
base_url = "{upstream}/v1"
keys = ["sk-test-1"]
models = ["gpt-4o-mini"]
"""
HEADER_TIMEOUT_S = 0.5
CHAT = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    server = servers.proxy(CONFIG.format(upstream=upstream.url), tmp_path_factory.mktemp("protocol"),
                           env={"AURAX_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S)},
                           http="relay.protocol:HttpToolsWithDeadlines")
    yield server
    server.stop()


def received(sock: socket.socket, so_far: bytes) -> bytes:
    """The next bytes; a connection closed first fails the test (a loop on b"" would never end)."""
    chunk = sock.recv(65536)
    assert chunk, f"the connection closed after {so_far[:300]!r}"
    return chunk


def connect(proxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    sock.settimeout(10)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the socket's timeout bounds it)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def request(path: str, body: bytes = b"", key: str = "sk-ax-alice", extra: bytes = b"") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer {key}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n").encode() + extra + b"\r\n" + body


def test_a_silent_connection_is_closed_after_the_header_deadline(proxy):
    sock = connect(proxy)
    started = time.monotonic()
    assert read_until_closed(sock) == b""  # closed without a word
    assert HEADER_TIMEOUT_S * 0.9 <= time.monotonic() - started < HEADER_TIMEOUT_S + 2


def test_headers_sent_a_byte_at_a_time_meet_the_same_deadline(proxy):
    sock = connect(proxy)
    started = time.monotonic()
    head = request("/v1/chat/completions", CHAT)
    with pytest.raises((BrokenPipeError, ConnectionResetError)):
        for byte in head:  # never completes: one byte every 50 ms is ~9 s of headers
            sock.send(bytes([byte]))
            time.sleep(0.05)
    assert HEADER_TIMEOUT_S * 0.9 <= time.monotonic() - started < HEADER_TIMEOUT_S + 2


def test_requests_on_a_kept_alive_connection_still_work(proxy):
    sock = connect(proxy)
    for _ in range(2):
        sock.sendall(request("/v1/chat/completions", CHAT))
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += received(sock, answer)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(body) < length:
            body += received(sock, body)
        time.sleep(HEADER_TIMEOUT_S * 1.5)  # idle between requests is the keep-alive timeout's, not this one
    sock.close()


def test_an_answer_given_before_the_body_ends_closes_the_connection(proxy):
    sock = connect(proxy)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: proxy\r\ncontent-length: 100000\r\n\r\n" + b"x" * 10)
    started = time.monotonic()
    answer = read_until_closed(sock)  # closed right after the answer, not when the body would end
    assert answer.startswith(b"HTTP/1.1 200")
    assert time.monotonic() - started < 2  # (uvicorn alone: when its keep-alive timeout, 5 s, ends)


def test_a_slow_body_gets_408_in_the_clients_dialect_and_is_closed(proxy):
    sock = connect(proxy)
    body = b'{"model":"claude-x","max_tokens":5,"messages":[]}'
    sock.sendall(request("/v1/messages", body, key="sk-ant-own", extra=b"anthropic-version: 2023-06-01\r\n")[:-10])
    started = time.monotonic()
    answer = read_until_closed(sock)
    assert 0.5 <= time.monotonic() - started < 3
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower()
    error = json.loads(payload)
    assert error["type"] == "error" and error["error"]["type"] == "timeout_error"
    assert "did not arrive within 0.6 s" in error["error"]["message"]


def test_bodies_past_the_process_cap_get_503_at_once(proxy):
    holder = connect(proxy)
    big = b'{"model":"gpt-4o-mini","pad":"' + b"x" * 700_000 + b'"}'
    holder.sendall(request("/v1/chat/completions", big)[:-1])  # all but its last byte: held
    time.sleep(0.2)
    started = time.monotonic()
    refused = httpx.post(f"{proxy.url}/v1/chat/completions", content=big,
                         headers={"authorization": "Bearer sk-ax-alice", "content-type": "application/json"},
                         timeout=10)
    assert refused.status_code == 503 and time.monotonic() - started < 0.5
    assert refused.json()["error"]["code"] == "server_busy" and refused.headers["retry-after"] == "1"
    assert read_until_closed(holder).startswith(b"HTTP/1.1 408")  # the holder runs out of time
    ok = httpx.post(f"{proxy.url}/v1/chat/completions", content=CHAT,
                    headers={"authorization": "Bearer sk-ax-alice", "content-type": "application/json"}, timeout=10)
    assert ok.status_code == 200  # its bytes were released


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_head_past_its_limit_is_refused_not_kept(proxy):
    before = rss_mb(proxy.proc.pid)
    sock = connect(proxy)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: proxy\r\nx-big: ")
    answer = b""
    try:
        for _ in range(64):  # 64 MB of one header, if nobody stopped it (uvicorn alone keeps it all)
            sock.sendall(b"a" * 1024 * 1024)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        answer = read_until_closed(sock)
    except ConnectionResetError:
        pass  # the 431 may be lost to the reset of a connection that was still sending
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431")
    assert rss_mb(proxy.proc.pid) - before < 16
    small = connect(proxy)  # a head within the limit, in many small reads, is fine
    head = b"GET /healthz HTTP/1.1\r\nhost: proxy\r\n" + b"x-pad: " + b"p" * 30000 + b"\r\n\r\n"
    for i in range(0, len(head), 1000):
        small.sendall(head[i:i + 1000])
    assert small.recv(65536).startswith(b"HTTP/1.1 200")
