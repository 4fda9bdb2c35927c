"""What a client of another dialect receives when the proxy translates the fake upstream's OpenAI
chat stream (`fake_upstream.openai_events`): the exact bytes, so the load generator checks every
translated stream as it checks a pass-through one.

Three clients, each on an OpenAI chat channel:

- Anthropic messages (`/v1/messages`): the event sequence the Anthropic SDK reads;
- Gemini `streamGenerateContent?alt=sse`: one `GenerateContentResponse` per chunk;
- OpenAI Responses (`/v1/responses`): the full event sequence with `sequence_number`. The proxy
  makes up the response and message ids and stamps `created_at` with its clock, so this one is a
  pattern: each id must have its shape and be the same in every event that repeats it.

These encode the proxy's translation of a plain text stream today: a deliberate change to it
changes these too (tests/test_bench.py runs them).
"""

from __future__ import annotations

import re

import fake_upstream as fake

TOKENS_IN = fake.USAGE["prompt_tokens"]


def _texts(chunks: int) -> list[str]:
    return [fake._piece(i) for i in range(chunks)]


def anthropic_on_openai(chunks: int) -> bytes:
    """An Anthropic client's stream of a model on an OpenAI chat channel."""
    sse, dump = fake._sse, fake._json
    out = [
        sse(dump({"type": "message_start", "message": {
            "id": "msg_bench", "type": "message", "role": "assistant", "model": fake.MODEL, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}}),
            "message_start"),
        sse(dump({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            "content_block_start"),
    ]
    out += [sse(dump({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
                "content_block_delta") for text in _texts(chunks)]
    out += [
        sse(dump({"type": "content_block_stop", "index": 0}), "content_block_stop"),
        sse(dump({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                  "usage": {"input_tokens": TOKENS_IN, "output_tokens": chunks, "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0}}), "message_delta"),
        sse(dump({"type": "message_stop"}), "message_stop"),
    ]
    return b"".join(out)


def gemini_on_openai(chunks: int) -> bytes:
    """A Gemini client's `alt=sse` stream of a model on an OpenAI chat channel."""
    def event(parts: list, **extra) -> bytes:
        candidate = {"content": {"role": "model", "parts": parts}, "index": 0}
        if "finishReason" in extra:
            candidate["finishReason"] = extra.pop("finishReason")
        return fake._sse(fake._json({"candidates": [candidate], **extra, "modelVersion": fake.MODEL,
                                     "responseId": "bench"}))

    out = [event([{"text": text}]) for text in _texts(chunks)]
    out.append(event([], finishReason="STOP", usageMetadata={
        "promptTokenCount": TOKENS_IN, "candidatesTokenCount": chunks, "totalTokenCount": TOKENS_IN + chunks}))
    return b"".join(out)


# Stand-ins for what the proxy makes up, replaced by patterns once the bytes are escaped.
_RESPONSE_ID, _MESSAGE_ID, _CREATED = "resp_RESPONSEID", "msg_MESSAGEID", 4242424242
_HOLES = {
    re.escape(_RESPONSE_ID.encode()): (rb"(?P<response>resp_[0-9a-f]{24})", rb"(?P=response)"),
    re.escape(_MESSAGE_ID.encode()): (rb"(?P<message>msg_[0-9a-f]{24})", rb"(?P=message)"),
    re.escape(str(_CREATED).encode()): (rb"(?P<created>[0-9]{10,})", rb"(?P=created)"),
}


def responses_on_chat(chunks: int, body: dict) -> re.Pattern[bytes]:
    """A Responses API client's stream of a model on an OpenAI chat channel (one that does not
    serve /v1/responses), for the request `body` (its fields are echoed in each `response`)."""
    stream = responses_stream(chunks, body, _RESPONSE_ID, _MESSAGE_ID, _CREATED)
    return re.compile(_holes(re.escape(stream)), re.DOTALL)


def responses_stream(chunks: int, body: dict, response_id: str, message_id: str, created: int) -> bytes:
    """That stream's bytes with these ids and time."""
    texts = _texts(chunks)
    whole = "".join(texts)
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    done_part = {**part, "text": whole}
    item = {"id": message_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
    done_item = {**item, "status": "completed", "content": [done_part]}
    usage = {"input_tokens": TOKENS_IN, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
             "output_tokens": chunks, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": TOKENS_IN + chunks}
    at = {"item_id": message_id, "output_index": 0, "content_index": 0}
    events = [
        ("response.created", {"response": _envelope(response_id, created, body, "in_progress", [], None)}),
        ("response.in_progress", {"response": _envelope(response_id, created, body, "in_progress", [], None)}),
        ("response.output_item.added", {"output_index": 0, "item": item}),
        ("response.content_part.added", {**at, "part": part}),
        *(("response.output_text.delta", {**at, "delta": text, "logprobs": []}) for text in texts),
        ("response.output_text.done", {**at, "text": whole, "logprobs": []}),
        ("response.content_part.done", {**at, "part": done_part}),
        ("response.output_item.done", {"output_index": 0, "item": done_item}),
        ("response.completed", {"response": _envelope(response_id, created, body, "completed", [done_item], usage)}),
    ]
    return b"".join(fake._sse(fake._json({"type": kind, "sequence_number": n, **fields}), kind)
                    for n, (kind, fields) in enumerate(events))


def _envelope(response_id: str, created: int, body: dict, status: str, output: list, usage: dict | None) -> dict:
    """The `response` object of the events, for a request of only model, instructions, input,
    stream and store: everything else is echoed as its default."""
    return {
        "id": response_id, "object": "response", "created_at": created, "status": status, "background": False,
        "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
        "max_output_tokens": None, "max_tool_calls": None, "metadata": {}, "model": fake.MODEL, "output": output,
        "parallel_tool_calls": True, "previous_response_id": None, "prompt_cache_key": None,
        "reasoning": {"effort": None, "summary": None}, "safety_identifier": None, "service_tier": "default",
        "store": body.get("store") is not False, "temperature": None, "text": {"format": {"type": "text"}},
        "tool_choice": "auto", "tools": [], "top_logprobs": 0, "top_p": None, "truncation": "disabled",
        "usage": usage, "user": None,
    }


def _holes(escaped: bytes) -> bytes:
    """The stand-ins' first appearance becomes a named group, every later one a back-reference."""
    for stand_in, (first, again) in _HOLES.items():
        head, sep, rest = escaped.partition(stand_in)
        if sep:
            escaped = head + first + rest.replace(stand_in, again)
    return escaped
