"""Failover nobody notices (SPEC §6, §9), end to end: faults injected through the fake upstream's
keys, the proxy a real uvicorn process, the official SDKs as clients."""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import re
import os
import signal
import socket
import subprocess
import sys
import time

import aiohttp
import anthropic
import httpx
import openai
import pytest

import servers

CONFIG = """
[proxy]
max_attempts = 3
cooldown_s = 30
connect_timeout_s = 0.3
first_byte_timeout_s = 1.0
idle_timeout_s = 1.0
keepalive_s = 0.2
sticky = true
[groups.default]
multiplier = 1
[[tokens]]
name = "alice"
key = "sk-ax-alice"
group = "default"
{channels}
"""


def channel(name: str, keys: list[str], models: list[str], priority: int = 0, base: str = "{up}/v1",
            kind: str = "openai", weight: float = 1) -> str:
    return f"""
[[channels]]
name = "{name}"
type = "{kind}"
base_url = "{base}"
keys = {json.dumps(keys)}
models = {json.dumps(models)}
priority = {priority}
weight = {weight}
"""


CHANNELS = "".join([
    channel("p-500", ["fail-500"], ["m-500"], 10),
    channel("p-429", ["fail-429"], ["m-429"], 10),
    channel("p-401", ["fail-401"], ["m-401"], 10),
    channel("p-400", ["fail-400"], ["m-400"], 10),
    channel("p-conn", ["conn-key"], ["m-conn", "m-allnet"], 10, base="http://127.0.0.1:{closed}/v1"),
    channel("p-hole", ["hole-key"], ["m-hole"], 10, base="http://127.0.0.1:{hole}/v1"),
    channel("p-slow", ["delay-3000"], ["m-slow", "m-alltime"], 10),
    channel("multi", ["fail-500-first", "second-key"], ["m-keys"], 10),
    channel("a1", ["fail-503-a"], ["m-all"], 10),
    channel("a2", ["fail-502-b"], ["m-all"], 5),
    channel("a3", ["fail-500-c"], ["m-all"], 1),
    channel("p-cut", ["cut"], ["m-cut"], 10),
    channel("p-stall", ["stall-2500"], ["m-stall"], 10),
    channel("p-pause", ["stall-600"], ["m-pause"], 10),
    channel("p-think", ["delay-600"], ["m-think"], 10),
    channel("p-hang", ["hang"], ["m-hang"], 10),
    channel("p-hangstream", ["hangstream"], ["m-hangstream"], 10),
    channel("claude-flaky", ["fail-529"], ["claude-flaky"], 10, base="{up}", kind="anthropic"),
    channel("claude-cut", ["cut-a"], ["claude-cut"], 10, base="{up}", kind="anthropic"),
    channel("gemini-cut", ["cut-g"], ["gemini-cut"], 10, base="{up}", kind="gemini"),
    channel("claude-ok", ["ant-key"], ["claude-flaky"], 0, base="{up}", kind="anthropic"),
    channel("s1", ["s1-a", "s1-b"], ["m-sticky"], 0, weight=1),
    channel("s2", ["s2-a", "s2-b"], ["m-sticky"], 0, weight=1),
    channel("backup", ["backup-key"], ["m-500", "m-429", "m-401", "m-400", "m-conn", "m-hole", "m-slow",
                                       "m-cut"], 0),
])


@pytest.fixture(scope="module")
def ports():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens here: connection refused
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    filler = socket.create_connection(hole.getsockname())  # the backlog is full: connects hang
    yield {"closed": closed_port, "hole": hole.getsockname()[1]}
    filler.close()
    hole.close()


def config_text(upstream, ports, extra: str = "") -> str:
    text = CONFIG.format(channels=CHANNELS) + extra
    return text.replace("{up}", upstream.url).replace("{closed}", str(ports["closed"])).replace(
        "{hole}", str(ports["hole"]))


@pytest.fixture(scope="module")
def proxy(upstream, ports, tmp_path_factory):
    server = servers.proxy(config_text(upstream, ports), tmp_path_factory.mktemp("failover"))
    yield server
    assert "Traceback" not in server.stderr()
    server.stop()


def oai(proxy, key="sk-ax-alice") -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0, timeout=20)


def chat(proxy, model: str, **kw):
    return oai(proxy).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}], **kw)


def record_of(proxy, raw) -> dict:
    return servers.usage_record(proxy, raw.headers["x-request-id"])


@pytest.mark.parametrize("model, first", [("m-500", "fail-500"), ("m-429", "fail-429"), ("m-401", "fail-401")])
def test_failover_to_the_next_channel(proxy, received, model, first):
    raw = chat(proxy, model)
    assert raw.parse().choices[0].message.content == "echo: hi"
    assert [r["credential"] for r in received.all()] == [first, "backup-key"]
    record = record_of(proxy, raw)
    assert record["attempts"] == 2 and record["channel"] == "backup" and record["status"] == 200


def test_failed_key_rests_and_is_skipped_next_time(proxy, received):
    chat(proxy, "m-500")
    received.clear()
    raw = chat(proxy, "m-500")
    assert [r["credential"] for r in received.all()] == ["backup-key"]  # fail-500 is resting
    assert record_of(proxy, raw)["attempts"] == 1


def test_next_key_of_the_same_channel_first(proxy, received):
    raw = chat(proxy, "m-keys")
    credentials = [r["credential"] for r in received.all()]
    assert credentials in (["fail-500-first", "second-key"], ["second-key"])
    assert record_of(proxy, raw)["channel"] == "multi"


def test_connect_error_fails_over(proxy, received):
    raw = chat(proxy, "m-conn")
    assert raw.parse().choices[0].message.content == "echo: hi"
    assert record_of(proxy, raw)["attempts"] == 2


def test_client_errors_are_not_retried(proxy, received):
    with pytest.raises(openai.BadRequestError):
        chat(proxy, "m-400")
    assert [r["credential"] for r in received.all()] == ["fail-400"]


def test_all_failed_gives_the_last_status_and_message(proxy, received):
    with pytest.raises(openai.InternalServerError) as info:
        chat(proxy, "m-all")
    assert info.value.status_code == 500  # the third and last attempt's status
    assert [r["credential"] for r in received.all()] == ["fail-503-a", "fail-502-b", "fail-500-c"]
    assert "fail-500-c" not in json.dumps(info.value.body)


def test_all_failed_network_is_502(proxy, received):
    response = httpx.post(f"{proxy.url}/v1/chat/completions", headers={"authorization": "Bearer sk-ax-alice"},
                          json={"model": "m-allnet", "messages": []}, timeout=20)
    assert response.status_code == 502 and "upstream could not be reached" in response.json()["error"]["message"]


def test_each_timeout_applies_on_its_own(proxy, received):
    # connect: a listener whose backlog is full never completes the handshake
    started = time.monotonic()
    raw = chat(proxy, "m-hole")
    assert raw.parse().choices[0].message.content == "echo: hi"
    assert time.monotonic() - started < 1.0  # connect_timeout_s = 0.3, well before first_byte_timeout_s
    # first byte: the upstream takes 3 s to answer, the limit is 1 s
    started = time.monotonic()
    raw = chat(proxy, "m-slow")
    assert raw.parse().choices[0].message.content == "echo: hi" and record_of(proxy, raw)["attempts"] == 2
    assert 1.0 <= time.monotonic() - started < 2.5
    response = httpx.post(f"{proxy.url}/v1/chat/completions", headers={"authorization": "Bearer sk-ax-alice"},
                          json={"model": "m-alltime", "messages": []}, timeout=20)
    assert response.status_code == 504 and "timed out" in response.json()["error"]["message"]


def test_idle_timeout_ends_the_stream_with_an_error_event(proxy, received):
    response = httpx.post(f"{proxy.url}/v1/chat/completions", headers={"authorization": "Bearer sk-ax-alice"},
                          json={"model": "m-stall", "stream": True, "messages": [{"role": "user", "content": "x"}]},
                          timeout=20)
    body = response.text
    assert body.startswith("data: ")
    assert body.count(": ping") >= 3  # keep-alives while silent (keepalive_s = 0.2)
    last = body.strip().split("\n\n")[-1]
    assert json.loads(last[len("data: "):])["error"]["message"] == "The upstream went silent for 1 s"
    assert "[DONE]" not in body
    assert len(received.all()) == 1  # after the first byte there is no second chance


def test_keepalive_pings_do_not_disturb_the_sdk(proxy, received):
    with oai(proxy).chat.completions.stream(model="m-pause", messages=[{"role": "user", "content": "hello"}]) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.content == "echo: hello"
    raw = httpx.post(f"{proxy.url}/v1/chat/completions", headers={"authorization": "Bearer sk-ax-alice"},
                     json={"model": "m-pause", "stream": True, "messages": [{"role": "user", "content": "x"}]},
                     timeout=20).text
    assert ": ping" in raw and raw.endswith("data: [DONE]\n\n")


def test_pings_before_the_first_byte_of_a_thinking_upstream(proxy, received):
    with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", headers={"authorization": "Bearer sk-ax-alice"},
                      json={"model": "m-think", "stream": True, "messages": [{"role": "user", "content": "x"}]},
                      timeout=20) as response:
        assert response.status_code == 200
        chunks = response.iter_text()
        first = next(chunks)
        rest = "".join(chunks)
    assert first.startswith(": ping")  # sent while the upstream had not answered at all
    assert rest.endswith("data: [DONE]\n\n")


def test_mid_stream_cut_is_an_error_event_and_never_retried(proxy, received):
    with pytest.raises(openai.APIError) as info:
        list(oai(proxy).chat.completions.create(model="m-cut", stream=True,
                                                messages=[{"role": "user", "content": "x"}]))
    assert "broke off" in str(info.value) or "ended before" in str(info.value)
    assert [r["credential"] for r in received.all()] == ["cut"]


def test_mid_stream_failure_in_each_dialect(proxy, received):
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ax-alice", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as info:
        with client.messages.stream(model="claude-cut", max_tokens=50,
                                    messages=[{"role": "user", "content": "hello there"}]) as stream:
            stream.get_final_message()
    assert "broke off" in str(info.value)
    raw = httpx.post(f"{proxy.url}/v1/messages", headers={"x-api-key": "sk-ax-alice", "anthropic-version": "2023-06-01"},
                     json={"model": "claude-cut", "max_tokens": 50, "stream": True,
                           "messages": [{"role": "user", "content": "hello there"}]}, timeout=20).text
    assert raw.rstrip().split("\n\n")[-1].startswith("event: error\ndata: {\"type\":\"error\"")
    sse = httpx.post(f"{proxy.url}/v1beta/models/gemini-cut:streamGenerateContent?alt=sse",
                     headers={"x-goog-api-key": "sk-ax-alice"}, timeout=20,
                     json={"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}).text
    assert json.loads(re.split(r"\r?\n\r?\n", sse.strip())[-1][len("data: "):])["error"]["code"] == 502
    array = httpx.post(f"{proxy.url}/v1beta/models/gemini-cut:streamGenerateContent",
                       headers={"x-goog-api-key": "sk-ax-alice"}, timeout=20,
                       json={"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}).json()
    assert array[-1]["error"]["status"] == "UNAVAILABLE" and "candidates" in array[0]
    assert all(r["credential"].startswith("cut") for r in received.all())  # never retried


def test_anthropic_client_gets_failover_too(proxy, received):
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ax-alice", max_retries=0)
    with client.messages.stream(model="claude-flaky", max_tokens=50,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        message = stream.get_final_message()
    assert message.content[0].text == "echo: hi"
    assert [r["credential"] for r in received.all()] == ["fail-529", "ant-key"]


def test_multipart_upload_is_resent_intact(proxy, received, upstream, tmp_path):
    extra = channel("w-bad", ["fail-503-w"], ["whisper-1"], 10) + channel("w-good", ["w-key"], ["whisper-1"], 0)
    text = config_text(upstream, {"closed": 1, "hole": 1}, extra)
    with servers.proxy(text, tmp_path) as other:
        audio = bytes(range(256)) * 300
        result = oai(other).audio.transcriptions.create(model="whisper-1", file=("a.mp3", audio, "audio/mpeg"))
    assert f"transcribed {len(audio)} bytes" in result.text
    first, second = received.all()
    assert (first["credential"], second["credential"]) == ("fail-503-w", "w-key")
    assert base64.b64decode(first["body_b64"]) == base64.b64decode(second["body_b64"])


def test_client_abort_cancels_the_upstream_request(upstream, ports, tmp_path, received):
    """`hang` never answers, `hangstream` stops after one event; the client leaves; the upstream
    must see the proxy leave too, at once (the proxy's own timeouts are far away here)."""
    text = config_text(upstream, ports).replace("first_byte_timeout_s = 1.0", "first_byte_timeout_s = 60").replace(
        "idle_timeout_s = 1.0", "idle_timeout_s = 60")
    with servers.proxy(text, tmp_path) as proxy:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{proxy.url}/v1/chat/completions", timeout=httpx.Timeout(10, read=0.3),
                       headers={"authorization": "Bearer sk-ax-alice"},
                       json={"model": "m-hang", "messages": [{"role": "user", "content": "x"}]})
        gone = time.monotonic()
        received.wait_event("disconnected", timeout=1.0)
        assert time.monotonic() - gone < 1.0
        received.clear()
        with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", timeout=10,
                          headers={"authorization": "Bearer sk-ax-alice"},
                          json={"model": "m-hangstream", "stream": True,
                                "messages": [{"role": "user", "content": "x"}]}) as response:
            assert next(response.iter_lines()).startswith("data: ")
        gone = time.monotonic()
        received.wait_event("disconnected", timeout=1.0)
        assert time.monotonic() - gone < 1.0
        records = servers.wait_records(proxy, lambda r: r["model"] in ("m-hang", "m-hangstream"), count=2)
        assert [r["status"] for r in records] == [499, 499]


def test_sticky_conversations_and_spread(proxy, received):
    client, order = oai(proxy), []
    for conversation in range(24):
        messages = [{"role": "system", "content": f"system {conversation}"}, {"role": "user", "content": "start"}]
        for turn in range(3):
            client.chat.completions.create(model="m-sticky", messages=messages)
            order.append(conversation)
            messages = messages + [{"role": "assistant", "content": "ok"}, {"role": "user", "content": f"t{turn}"}]
    homes = collections.defaultdict(set)
    for conversation, record in zip(order, received.all(), strict=True):
        homes[conversation].add(record["credential"])
    assert all(len(keys) == 1 for keys in homes.values())  # each conversation stayed on its key
    used = collections.Counter(next(iter(keys)) for keys in homes.values())
    assert len(used) >= 3 and max(used.values()) <= 16  # and conversations spread over the keys


async def _open_silent_streams(proxy_url: str, n: int) -> tuple[aiohttp.ClientSession, list]:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    responses = []

    async def one():
        response = await session.post(f"{proxy_url}/v1/chat/completions",
                                      headers={"authorization": "Bearer sk-ax-alice"},
                                      json={"model": "m-silent", "stream": True, "messages": []})
        assert response.status == 200
        while not (await response.content.readuntil(b"\n\n")).startswith(b"data: "):
            pass  # keep-alive pings until the upstream's first event; then silence
        responses.append(response)

    await asyncio.gather(*(one() for _ in range(n)))
    return session, responses


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_dead_upstream_costs_only_its_own_requests(upstream, ports, tmp_path):
    silent = servers.silent_upstream(tmp_path)
    extra = channel("silent", ["s-key"], ["m-silent"], 0, base=silent.url + "/v1")
    text = config_text(upstream, ports, extra).replace("idle_timeout_s = 1.0", "idle_timeout_s = 60").replace(
        "keepalive_s = 0.2", "keepalive_s = 15").replace("first_byte_timeout_s = 1.0", "first_byte_timeout_s = 30").replace(
        "connect_timeout_s = 0.3", "connect_timeout_s = 10")  # 500 connects at once take a moment
    with silent, servers.proxy(text, tmp_path) as proxy:
        before = rss_mb(proxy.proc.pid)

        async def scenario():
            session, responses = await _open_silent_streams(proxy.url, 500)
            try:
                assert httpx.get(f"{silent.url}/_open", timeout=10).text == "500"
                loop = asyncio.get_running_loop()
                started = loop.time()
                async with session.post(f"{proxy.url}/v1/chat/completions",
                                        headers={"authorization": "Bearer sk-ax-alice"},
                                        json={"model": "m-500", "messages": [{"role": "user", "content": "hi"}]}) as r:
                    assert r.status == 200 and (await r.json())["choices"][0]["message"]["content"] == "echo: hi"
                healthy_s = loop.time() - started
                peak = rss_mb(proxy.proc.pid)
            finally:
                for response in responses:
                    response.close()
                await session.close()
            return healthy_s, peak

        healthy_s, peak = asyncio.run(scenario())
        assert healthy_s < 2.0  # not queued behind the 500 stuck streams
        assert peak - before < 100  # bounded: well under a megabyte per open stream
        deadline = time.monotonic() + 5
        while httpx.get(f"{silent.url}/_open", timeout=10).text != "0":
            assert time.monotonic() < deadline, "the proxy kept upstream streams of gone clients open"
            time.sleep(0.05)


def test_sigterm_lets_open_streams_finish_then_exits_0(upstream, ports, tmp_path, received):
    proxy = servers.proxy(config_text(upstream, ports), tmp_path)
    with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", timeout=20,
                      headers={"authorization": "Bearer sk-ax-alice", "x-fake-chunks": "8", "x-fake-gap-ms": "120"},
                      json={"model": "m-500", "stream": True, "messages": [{"role": "user", "content": "drain me"}]}
                      ) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
        proxy.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while True:  # new connections are refused once the server stops listening
            try:
                socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()
            except OSError:
                break
            assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
            time.sleep(0.02)
        rest = [line for line in lines if line]
    assert rest[-1] == "data: [DONE]"
    text = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                   for line in rest if line.startswith("data: {"))
    assert text.endswith("drain me")
    assert proxy.proc.wait(timeout=10) == 0
    proxy.stop()


def test_what_an_orchestrator_sees_after_sigterm(upstream, ports, tmp_path):
    """README, Operations: no /readyz 503 while draining; idle connections close, new ones are refused.

    uvicorn binds its own socket here, as in the image: with an inherited one (`--fd`, which
    servers.Server uses) the listener stays open until the process exits."""
    config = tmp_path / "upstreams.toml"
    config.write_text(config_text(upstream, ports))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = open(tmp_path / "out", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port),
                             "--loop", "uvloop", "--http", "httptools"], cwd=servers.ROOT, stdout=out,
                            stderr=subprocess.STDOUT, env={**os.environ, "AURAX_CONFIG": str(config)})
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                idle = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "out").read_text()
                time.sleep(0.05)
        idle.sendall(b"GET /readyz HTTP/1.1\r\nhost: proxy\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):  # the whole answer (a JSON object)
            chunk = idle.recv(65536)
            assert chunk, answer  # (closed early: fail, not loop on b"" forever)
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")  # the connection is kept alive for the next probe
        with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions", timeout=20,
                          headers={"authorization": "Bearer sk-ax-alice", "x-fake-chunks": "6", "x-fake-gap-ms": "150"},
                          json={"model": "m-500", "stream": True, "messages": [{"role": "user", "content": "x"}]}
                          ) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
            proc.send_signal(signal.SIGTERM)
            assert idle.recv(65536) == b""  # the kept-alive connection is closed, with no 503 on it
            with pytest.raises(ConnectionRefusedError):  # and the listener is gone
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            assert [line for line in lines if line][-1] == "data: [DONE]"  # the open stream finishes
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        out.close()


def test_sigterm_ends_streams_that_outlast_the_grace_period(upstream, ports, tmp_path):
    text = config_text(upstream, ports).replace("sticky = true", "sticky = true\ndrain_s = 0.3")
    proxy = servers.proxy(text, tmp_path)
    with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", timeout=20,
                      headers={"authorization": "Bearer sk-ax-alice"},
                      json={"model": "m-hangstream", "stream": True,
                            "messages": [{"role": "user", "content": "x"}]}) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
        started = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        rest = [line for line in lines if line.startswith("data: ")]
    assert time.monotonic() - started < 5
    assert json.loads(rest[-1][6:])["error"]["message"] == "The proxy is shutting down; retry the request"
    assert proxy.proc.wait(timeout=10) == 0
    proxy.stop()
