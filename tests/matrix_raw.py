"""The matrix's requests without an SDK, to look at the bytes (`test_e2e_matrix.py`): the
request each client dialect makes, and an SSE body read into its events."""

from __future__ import annotations

import json

from matrix_clients import KEY, TIME, WEATHER


def raw_request(client_name: str, model: str, tools: bool = False, stream: bool = False,
                alt_sse: bool = True) -> tuple[str, dict, dict]:
    """(path with query, headers, body) of a request that asks for thinking, and for tool calls
    (WEATHER and TIME) when `tools`; a Gemini stream as SSE unless not `alt_sse`."""
    offered = [WEATHER, TIME] if tools else []
    bearer = {"authorization": f"Bearer {KEY}"}
    if client_name == "openai":
        body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": "low",
                "stream": stream, **({"stream_options": {"include_usage": True}} if stream else {})}
        if offered:
            body["tools"] = [{"type": "function", "function": {"name": n, "description": d, "parameters": p}}
                             for n, d, p in offered]
        return "/v1/chat/completions", bearer, body
    if client_name == "responses":
        body = {"model": model, "input": "Hi", "reasoning": {"effort": "low", "summary": "auto"}, "stream": stream}
        if offered:
            body["tools"] = [{"type": "function", "name": n, "description": d, "parameters": p, "strict": False}
                             for n, d, p in offered]
        return "/v1/responses", bearer, body
    if client_name == "anthropic":
        body = {"model": model, "max_tokens": 2048, "messages": [{"role": "user", "content": "Hi"}],
                "thinking": {"type": "enabled", "budget_tokens": 1024}, "stream": stream}
        if offered:
            body["tools"] = [{"name": n, "description": d, "input_schema": p} for n, d, p in offered]
        return "/v1/messages", {"x-api-key": KEY, "anthropic-version": "2023-06-01"}, body
    body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
            "generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}}}
    if offered:
        body["tools"] = [{"functionDeclarations": [{"name": n, "description": d, "parametersJsonSchema": p}
                                                   for n, d, p in offered]}]
    method = "streamGenerateContent" + ("?alt=sse" if alt_sse else "") if stream else "generateContent"
    return f"/v1beta/models/{model}:{method}", {"x-goog-api-key": KEY}, body


def sse_events(raw: bytes) -> list[tuple[str | None, dict]]:
    """(event name, data) of each event of an SSE body; `[DONE]` and comments left out."""
    events = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        name = next((line[6:].strip() for line in lines if line.startswith("event:")), None)
        data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
        if data and data != "[DONE]":
            events.append((name, json.loads(data)))
    return events
