"""An upstream that misbehaves on purpose, in every dialect, to test what the proxy lets through.

Run as the tests do: `python -m uvicorn --app-dir tests hostile_upstream:app --fd N`. The
credential it receives picks the misbehaviour (anything may follow the name); most of them quote
the credential back, as careless providers do:

- `leak-stream`: a stream whose third event is an error that quotes the key;
- `leak-200`: a 200 JSON body holding an error object that quotes the key;
- `leak-header`: a normal answer with the key in an `x-debug-key` header;
- `masked`: a 401 whose message quotes the key masked (`abcd***wxyz`);
- `no-usage`, `negative-usage`, `empty-200`, `not-json`: whole answers without trustworthy usage;
- `deltas`: a stream of 300 one-word deltas, 5 ms apart, whose final usage never comes before
  the client goes (for aborted-stream billing).

Paths say the dialect: `/v1/chat/completions` (OpenAI), `/v1/messages` (Anthropic),
`/v1beta/models/{model}:{method}` (Gemini).
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def credential(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:]
    return request.headers.get("x-api-key") or request.headers.get("x-goog-api-key") or ""


def sse(data: dict, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


# -- one answer per dialect ----------------------------------------------------------------------

def openai_events(words: list[str], error: str | None) -> list[bytes]:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    out = [sse({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
    for i, word in enumerate(words):
        out.append(sse({**chunk, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}))
        if error and i == 1:
            out.append(sse({"error": {"message": error, "type": "server_error", "code": None}}))
            return out
    out.append(sse({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    out.append(sse({**chunk, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": len(words),
                                                      "total_tokens": 5 + len(words)}}))
    return out + [b"data: [DONE]\n\n"]


def anthropic_events(words: list[str], error: str | None) -> list[bytes]:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
               "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": 5, "output_tokens": 1}}
    out = [sse({"type": "message_start", "message": message}, "message_start"),
           sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
               "content_block_start")]
    for i, word in enumerate(words):
        out.append(sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}},
                       "content_block_delta"))
        if error and i == 1:
            out.append(sse({"type": "error", "error": {"type": "overloaded_error", "message": error}}, "error"))
            return out
    out += [sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                 "usage": {"output_tokens": len(words)}}, "message_delta"),
            sse({"type": "message_stop"}, "message_stop")]
    return out


def gemini_events(words: list[str], error: str | None) -> list[bytes]:
    out = []
    for i, word in enumerate(words):
        out.append(sse({"candidates": [{"content": {"role": "model", "parts": [{"text": word}]}, "index": 0}],
                        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}}))
        if error and i == 1:
            out.append(sse({"error": {"code": 500, "message": error, "status": "INTERNAL"}}))
            return out
    out.append(sse({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP",
                                    "index": 0}],
                    "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": len(words),
                                      "totalTokenCount": 5 + len(words)}}))
    return out


EVENTS = {"openai": openai_events, "anthropic": anthropic_events, "gemini": gemini_events}


def whole(dialect: str, text: str, usage: object) -> dict:
    if dialect == "anthropic":
        answer = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                  "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None}
        return {**answer, "usage": usage} if usage is not None else answer
    if dialect == "gemini":
        answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP",
                                  "index": 0}]}
        return {**answer, "usageMetadata": usage} if usage is not None else answer
    answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
    return {**answer, "usage": usage} if usage is not None else answer


NEGATIVE = {"openai": {"prompt_tokens": -1000, "completion_tokens": -5},
            "anthropic": {"input_tokens": -1000, "output_tokens": -5},
            "gemini": {"promptTokenCount": -1000, "candidatesTokenCount": -5}}
USAGE = {"openai": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
         "anthropic": {"input_tokens": 5, "output_tokens": 2},
         "gemini": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7}}


def error_of(dialect: str, status: int, message: str) -> dict:
    if dialect == "anthropic":
        return {"type": "error", "error": {"type": "authentication_error", "message": message}}
    if dialect == "gemini":
        return {"error": {"code": status, "message": message, "status": "UNAUTHENTICATED"}}
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}


async def answer(request: Request, dialect: str, streaming: bool) -> Response:
    key = credential(request)
    mode = key.split(":", 1)[0]
    quoted = f"upstream trouble for key {key}"
    if mode == "masked":
        masked = f"{key[:4]}***{key[-4:]}"
        return Response(orjson.dumps(error_of(dialect, 401, f"Incorrect API key provided: {masked}")), 401,
                        media_type="application/json")
    if streaming and mode in ("leak-stream", "deltas"):
        words = [f" w{i}" for i in range(300 if mode == "deltas" else 5)]
        events = EVENTS[dialect](words, quoted if mode == "leak-stream" else None)
        gap = 0.005 if mode == "deltas" else 0

        async def body():
            for event in events:
                yield event
                if gap:
                    await asyncio.sleep(gap)

        return StreamingResponse(body(), media_type="text/event-stream")
    if mode == "leak-200":
        return Response(orjson.dumps(error_of(dialect, 500, quoted)), 200, media_type="application/json")
    if mode == "empty-200":
        return Response(b"", 200, media_type="application/json")
    if mode == "not-json":
        return Response(b"<html>all good</html>", 200, media_type="application/json")
    usage = {"no-usage": None, "negative-usage": NEGATIVE[dialect]}.get(mode, USAGE[dialect])
    headers = {"x-debug-key": key} if mode == "leak-header" else None
    text = "A fine answer of several words."
    return Response(orjson.dumps(whole(dialect, text, usage)), 200, headers=headers, media_type="application/json")


async def openai_chat(request: Request) -> Response:
    body = orjson.loads(await request.body())
    return await answer(request, "openai", bool(body.get("stream")))


async def anthropic_messages(request: Request) -> Response:
    body = orjson.loads(await request.body())
    return await answer(request, "anthropic", bool(body.get("stream")))


async def gemini(request: Request) -> Response:
    method = request.path_params["rest"].rsplit(":", 1)[-1]
    return await answer(request, "gemini", method == "streamGenerateContent")


async def health(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(routes=[
    Route("/v1/chat/completions", openai_chat, methods=["POST"]),
    Route("/v1/messages", anthropic_messages, methods=["POST"]),
    Route("/v1beta/models/{rest:path}", gemini, methods=["POST"]),
    Route("/_health", health),
])
