"""A fake LLM provider: OpenAI, Azure OpenAI, Anthropic and Gemini wire formats on one port.

Run it as the end-to-end tests do (the test binds a socket and passes its fd):

    python -m uvicorn --app-dir tests fake_upstream:app --fd N --no-access-log --log-level warning

Base URLs: OpenAI `http://127.0.0.1:PORT/v1`; Azure, Anthropic and Gemini `http://127.0.0.1:PORT`
(Gemini answers under both `/v1beta/models/...` and `/v1/models/...`, google-genai's default).

Control endpoints (not recorded): `GET /_received` (requests, oldest first), `DELETE /_received`
(clears requests and events), `GET /_events` (`disconnected` / `completed` stream endpings).

The credential (Bearer, `x-api-key`, `api-key`, `x-goog-api-key`, `?key=`) picks a behaviour by its
prefix; anything may follow it (`fail-500-a`, `cut-2`) to tell keys apart:
`fail-<status>` error in the path's dialect; `delay-<ms>` before the headers; `stall-<ms>` after the
first stream event; `cut` drops the connection after two stream events; `hang` never answers;
`hangstream` sends the first stream event, then nothing.

Headers tune normal answers: `x-fake-chunks`, `x-fake-gap-ms`, `x-fake-usage: P,C,CACHED,REASONING`,
`x-fake-text`, `x-fake-finish`. Every answer sets a `fake_session` cookie.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import logging
import re
from dataclasses import dataclass, field

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import fake_cache
from fake_responses import (
    answer_text, function_calls, message_item, reasoning_item, response_object, stream_events,
)
from fake_script import tool_calls
from fake_wire import (
    AZURE_FILTER, CREATED, DONE, GEMINI_MODELS, MODERATION_CATEGORIES, OPENAI_MODELS, O_SERIES, PNG, SPEECH_TYPES,
    WAV, ApiError, Usage, anthropic_events, camel_keys, check_anthropic, check_gemini, check_openai_chat, echo,
    embedding, embedding_b64, error_body, fragments, gemini_declarations, gemini_model_object,
    interleave, json_array_stream, json_text, model_object, parse_multipart, pieces, speech_bytes, sse,
    sse_crlf, text_of,
)

__all__ = ["app", "speech_bytes"]

RECORDS: list[dict] = []
EVENTS: list[dict] = []
_IDS = itertools.count(1)
_COOKIES = itertools.count(1)


def next_id() -> int:
    return next(_IDS)


class CutConnection(Exception):
    """Raised inside a streamed answer: uvicorn then closes the socket without the final chunk."""


class _QuietCut(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], CutConnection))


logging.getLogger("uvicorn.error").addFilter(_QuietCut())


# ---- one provider request ----------------------------------------------------------------------

FAULT = re.compile(r"(?:(fail|delay|stall)-(\d+)|(hangstream|hang|cut))(?:-.*)?", re.DOTALL)


def dialect_of(request: Request) -> str:
    path = request.url.path
    if path.startswith("/v1/messages"):
        return "anthropic"
    # google-genai defaults to API version v1, whose /v1/models paths overlap OpenAI's: a Gemini
    # request names a method after a colon or carries Google's credential.
    if path.startswith("/v1beta/") or path.startswith("/v1/models") and (
            ":" in path or "x-goog-api-key" in request.headers or "key" in request.query_params):
        return "gemini"
    return "azure" if path.startswith("/openai/") else "openai"


def credential_of(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and auth[7:].strip():
        return auth[7:].strip()
    for name in ("x-api-key", "api-key", "x-goog-api-key"):
        if request.headers.get(name):
            return request.headers[name]
    return request.query_params.get("key") or None


@dataclass
class Call:
    """A received provider request with its fault and `x-fake-*` knobs."""

    request: Request
    dialect: str
    raw: bytes
    credential: str | None
    fault: str = ""
    fault_ms: int = 0
    _json: dict | None = field(default=None, repr=False)

    def header(self, name: str) -> str | None:
        value = self.request.headers.get(name)
        # Starlette decodes header bytes as latin-1; the knobs may carry UTF-8 text.
        return value.encode("latin-1").decode("utf-8", "replace") if value is not None else None

    def json(self) -> dict:
        if self._json is None:
            try:
                body = orjson.loads(self.raw)
            except orjson.JSONDecodeError:
                raise ApiError(400, "We could not parse the JSON body of your request.") from None
            if not isinstance(body, dict):
                raise ApiError(400, "The request body must be a JSON object.")
            self._json = body
        return self._json

    @property
    def chunks(self) -> int:
        return int(self.header("x-fake-chunks") or 3)

    @property
    def gap_ms(self) -> int:
        return int(self.header("x-fake-gap-ms") or 0)

    @property
    def finish(self) -> str | None:
        return self.header("x-fake-finish")

    def usage(self, reasoning_default: int = 0) -> Usage:
        return Usage.parse(self.header("x-fake-usage"), reasoning_default)

    def text(self, default: str) -> str:
        forced = self.header("x-fake-text")
        return default if forced is None else forced


def note(call: Call, kind: str) -> None:
    EVENTS.append({"kind": kind, "path": call.request.url.path, "credential": call.credential})


async def client_stays(request: Request, seconds: float) -> bool:
    """Wait `seconds`, polling the client every 20 ms; False as soon as it has gone away."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not await request.is_disconnected():
        left = end - loop.time()
        if left <= 0:
            return True
        await asyncio.sleep(min(0.02, left))
    return False


def json_response(data: object, status: int = 200, headers: dict | None = None,
                  media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(data), status, headers=headers, media_type=media_type)


class Stream:
    """A streamed answer that honours the stream faults and records how it ended."""

    def __init__(self, call: Call, chunks: list[bytes], media_type: str = "text/event-stream; charset=utf-8"):
        self.call, self.chunks, self.media_type = call, chunks, media_type

    async def __call__(self, scope, receive, send) -> None:
        call, request = self.call, self.call.request
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", self.media_type.encode()), (b"cache-control", b"no-cache")]})
        last = len(self.chunks) - 1
        for i, chunk in enumerate(self.chunks):
            if i and call.gap_ms and not await client_stays(request, call.gap_ms / 1000):
                return note(call, "disconnected")
            try:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except OSError:
                return note(call, "disconnected")
            if await request.is_disconnected():
                return note(call, "disconnected")
            if i == 0 and call.fault == "stall" and not await client_stays(request, call.fault_ms / 1000):
                return note(call, "disconnected")
            if i == 0 and call.fault == "hangstream":
                if not await client_stays(request, 60):
                    note(call, "disconnected")
                return
            if i == min(1, last) and call.fault == "cut":
                raise CutConnection(request.url.path)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        note(call, "completed")


def provider(handler):
    """Wrap a handler: record the request, check the credential, apply faults, render ApiErrors."""

    async def endpoint(request: Request):
        raw = await request.body()
        headers: dict[str, str] = {}
        for name, value in request.headers.raw:
            key, text = name.decode("latin-1").lower(), value.decode("utf-8", "replace")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        credential = credential_of(request)
        path = request.url.path
        RECORDS.append({"method": request.method, "path": path, "query": request.url.query, "headers": headers,
                        "body": raw.decode("utf-8", "replace"), "body_b64": base64.b64encode(raw).decode(),
                        "credential": credential})
        call = Call(request, dialect_of(request), raw, credential)
        match = FAULT.fullmatch(credential or "")
        if match:
            call.fault, call.fault_ms = match.group(1) or match.group(3), int(match.group(2) or 0)
        try:
            if credential is None:
                # Anthropic takes `x-api-key` or, from SDK 2.x on, `Authorization: Bearer <api key>`.
                raise ApiError(401, "x-api-key header is required" if call.dialect == "anthropic" else None)
            if call.fault == "hang":
                if await client_stays(request, 60):
                    raise ApiError(504, "hang: the client never went away")
                note(call, "disconnected")
                return Response(status_code=499)
            if call.fault == "delay" and not await client_stays(request, call.fault_ms / 1000):
                note(call, "disconnected")
                return Response(status_code=499)
            if call.fault == "fail":
                raise ApiError(call.fault_ms)
            return await handler(call)
        except ApiError as exc:
            body = error_body(call.dialect, exc.status, exc.message, param=exc.param, code=exc.code,
                              credential=credential if exc.status == 401 and exc.message is None else None)
            headers = {"retry-after": "1"} if exc.status == 429 else None
            media = "application/json; charset=UTF-8" if call.dialect == "gemini" else "application/json"
            return json_response(body, exc.status, headers, media)

    return endpoint


# ---- OpenAI and Azure --------------------------------------------------------------------------

def openai_model(call: Call, body: dict) -> str | None:
    return call.request.path_params.get("deployment") or body.get("model")


def reasoning_style(model: str, body: dict) -> str | None:
    thinking = (body.get("thinking") or {}).get("type") == "enabled"
    if not (model.startswith("deepseek-reasoner") or O_SERIES.match(model) or thinking
            or "reasoning_effort" in body):
        return None
    return "deepseek" if "deepseek" in model or "thinking" in body else "o"


def chat_text(body: dict, last: dict) -> str:
    if last.get("role") == "tool":
        # Every result of the last turn's calls: they are the tool messages at the end.
        results = list(itertools.takewhile(lambda m: m.get("role") == "tool", reversed(body["messages"])))
        return "tool result: " + " ".join(text_of(m.get("content")) for m in reversed(results))
    user = next((m for m in reversed(body["messages"]) if m.get("role") == "user"), {})
    format_ = body.get("response_format") or {}
    if format_.get("type") == "json_schema":
        return json_text((format_.get("json_schema") or {}).get("schema") or {})
    if format_.get("type") == "json_object":
        return orjson.dumps({"text": echo(text_of(user.get("content")))}).decode()
    return echo(text_of(user.get("content")))


def chat_tool_calls(body: dict, model: str, last: dict) -> list[dict]:
    tools = [(t["function"]["name"], t["function"].get("parameters"))
             for t in body.get("tools") or [] if t.get("type") == "function"]
    choice = body.get("tool_choice")
    if not tools or last.get("role") == "tool" or choice == "none":
        return []
    chosen = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    return [{"id": f"call_{next_id()}", "type": "function",
             "function": {"name": name, "arguments": orjson.dumps(args).decode()}}
            for name, args in tool_calls(tools, chosen, model)]


async def chat_completions(call: Call) -> Response:
    body = call.json()
    model = openai_model(call, body)
    check_openai_chat(body, model)
    last = body["messages"][-1]
    style = reasoning_style(model, body)
    usage = call.usage(4 if style else 0)
    calls = chat_tool_calls(body, model, last)
    text = call.text(chat_text(body, last))
    audio = "audio" in (body.get("modalities") or [])
    finish = call.finish or ("tool_calls" if calls else "stop")
    n = next_id()
    azure = call.dialect == "azure"
    if not body.get("stream"):
        message = {"role": "assistant", "content": None if calls or audio else text, "refusal": None,
                   "annotations": []}
        if style == "deepseek":
            message["reasoning_content"] = f"thinking: {text}"
        if calls:
            message["tool_calls"] = calls
        if audio:
            message["audio"] = {"id": f"audio_{n}", "data": base64.b64encode(WAV).decode(),
                                "expires_at": CREATED + 3600, "transcript": text}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        answer = {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": CREATED, "model": model,
                  "choices": [choice], "usage": usage.openai(), "service_tier": "default",
                  "system_fingerprint": "fp_fake"}
        if azure:
            choice["content_filter_results"] = AZURE_FILTER
            answer["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": AZURE_FILTER}]
        return json_response(answer)

    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    deltas: list[dict] = [{"role": "assistant", "content": None if calls or audio else "", "refusal": None}]
    if style == "deepseek":
        deltas += [{"content": None, "reasoning_content": p} for p in pieces(f"thinking: {text}", call.chunks)]
    if calls:
        deltas += [{"tool_calls": [{"index": i, "id": c["id"], "type": "function",
                                    "function": {"name": c["function"]["name"], "arguments": ""}}]}
                   for i, c in enumerate(calls)]
        args = [fragments(c["function"]["arguments"]) for c in calls]
        deltas += [{"tool_calls": [{"index": i, "function": {"arguments": frag}}]} for i, frag in interleave(args)]
    elif audio:
        spoken = pieces(text, call.chunks)
        deltas += [{"audio": {"id": f"audio_{n}", "transcript": p} if not j else {"transcript": p}}
                   for j, p in enumerate(spoken)]
        deltas += [{"audio": {"data": base64.b64encode(WAV).decode()}}, {"audio": {"expires_at": CREATED + 3600}}]
    else:
        deltas += [{"content": p} for p in pieces(text, call.chunks)]

    def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
        data = {"id": f"chatcmpl-{n}", "object": "chat.completion.chunk", "created": CREATED, "model": model,
                "service_tier": "default", "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if include_usage:
            data["usage"] = None
        return sse(data)

    out = [chunk(d) for d in deltas] + [chunk({}, finish)]
    if azure:
        out.insert(0, sse({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                           "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": AZURE_FILTER}]}))
    if include_usage:
        out.append(sse({"id": f"chatcmpl-{n}", "object": "chat.completion.chunk", "created": CREATED,
                        "model": model, "service_tier": "default", "system_fingerprint": "fp_fake", "choices": [],
                        "usage": usage.openai()}))
    return Stream(call, out + [DONE])


async def completions(call: Call) -> Response:
    body = call.json()
    model = openai_model(call, body)
    if not model:
        raise ApiError(400, "you must provide a model parameter")
    prompt = body.get("prompt")
    text = call.text(echo(prompt if isinstance(prompt, str) else " ".join(map(str, prompt or []))))
    usage, finish, n = call.usage(), call.finish or "stop", next_id()

    def completion(piece: str, finish_reason: str | None, with_usage: bool) -> dict:
        return {"id": f"cmpl-{n}", "object": "text_completion", "created": CREATED, "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"text": piece, "index": 0, "logprobs": None, "finish_reason": finish_reason}],
                "usage": usage.openai() if with_usage else None}

    if not body.get("stream"):
        return json_response(completion(text, finish, True))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    out = [sse(completion(p, None, False)) for p in pieces(text, call.chunks)]
    out.append(sse(completion("", finish, False)))
    if include_usage:
        out.append(sse({**completion("", None, True), "choices": []}))
    return Stream(call, out + [DONE])


async def responses(call: Call) -> Response:
    body = call.json()
    model = openai_model(call, body)
    if not model:
        raise ApiError(400, "Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    usage = call.usage(4 if O_SERIES.match(model) or body.get("reasoning") else 0)
    n = next_id()
    status = "incomplete" if call.finish else "completed"
    text = call.text(answer_text(body))
    output = reasoning_item(body, str(n), text) + (function_calls(body, model, n)
                                                   or [message_item(f"msg_{n}", text, status)])
    final = response_object(body, model, f"resp_{n}", status, output, usage.responses(), call.finish)
    if not body.get("stream"):
        return json_response(final)
    started = response_object(body, model, f"resp_{n}", "in_progress", [], None, None)
    return Stream(call, [sse({"type": kind, **data, "sequence_number": i}, kind)
                         for i, (kind, data) in enumerate(stream_events(started, final, call.chunks))])


async def embeddings(call: Call) -> Response:
    body = call.json()
    model = openai_model(call, body)
    inputs = body.get("input")
    if not model or inputs in (None, "", []):
        raise ApiError(400, "'input' is a required property" if model else "you must provide a model parameter")
    if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
        inputs = [inputs]
    dims = int(body.get("dimensions") or 8)
    base64_ = body.get("encoding_format") == "base64"
    data = []
    for i, item in enumerate(inputs):
        values = embedding(item if isinstance(item, str) else orjson.dumps(item).decode(), dims)
        data.append({"object": "embedding", "index": i, "embedding": embedding_b64(values) if base64_ else values})
    usage = call.usage()
    return json_response({"object": "list", "data": data, "model": model,
                          "usage": {"prompt_tokens": usage.prompt, "total_tokens": usage.prompt}})


async def moderations(call: Call) -> Response:
    body = call.json()
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) else inputs or []
    results = [{"flagged": False, "categories": dict.fromkeys(MODERATION_CATEGORIES, False),
                "category_scores": dict.fromkeys(MODERATION_CATEGORIES, 0.0001),
                "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES}} for _ in inputs]
    return json_response({"id": f"modr-{next_id()}", "model": body.get("model") or "omni-moderation-latest",
                          "results": results})


async def images(call: Call) -> Response:
    body = call.json()
    if not body.get("prompt"):
        raise ApiError(400, "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter")
    url = str(call.request.base_url).rstrip("/") + "/_files/image.png"
    item = {"url": url} if body.get("response_format") == "url" else {"b64_json": base64.b64encode(PNG).decode()}
    return json_response({"created": CREATED, "data": [dict(item) for _ in range(int(body.get("n") or 1))]})


async def speech(call: Call) -> Response:
    body = call.json()
    if not isinstance(body.get("input"), str):
        raise ApiError(400, "Missing required parameter: 'input'.", param="input", code="missing_required_parameter")
    audio = speech_bytes(body["input"])
    size = -(-len(audio) // 3)
    media = SPEECH_TYPES.get(body.get("response_format") or "mp3", "audio/mpeg")
    return Stream(call, [audio[i:i + size] for i in range(0, len(audio), size)], media)


async def transcription(call: Call) -> Response:
    form = parse_multipart(call.raw, call.request.headers.get("content-type", ""))
    if "file" not in form:
        raise ApiError(400, "Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
    field_ = {name: value.decode("utf-8", "replace") for name, (value, filename) in form.items() if filename is None}
    model = call.request.path_params.get("deployment") or field_.get("model")
    if not model:
        raise ApiError(400, "you must provide a model parameter")
    audio = form["file"][0]
    text = call.text(f"transcribed {len(audio)} bytes sha256={hashlib.sha256(audio).hexdigest()} "
                     f"model={model} language={field_.get('language', '')}")
    format_ = field_.get("response_format", "json")
    if format_ in ("text", "srt", "vtt"):
        return Response(text + "\n", media_type="text/plain; charset=utf-8")
    if format_ == "verbose_json":
        task = "translate" if call.request.url.path.endswith("translations") else "transcribe"
        return json_response({"task": task, "language": field_.get("language") or "english", "duration": 1.0,
                              "text": text, "segments": []})
    return json_response({"text": text})


async def list_models(call: Call) -> Response:
    return json_response({"object": "list", "data": [model_object(m) for m in OPENAI_MODELS]})


async def get_model(call: Call) -> Response:
    model = call.request.path_params["target"]
    if model not in OPENAI_MODELS:
        raise ApiError(404, f"The model '{model}' does not exist", param="model", code="model_not_found")
    return json_response(model_object(model))


AZURE_OPERATIONS = {"chat/completions": chat_completions, "completions": completions, "responses": responses,
                    "embeddings": embeddings, "images/generations": images, "audio/speech": speech,
                    "audio/transcriptions": transcription, "audio/translations": transcription}


async def azure(call: Call) -> Response:
    handler = AZURE_OPERATIONS.get(call.request.path_params["operation"])
    versioned = "deployment" not in call.request.path_params or "api-version" in call.request.query_params
    if handler is None or not versioned:
        raise ApiError(404)
    return await handler(call)


# ---- Anthropic ---------------------------------------------------------------------------------

def anthropic_schema(body: dict) -> dict | None:
    """The JSON schema of structured outputs (`output_config.format`, formerly `output_format`)."""
    fmt = (body.get("output_config") or {}).get("format") or body.get("output_format")
    return fmt.get("schema") if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None


def anthropic_blocks(call: Call, body: dict) -> tuple[list[dict], str]:
    """The content blocks of the answer and its natural stop reason."""
    last_user = next(m for m in reversed(body["messages"]) if m["role"] == "user")
    content = last_user["content"] if isinstance(last_user["content"], list) else []
    results = [b for b in content if b.get("type") == "tool_result"]
    if results:
        text = "tool result: " + " ".join(text_of(r.get("content"), ("text",)) for r in results)
    elif (schema := anthropic_schema(body)) is not None:
        text = json_text(schema)
    else:
        text = echo(text_of(last_user["content"], ("text",)))
    text = call.text(text)
    blocks: list[dict] = []
    if (body.get("thinking") or {}).get("type") in ("enabled", "adaptive"):
        blocks.append({"type": "thinking", "thinking": f"thinking: {text}", "signature": f"sig-{next_id()}"})
    tools = [(t["name"], t.get("input_schema")) for t in body.get("tools") or [] if "input_schema" in t]
    choice = body.get("tool_choice") or {}
    calling = not results and choice.get("type") != "none"
    calls = tool_calls(tools, choice.get("name"), body["model"]) if calling else []
    if calls:
        blocks += [{"type": "tool_use", "id": f"toolu_{next_id()}", "name": name, "input": args}
                   for name, args in calls]
        return blocks, "tool_use"
    return blocks + [{"type": "text", "text": text}], "end_turn"


def anthropic_preflight(call: Call, count_only: bool) -> dict:
    if not call.request.headers.get("anthropic-version"):
        raise ApiError(400, "anthropic-version: header is required")
    body = call.json()
    check_anthropic(body, count_only)
    return body


async def messages(call: Call) -> Response:
    body = anthropic_preflight(call, count_only=False)
    blocks, stop = anthropic_blocks(call, body)
    stop = call.finish or stop
    thinking = any(b["type"] == "thinking" for b in blocks)
    usage = call.usage(4 if thinking else 0)
    cached = fake_cache.usage(body) if call.header("x-fake-usage") is None else None
    if cached is not None:  # the prompt marks cache breakpoints: the fake's prompt cache counts
        fresh, read, written = cached
        usage = Usage(fresh + read + written, usage.completion, read, usage.reasoning, written)
    message = {"id": f"msg_{next_id()}", "type": "message", "role": "assistant", "model": body["model"],
               "content": blocks, "stop_reason": stop,
               "stop_sequence": (body.get("stop_sequences") or ["STOP"])[0] if stop == "stop_sequence" else None,
               "usage": usage.anthropic()}
    if not body.get("stream"):
        return json_response(message)
    return Stream(call, anthropic_events(message, usage, call.chunks))


async def count_tokens(call: Call) -> Response:
    anthropic_preflight(call, count_only=True)
    return json_response({"input_tokens": max(1, len(call.raw) // 4)})


# ---- Gemini ------------------------------------------------------------------------------------

def gemini_answer(call: Call, body: dict, model: str) -> tuple[list[list[dict]], Usage]:
    """The parts of the answer, grouped by the stream event that carries them, and its usage."""
    contents = [camel_keys(c) for c in body["contents"]]
    last_user = next((c for c in reversed(contents) if c.get("role", "user") == "user"), contents[-1])
    parts = [camel_keys(p) for p in last_user["parts"]]
    responses_ = [camel_keys(p["functionResponse"]) for p in parts if p.get("functionResponse")]
    config = camel_keys(body.get("generationConfig"))
    thinking = camel_keys(config.get("thinkingConfig"))
    usage = call.usage(4 if thinking.get("includeThoughts") else 0)
    if responses_:
        text = "tool result: " + " ".join(orjson.dumps(r.get("response")).decode() for r in responses_)
    elif config.get("responseMimeType") == "application/json" and (
            config.get("responseJsonSchema") or config.get("responseSchema")):
        text = json_text(config.get("responseJsonSchema") or config.get("responseSchema"))
    else:
        text = echo(" ".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought")))
    text = call.text(text)
    events: list[list[dict]] = [[{"text": f"thinking: {text}", "thought": True}]] if thinking.get(
        "includeThoughts") else []
    calling = camel_keys(camel_keys(body.get("toolConfig")).get("functionCallingConfig"))
    declared = gemini_declarations(body.get("tools"))
    chosen = (calling.get("allowedFunctionNames") or [None])[0]
    wanted = tool_calls(declared, chosen, model) if not responses_ and calling.get("mode") != "NONE" else []
    calls = [{"functionCall": {"name": name, "args": args}} for name, args in wanted]
    if calls:
        calls[0]["thoughtSignature"] = "c2lnLTE="
        events.append(calls)
    else:
        events += [[{"text": p}] for p in pieces(text, call.chunks)]
    return events or [[]], usage


async def gemini_generate(call: Call, model: str, stream: bool) -> Response:
    body = call.json()
    check_gemini(body)
    body = camel_keys(body)
    n = next_id()
    events, usage = gemini_answer(call, body, model)
    finish = call.finish or "STOP"

    def response(parts: list[dict], last: bool) -> dict:
        candidate = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if last:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "usageMetadata": usage.gemini(final=last), "modelVersion": model,
                "responseId": f"fake-{n}"}

    if not stream:
        return json_response(response([p for parts in events for p in parts], True),
                             media_type="application/json; charset=UTF-8")
    answers = [response(parts, i == len(events) - 1) for i, parts in enumerate(events)]
    if call.request.query_params.get("alt") == "sse":
        return Stream(call, [sse_crlf(a) for a in answers], "text/event-stream")
    return Stream(call, json_array_stream(answers), "application/json; charset=UTF-8")


async def gemini_models(call: Call) -> Response:
    return json_response({"models": [gemini_model_object(m) for m in GEMINI_MODELS]})


async def models_list(call: Call) -> Response:
    return await (gemini_models if call.dialect == "gemini" else list_models)(call)


async def models_target(call: Call) -> Response:
    if call.dialect == "gemini":
        return await gemini_target(call)
    if call.request.method != "GET":
        return await not_found(call)
    return await get_model(call)


async def gemini_target(call: Call) -> Response:
    target = call.request.path_params["target"]
    model, colon, method = target.rpartition(":")
    if call.request.method == "GET" and not colon:
        if target not in GEMINI_MODELS:
            version = call.request.url.path.split("/")[1]
            raise ApiError(404, f"models/{target} is not found for API version {version}.")
        return json_response(gemini_model_object(target))
    if method in ("generateContent", "streamGenerateContent"):
        return await gemini_generate(call, model, method == "streamGenerateContent")
    body = camel_keys(call.json())
    if method == "countTokens":
        request = camel_keys(body.get("generateContentRequest")) or body
        if request.get("contents") is not None:
            check_gemini({k: v for k, v in request.items() if k != "model"})
        tokens = max(1, len(call.raw) // 4)
        return json_response({"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT",
                                                                              "tokenCount": tokens}]})
    if method in ("embedContent", "batchEmbedContents"):
        requests = body.get("requests") if method == "batchEmbedContents" else [body]
        vectors = []
        for request in [camel_keys(r) for r in requests or []]:
            parts = camel_keys(request.get("content")).get("parts")
            if not parts:
                raise ApiError(400, "* EmbedContentRequest.content: contents is not specified\n")
            text = " ".join(p.get("text", "") for p in parts)
            vectors.append({"values": embedding(text, int(request.get("outputDimensionality") or 8))})
        return json_response({"embedding": vectors[0]} if method == "embedContent" else {"embeddings": vectors})
    raise ApiError(404, f"Method {method or target} not found.")


# ---- control endpoints and assembly ------------------------------------------------------------

async def received(request: Request) -> Response:
    if request.method == "DELETE":
        RECORDS.clear()
        EVENTS.clear()
    return json_response(RECORDS)


async def events(request: Request) -> Response:
    return json_response(EVENTS)


async def image_file(request: Request) -> Response:
    return Response(PNG, media_type="image/png")


async def not_found(call: Call) -> Response:
    raise ApiError(404, f"Invalid URL ({call.request.method} {call.request.url.path})")


class SessionCookie:
    """Every answer sets a cookie, so tests can check that the proxy neither stores nor forwards it."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_cookie(message) -> None:
            if message["type"] == "http.response.start":
                cookie = f"fake_session={next(_COOKIES)}; Path=/".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


ALL = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ROUTES = [
    Route("/_received", received, methods=["GET", "DELETE"]),
    Route("/_events", events, methods=["GET"]),
    Route("/_files/image.png", image_file, methods=["GET"]),
    Route("/v1/chat/completions", provider(chat_completions), methods=["POST"]),
    Route("/v1/completions", provider(completions), methods=["POST"]),
    Route("/v1/responses", provider(responses), methods=["POST"]),
    Route("/v1/embeddings", provider(embeddings), methods=["POST"]),
    Route("/v1/moderations", provider(moderations), methods=["POST"]),
    Route("/v1/images/generations", provider(images), methods=["POST"]),
    Route("/v1/audio/speech", provider(speech), methods=["POST"]),
    Route("/v1/audio/transcriptions", provider(transcription), methods=["POST"]),
    Route("/v1/audio/translations", provider(transcription), methods=["POST"]),
    Route("/v1/models", provider(models_list), methods=["GET"]),
    Route("/v1/models/{target:path}", provider(models_target), methods=["GET", "POST"]),
    Route("/v1/messages", provider(messages), methods=["POST"]),
    Route("/v1/messages/count_tokens", provider(count_tokens), methods=["POST"]),
    Route("/v1beta/models", provider(gemini_models), methods=["GET"]),
    Route("/v1beta/models/{target:path}", provider(gemini_target), methods=["GET", "POST"]),
    Route("/openai/models", provider(list_models), methods=["GET"]),
    Route("/openai/deployments/{deployment}/{operation:path}", provider(azure), methods=["POST"]),
    Route("/openai/v1/{operation:path}", provider(azure), methods=["POST"]),
    Route("/{path:path}", provider(not_found), methods=ALL),
]

app = Starlette(routes=ROUTES, middleware=[Middleware(SessionCookie)])
