"""What the benchmark sends: the proxy's config, the scenarios, the load profiles, the headers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import fake_upstream as fake
import translated

TOKEN = "sk-ax-bench-0123456789abcdef0123456789abcdef"
OPENAI_KEYS = ("sk-bench-upstream-openai-1", "sk-bench-upstream-openai-2", "sk-bench-upstream-openai-backup")
ANTHROPIC_KEY = "sk-ant-bench-upstream"

# Every feature on: token auth with a model allow-list, limits and a balance (far above the
# load, so every request is admitted, but each one reserves and settles), two priorities of
# channels and two keys (sticky routing hashes each conversation), prices so every request is
# billed, usage lines on stdout. The fleet state is in `state_url`: memory:// or a redis-server.
CONFIG = """\
[proxy]
token_prefix = "sk-ax-"
drain_s = 1

[passthrough]

[groups.default]
multiplier = 1.5

[[tokens]]
name = "bench"
key = "{token}"
group = "default"
models = ["gpt-4o*", "claude-*"]
rpm = 100000000
tpm = 1000000000000
balance_usd = 10000

[[tokens]]
name = "other"
key = "sk-ax-bench-other-token"
group = "default"

[[channels]]
name = "openai"
type = "openai"
base_url = "http://127.0.0.1:{port}/v1"
keys = ["{k1}", "{k2}"]
models = ["gpt-4o", "gpt-4o-mini"]
groups = ["default"]
priority = 10

[[channels]]
name = "openai-backup"
type = "openai"
base_url = "http://127.0.0.1:{port}/v1"
keys = ["{k3}"]
models = ["gpt-4o-mini"]
groups = ["default"]
priority = 0

[[channels]]
name = "anthropic"
type = "anthropic"
base_url = "http://127.0.0.1:{port}"
keys = ["{ak}"]
models = ["claude-*"]
groups = ["default"]

[prices]
"gpt-4o-mini" = {{ input = 0.15, cached_input = 0.075, output = 0.6 }}
"claude-haiku-4-5" = {{ input = 1, cached_input = 0.1, output = 5 }}

[state]
url = "{state_url}"
# A store call slower than timeout_ms counts as an outage and the request is admitted on local
# counts: the default 50 ms is met on a quiet machine, but a busy one (other processes on the
# load CPU, where the redis-server runs) would then measure the fallback instead of Redis.
timeout_ms = 1000
"""

# What an official SDK sends besides the credential.
SDK_HEADERS = {
    "content-type": "application/json",
    "accept": "application/json",
    "user-agent": "OpenAI/Python 1.99.0",
    "x-stainless-lang": "python",
    "x-stainless-package-version": "1.99.0",
    "x-stainless-os": "Linux",
    "x-stainless-arch": "x64",
    "x-stainless-runtime": "CPython",
    "x-stainless-runtime-version": "3.12.8",
    "x-stainless-retry-count": "0",
}

# What google-genai sends instead (it has no x-stainless headers).
GENAI_USER_AGENT = "google-genai-sdk/1.33.0 gl-python/3.12.8"


@dataclass(frozen=True)
class Profile:
    quick: bool
    duration: float  # seconds per timed run (wrk; the asyncio client when `count` is None)
    count: int | None  # the asyncio client in quick mode: this many requests instead
    warmup: float
    connections: int
    stream_concurrency: int
    stream_chunks: int
    stream_gap_ms: float
    stream_duration: float | None
    stream_count: int | None
    cold_starts: int
    idle_wait: float
    # Every target runs every scenario this many times, the targets taking turns within each
    # round; the table gives medians and, for ratios, the median of the same round's ratios.
    rounds: int = 1


FULL = Profile(False, 5, None, 2, 50, 100, 50, 10, 5, None, 3, 1.0, rounds=3)
# Quick streams: enough of them (40 × 5 chunks) for a CPU time of a few clock ticks, so a
# translated stream's ratio to the pass-through one has a denominator.
QUICK = Profile(True, 1, 300, 0, 10, 5, 5, 2, None, 40, 1, 0.2)


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    path: str
    dialect: str  # the client's: openai (chat and Responses), anthropic or gemini
    body: bytes
    expected: bytes | re.Pattern[bytes]  # the answer's exact bytes, or a pattern it must match whole
    stream: bool = False
    chunks: int = 0
    gap_ms: float = 0.0
    # A client of another dialect than its channel's: only the proxies run it (direct, the
    # references, nginx and Portkey cannot translate).
    translated: bool = False


def _chat_body(content: str, **extra) -> bytes:
    return json.dumps({
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": content}],
        "temperature": 0.7, **extra,
    }, separators=(",", ":")).encode()


def _big_chat_body(size: int) -> bytes:
    """A chat request of exactly `size` bytes: a long document in the user message."""
    words = ("The relay sits on every request of its users, so its overhead is its price. "
             "Latency, CPU and memory are what the benchmark measures; \"quotes\" and\ttabs too. ")
    text = words * (size // len(words) + 1)
    # Each character is at least one byte of JSON: cutting the excess in characters lands at or below.
    text = text[: len(text) - (len(_chat_body(text)) - size)]
    text += " " * (size - len(_chat_body(text)))
    body = _chat_body(text)
    assert len(body) == size, (len(body), size)
    return body


def scenarios(p: Profile) -> list[Scenario]:
    anthropic_body = json.dumps({
        "model": "claude-haiku-4-5", "max_tokens": 1024, "stream": True,
        "system": "You are a helpful assistant.",
        "messages": [{"role": "user", "content": "Say this is a test!"}],
    }, separators=(",", ":")).encode()
    return [
        Scenario("chat", "non-stream", "/v1/chat/completions", "openai", _chat_body("Say this is a test!"),
                 fake.CHAT_COMPLETION),
        Scenario("chat_100k", "non-stream, 100 KB body", "/v1/chat/completions", "openai",
                 _big_chat_body(100 * 1024), fake.CHAT_COMPLETION),
        Scenario("stream", "OpenAI stream", "/v1/chat/completions", "openai",
                 _chat_body("Say this is a test!", stream=True),
                 # The proxy asks the upstream for usage and must drop that chunk again.
                 fake.expected_stream_body("openai", p.stream_chunks, include_usage=False),
                 stream=True, chunks=p.stream_chunks, gap_ms=p.stream_gap_ms),
        Scenario("anthropic_stream", "Anthropic stream", "/v1/messages", "anthropic", anthropic_body,
                 fake.expected_stream_body("anthropic", p.stream_chunks),
                 stream=True, chunks=p.stream_chunks, gap_ms=p.stream_gap_ms),
        *translated_scenarios(p),
    ]


def translated_scenarios(p: Profile) -> list[Scenario]:
    """Streams of clients of three other dialects, all on the OpenAI chat channel (gpt-4o-mini):
    what they cost is compared with the OpenAI stream's, which the proxy passes through."""
    shape = {"stream": True, "chunks": p.stream_chunks, "gap_ms": p.stream_gap_ms, "translated": True}
    system, prompt = "You are a helpful assistant.", "Say this is a test!"
    anthropic = {"model": fake.MODEL, "max_tokens": 1024, "stream": True, "system": system,
                 "messages": [{"role": "user", "content": prompt}]}
    # As Codex CLI sends it: input items, and store false (it keeps its own history).
    responses = {"model": fake.MODEL, "instructions": system, "stream": True, "store": False,
                 "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}]}
    gemini = {"contents": [{"role": "user", "parts": [{"text": prompt}]}],
              "systemInstruction": {"parts": [{"text": system}]}}
    return [
        Scenario("anthropic_on_openai", "Anthropic-on-OpenAI stream", "/v1/messages", "anthropic", _dump(anthropic),
                 translated.anthropic_on_openai(p.stream_chunks), **shape),
        Scenario("responses_on_chat", "Responses-on-chat stream", "/v1/responses", "openai", _dump(responses),
                 translated.responses_on_chat(p.stream_chunks, responses), **shape),
        Scenario("gemini_on_openai", "Gemini-on-OpenAI stream",
                 f"/v1beta/models/{fake.MODEL}:streamGenerateContent?alt=sse", "gemini", _dump(gemini),
                 translated.gemini_on_openai(p.stream_chunks), **shape),
    ]


def _dump(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def request_headers(sc: Scenario, key_kind: str) -> dict[str, str]:
    headers = dict(SDK_HEADERS)
    if sc.dialect == "anthropic":
        headers["user-agent"] = "Anthropic/Python 0.60.0"
        headers["anthropic-version"] = "2023-06-01"
        headers["x-api-key"] = TOKEN if key_kind == "token" else ANTHROPIC_KEY
    elif sc.dialect == "gemini":  # (translated only: always the proxy token)
        headers = {"content-type": "application/json", "user-agent": GENAI_USER_AGENT,
                   "x-goog-api-client": GENAI_USER_AGENT, "x-goog-api-key": TOKEN}
    else:
        headers["authorization"] = "Bearer " + (TOKEN if key_kind == "token" else OPENAI_KEYS[0])
    if sc.stream:
        headers["accept"] = "text/event-stream"
        headers["x-bench-chunks"] = str(sc.chunks)
        headers["x-bench-gap-ms"] = f"{sc.gap_ms:g}"
    return headers
