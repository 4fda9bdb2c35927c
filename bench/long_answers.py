"""Is any translated stream quadratic on a long answer? CPU per chunk at 1,000 and 5,000 chunks.

Every translated pairing (nine: four client dialects on three channel dialects, less the same
ones) gets one long answer of each kind: text, thinking, one tool call with a long argument (a
file the model writes), and two parallel calls whose fragments alternate. The channel's events
go through the proxy's own pipe (`relay.streams.Translated`), in process: no network, no SDK.
Fragments all end in "}", the worst case for "is this argument whole yet" checks. A ratio near 1
is linear; near 5, quadratic.

    .venv/bin/python bench/long_answers.py          # ~1 minute
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from relay import sse  # noqa: E402
from relay.dialects import ANTHROPIC, GEMINI, OPENAI, RESPONSES  # noqa: E402
from relay.dialects.translation import between  # noqa: E402
from relay.streams import Translated  # noqa: E402

PIECE = "ab{c}"
KINDS = ("text", "thinking", "call", "parallel")


def chat_events(kind: str, n: int) -> list[bytes]:
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""})]
    if kind in ("text", "thinking"):
        out += [chunk({"content" if kind == "text" else "reasoning_content": PIECE}) for _ in range(n)]
    else:
        calls = 2 if kind == "parallel" else 1
        out += [chunk({"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                       "function": {"name": f"Write{i}", "arguments": '{"content": "'}}]})
                for i in range(calls)]
        out += [chunk({"tool_calls": [{"index": j % calls, "function": {"arguments": PIECE}}]}) for j in range(n)]
        out += [chunk({"tool_calls": [{"index": i, "function": {"arguments": '"}'}}]}) for i in range(calls)]
    out.append(chunk({}, "tool_calls" if kind in ("call", "parallel") else "stop"))
    out.append({**head, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": n}})
    return [sse.encode(orjson.dumps(e)) for e in out] + [b"data: [DONE]\n\n"]


def anthropic_events(kind: str, n: int) -> list[bytes]:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "m",
               "usage": {"input_tokens": 5, "output_tokens": 1}}
    out: list[dict] = [{"type": "message_start", "message": message}]
    if kind in ("text", "thinking"):
        block = {"type": "text", "text": ""} if kind == "text" else {"type": "thinking", "thinking": "", "signature": ""}
        delta = {"type": "text_delta", "text": PIECE} if kind == "text" else {"type": "thinking_delta", "thinking": PIECE}
        out.append({"type": "content_block_start", "index": 0, "content_block": block})
        out += [{"type": "content_block_delta", "index": 0, "delta": delta} for _ in range(n)]
        if kind == "thinking":
            out.append({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}})
        out.append({"type": "content_block_stop", "index": 0})
    else:  # Anthropic streams one tool_use block after the other, never interleaved
        calls = 2 if kind == "parallel" else 1
        for i in range(calls):
            block = {"type": "tool_use", "id": f"toolu_{i}", "name": f"Write{i}", "input": {}}
            out.append({"type": "content_block_start", "index": i, "content_block": block})
            out += [{"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": f}}
                    for f in ['{"content": "', *[PIECE] * (n // calls), '"}']]
            out.append({"type": "content_block_stop", "index": i})
    stop = "tool_use" if kind in ("call", "parallel") else "end_turn"
    out += [{"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": n}},
            {"type": "message_stop"}]
    return [sse.encode(orjson.dumps(e), e["type"]) for e in out]


def gemini_events(kind: str, n: int) -> list[bytes]:
    if kind in ("text", "thinking"):
        part = {"text": PIECE, **({"thought": True} if kind == "thinking" else {})}
        out = [{"candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}]} for _ in range(n)]
    else:  # Gemini sends each call whole
        calls = 2 if kind == "parallel" else 1
        parts = [{"functionCall": {"name": f"Write{i}", "args": {"content": PIECE * (n // calls)}}} for i in range(calls)]
        out = [{"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}]}]
    out.append({"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": n, "totalTokenCount": n + 5}})
    return [b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in out]


CHANNELS = {OPENAI: chat_events, ANTHROPIC: anthropic_events, GEMINI: gemini_events}
BODIES = {
    OPENAI: {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True,
             "stream_options": {"include_usage": True}},
    RESPONSES: {"model": "m", "input": "hi", "stream": True,
                "tools": [{"type": "function", "name": f"Write{i}", "parameters": {}} for i in range(2)]},
    ANTHROPIC: {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], "stream": True},
    GEMINI: {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
             "generationConfig": {"thinkingConfig": {"includeThoughts": True}}},
}


def cpu_per_chunk(client, channel, kind: str, n: int) -> float:
    translation = between(client, channel)
    body = BODIES[client]
    chat = translation.to_chat(body, "m", streaming=True)
    blocks = CHANNELS[channel](kind, n)
    pipe = Translated(channel, client, channel.meter(), translation.stream(body, chat, "m"))
    start = time.process_time()
    for block in blocks:
        pipe.feed(block)
    pipe.end()
    spent = time.process_time() - start
    assert pipe.complete
    return spent / n


def main() -> None:
    print(f"| client | channel | answer | µs/chunk at 1,000 | at 5,000 | ratio |\n|---|---|---|---|---|---|")
    for channel in CHANNELS:
        for client in (OPENAI, RESPONSES, ANTHROPIC, GEMINI):
            if client is channel:
                continue
            for kind in KINDS:
                small = min(cpu_per_chunk(client, channel, kind, 1000) for _ in range(3))
                large = min(cpu_per_chunk(client, channel, kind, 5000) for _ in range(3))
                print(f"| {client.name} | {channel.name} | {kind} | {small * 1e6:.1f} | {large * 1e6:.1f} "
                      f"| {large / small:.2f} |")


if __name__ == "__main__":
    main()
