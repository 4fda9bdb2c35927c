"""The four client dialects as their official SDKs speak them, behind one small interface, for the
client x channel matrix (`test_e2e_matrix.py`).

Each client asks with its own SDK (made once by `connect`) (streamed through the SDK's own stream helpers, so their
accumulators must rebuild the answer), keeps the conversation for a tool round trip, and reports
a `Turn`: the answer's text, thinking, finish word, tool calls and usage, each read from the SDK's
types in that dialect's own shape and words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import anthropic
import openai
from google import genai
from google.genai import types

KEY = "sk-ax-alice"
TIMEOUT = 20

# (name, description, JSON schema): offered to every client in its own tool shape.
WEATHER = ("get_weather", "Weather in a city",
           {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
TIME = ("get_time", "Local time in a city",
        {"type": "object", "properties": {"city": {"type": "string"}, "tz": {"type": "string"}},
         "required": ["city", "tz"]})


@dataclass(frozen=True)
class Ask:
    """What one test asks, whatever the client."""

    prompt: str = "Hello there"
    system: str | None = None
    tools: tuple = ()
    schema: dict | None = None
    think: bool = False
    limit: int | None = None
    headers: dict = field(default_factory=dict)


@dataclass
class Turn:
    text: str
    reasoning: str
    finish: str  # the client's own word for how the answer ended
    usage: dict  # the client's usage fields, as its SDK read them
    request_id: str
    calls: list[tuple[str, str, dict]]  # (call id, name, arguments)


@dataclass(frozen=True)
class Words:
    stop: str
    length: str
    tools: str
    filtered: str


class _Recorded:
    """A client over an httpx-based SDK that notes the x-request-id of every answer (streams
    included). The SDK is made once (`connect`, ~0.1 s) and shared by the conversations."""

    def __init__(self, connection: tuple) -> None:
        self.sdk, self._ids = connection

    @classmethod
    def connect(cls, url: str) -> tuple:
        ids: list[str] = []
        hooks = {"response": [lambda response: ids.append(response.headers.get("x-request-id", ""))]}
        return cls._sdk(url, hooks), ids

    @property
    def last(self) -> str:
        return self._ids[-1]


class Chat(_Recorded):
    """OpenAI chat completions (`client.chat.completions`)."""

    name = "openai"
    words = Words("stop", "length", "tool_calls", "content_filter")
    errors = {400: openai.BadRequestError, 429: openai.RateLimitError, 500: openai.InternalServerError}
    stream_error = openai.APIError

    def __init__(self, connection: tuple) -> None:
        super().__init__(connection)
        self.messages: list[dict] = []
        self.kw: dict = {}

    @staticmethod
    def _sdk(url: str, hooks: dict) -> openai.OpenAI:
        return openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0, timeout=TIMEOUT,
                             http_client=openai.DefaultHttpxClient(event_hooks=hooks))

    def ask(self, model: str, ask: Ask, stream: bool) -> Turn:
        self.messages = [{"role": "system", "content": ask.system}] if ask.system else []
        self.messages.append({"role": "user", "content": ask.prompt})
        kw: dict = {"model": model, "extra_headers": ask.headers}
        if ask.tools:
            kw["tools"] = [{"type": "function", "function": {"name": n, "description": d, "parameters": p}}
                           for n, d, p in ask.tools]
        if ask.schema:
            kw["response_format"] = {"type": "json_schema",
                                     "json_schema": {"name": "answer", "schema": ask.schema, "strict": True}}
        if ask.think:
            kw["reasoning_effort"] = "low"
        if ask.limit:
            kw["max_completion_tokens"] = ask.limit
        self.kw = kw
        return self._send(stream)

    def answer_calls(self, turn: Turn, results: list[str], stream: bool) -> Turn:
        self.messages += [{"role": "tool", "tool_call_id": call_id, "content": result}
                          for (call_id, _, _), result in zip(turn.calls, results)]
        return self._send(stream)

    def _send(self, stream: bool) -> Turn:
        if stream:
            with self.sdk.chat.completions.stream(messages=self.messages, stream_options={"include_usage": True},
                                                  **self.kw) as events:
                chunks = [e.chunk for e in events if e.type == "chunk"]
                # What the SDK accumulated (its get_final_completion refuses a `length` finish).
                completion = events.current_completion_snapshot
            reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or ""
                                for c in chunks if c.choices)
        else:
            completion = self.sdk.chat.completions.create(messages=self.messages, **self.kw)
            reasoning = (completion.choices[0].message.model_extra or {}).get("reasoning_content") or ""
        choice = completion.choices[0]
        message = choice.message
        self.messages.append(message.model_dump(exclude_none=True, exclude={"parsed"}))
        calls = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []]
        usage = completion.usage
        prompt, completion_ = usage.prompt_tokens_details, usage.completion_tokens_details
        return Turn(message.content or "", reasoning, choice.finish_reason, {
            "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens, "cached_tokens": prompt.cached_tokens if prompt else None,
            "reasoning_tokens": completion_.reasoning_tokens if completion_ else None,
        }, self.last, calls)

    @staticmethod
    def expected_usage(prompt: int, completion: int, cached: int, reasoning: int) -> dict:
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "cached_tokens": cached, "reasoning_tokens": reasoning}

    @staticmethod
    def check_error(err: Exception, status: int) -> None:
        assert err.status_code == status and isinstance(err.body, dict) and err.body.get("message")


class Responses(Chat):
    """The OpenAI Responses API (`client.responses`)."""

    name = "responses"
    words = Words("completed", "incomplete:max_output_tokens", "completed", "incomplete:content_filter")

    def ask(self, model: str, ask: Ask, stream: bool) -> Turn:
        self.messages = [{"role": "user", "content": ask.prompt}]
        kw: dict = {"model": model, "extra_headers": ask.headers}
        if ask.system:
            kw["instructions"] = ask.system
        if ask.tools:
            kw["tools"] = [{"type": "function", "name": n, "description": d, "parameters": p, "strict": False}
                           for n, d, p in ask.tools]
        if ask.schema:
            kw["text"] = {"format": {"type": "json_schema", "name": "answer", "schema": ask.schema, "strict": True}}
        if ask.think:
            kw["reasoning"] = {"effort": "low", "summary": "auto"}
        if ask.limit:
            kw["max_output_tokens"] = ask.limit
        self.kw = kw
        return self._send(stream)

    def answer_calls(self, turn: Turn, results: list[str], stream: bool) -> Turn:
        self.messages += [{"type": "function_call_output", "call_id": call_id, "output": result}
                          for (call_id, _, _), result in zip(turn.calls, results)]
        return self._send(stream)

    def _send(self, stream: bool) -> Turn:
        if stream:
            with self.sdk.responses.stream(input=self.messages, **self.kw) as events:
                seen = list(events)
            # The last event's response (the SDK's get_final_response wants `response.completed` only).
            assert seen[-1].type in ("response.completed", "response.incomplete")
            response = seen[-1].response
            assert [e.sequence_number for e in seen] == list(range(len(seen)))
            deltas = {kind: "".join(e.delta for e in seen if e.type == kind)
                      for kind in ("response.output_text.delta", "response.reasoning_summary_text.delta")}
        else:
            response = self.sdk.responses.create(input=self.messages, **self.kw)
            deltas = None
        self.messages += [item.model_dump(exclude_none=True) for item in response.output]
        reasoning = "".join(s.text for item in response.output if item.type == "reasoning" for s in item.summary)
        if deltas is not None:  # what was streamed is what the final response holds
            assert (deltas["response.output_text.delta"], deltas["response.reasoning_summary_text.delta"]) == (
                response.output_text, reasoning)
        calls = [(item.call_id, item.name, json.loads(item.arguments))
                 for item in response.output if item.type == "function_call"]
        finish = response.status
        if response.incomplete_details is not None:
            finish += f":{response.incomplete_details.reason}"
        usage = response.usage
        return Turn(response.output_text, reasoning, finish, {
            "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens, "cached_tokens": usage.input_tokens_details.cached_tokens,
            "reasoning_tokens": usage.output_tokens_details.reasoning_tokens,
        }, self.last, calls)

    @staticmethod
    def expected_usage(prompt: int, completion: int, cached: int, reasoning: int) -> dict:
        return {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion,
                "cached_tokens": cached, "reasoning_tokens": reasoning}


class Messages(_Recorded):
    """Anthropic messages (`client.messages`)."""

    name = "anthropic"
    words = Words("end_turn", "max_tokens", "tool_use", "refusal")
    errors = {400: anthropic.BadRequestError, 429: anthropic.RateLimitError, 500: anthropic.InternalServerError}
    stream_error = anthropic.APIStatusError
    _KINDS = {400: "invalid_request_error", 429: "rate_limit_error", 500: "api_error"}

    def __init__(self, connection: tuple) -> None:
        super().__init__(connection)
        self.messages: list[dict] = []
        self.kw: dict = {}

    @staticmethod
    def _sdk(url: str, hooks: dict) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0, timeout=TIMEOUT,
                                   http_client=anthropic.DefaultHttpxClient(event_hooks=hooks))

    def ask(self, model: str, ask: Ask, stream: bool) -> Turn:
        self.messages = [{"role": "user", "content": ask.prompt}]
        kw: dict = {"model": model, "max_tokens": ask.limit or 2048, "extra_headers": ask.headers}
        if ask.system:
            kw["system"] = ask.system
        if ask.tools:
            kw["tools"] = [{"name": n, "description": d, "input_schema": p} for n, d, p in ask.tools]
        if ask.schema:
            kw["output_config"] = {"format": {"type": "json_schema", "schema": ask.schema}}
        if ask.think:
            kw["thinking"] = {"type": "enabled", "budget_tokens": 1024}
        self.kw = kw
        return self._send(stream)

    def answer_calls(self, turn: Turn, results: list[str], stream: bool) -> Turn:
        self.messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call_id, "content": result}
            for (call_id, _, _), result in zip(turn.calls, results)]})
        return self._send(stream)

    def _send(self, stream: bool) -> Turn:
        if stream:
            with self.sdk.messages.stream(messages=self.messages, **self.kw) as events:
                message = events.get_final_message()
        else:
            message = self.sdk.messages.create(messages=self.messages, **self.kw)
        blocks = message.content
        self.messages.append({"role": "assistant", "content": [
            b.model_dump(exclude_none=True, exclude={"parsed_output"}) for b in blocks]})
        usage = message.usage
        details = usage.output_tokens_details
        return Turn(
            "".join(b.text for b in blocks if b.type == "text"),
            "".join(b.thinking for b in blocks if b.type == "thinking"),
            message.stop_reason, {
                "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                "cache_read_input_tokens": usage.cache_read_input_tokens,
                "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                "thinking_tokens": details.thinking_tokens if details else None,
            }, self.last, [(b.id, b.name, b.input) for b in blocks if b.type == "tool_use"])

    def count(self, model: str, prompt: str, system: str) -> tuple[int, str]:
        counted = self.sdk.messages.count_tokens(model=model, system=system,
                                                 messages=[{"role": "user", "content": prompt}])
        return counted.input_tokens, self.last

    @staticmethod
    def expected_usage(prompt: int, completion: int, cached: int, reasoning: int) -> dict:
        return {"input_tokens": prompt - cached, "output_tokens": completion, "cache_read_input_tokens": cached,
                "cache_creation_input_tokens": 0, "thinking_tokens": reasoning}

    @classmethod
    def check_error(cls, err: Exception, status: int) -> None:
        assert err.status_code == status and err.body["type"] == "error"
        assert err.body["error"]["type"] == cls._KINDS[status] and err.body["error"]["message"]


class Gemini:
    """google-genai (`client.models.generate_content`, `generate_content_stream`)."""

    name = "gemini"
    words = Words("STOP", "MAX_TOKENS", "STOP", "SAFETY")
    errors = {400: genai.errors.ClientError, 429: genai.errors.ClientError, 500: genai.errors.ServerError}
    stream_error = genai.errors.APIError
    _STATUSES = {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}

    def __init__(self, connection: genai.Client) -> None:
        self.sdk = connection
        self.contents: list[types.Content] = []
        self.model = ""
        self.config = types.GenerateContentConfig()

    @staticmethod
    def connect(url: str) -> genai.Client:
        return genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=url, timeout=TIMEOUT * 1000))

    def ask(self, model: str, ask: Ask, stream: bool) -> Turn:
        self.model = model
        self.contents = [types.Content(role="user", parts=[types.Part(text=ask.prompt)])]
        config: dict = {"http_options": types.HttpOptions(headers=ask.headers)}
        if ask.system:
            config["system_instruction"] = ask.system
        if ask.tools:
            config["tools"] = [types.Tool(function_declarations=[
                types.FunctionDeclaration(name=n, description=d, parameters_json_schema=p) for n, d, p in ask.tools])]
        if ask.schema:
            config.update(response_mime_type="application/json", response_json_schema=ask.schema)
        if ask.think:
            config["thinking_config"] = types.ThinkingConfig(include_thoughts=True, thinking_budget=1024)
        if ask.limit:
            config["max_output_tokens"] = ask.limit
        self.config = types.GenerateContentConfig(**config)
        return self._send(stream)

    def answer_calls(self, turn: Turn, results: list[str], stream: bool) -> Turn:
        self.contents.append(types.Content(role="user", parts=[
            types.Part(function_response=types.FunctionResponse(id=call_id, name=name, response={"output": result}))
            for (call_id, name, _), result in zip(turn.calls, results)]))
        return self._send(stream)

    def _send(self, stream: bool) -> Turn:
        ask = {"model": self.model, "contents": self.contents, "config": self.config}
        if stream:
            chunks = list(self.sdk.models.generate_content_stream(**ask))
        else:
            chunks = [self.sdk.models.generate_content(**ask)]
        parts = [part for chunk in chunks if chunk.candidates and chunk.candidates[0].content
                 for part in chunk.candidates[0].content.parts or ()]
        self.contents.append(types.Content(role="model", parts=parts))
        last = chunks[-1]
        meta = last.usage_metadata
        return Turn(
            "".join(p.text for p in parts if p.text and not p.thought),
            "".join(p.text for p in parts if p.text and p.thought),
            last.candidates[0].finish_reason.value, {
                "prompt_token_count": meta.prompt_token_count, "candidates_token_count": meta.candidates_token_count,
                "cached_content_token_count": meta.cached_content_token_count,
                "thoughts_token_count": meta.thoughts_token_count, "total_token_count": meta.total_token_count,
            }, _request_id(last), [(p.function_call.id, p.function_call.name, p.function_call.args)
                                   for p in parts if p.function_call])

    def count(self, model: str, prompt: str, system: str) -> tuple[int, str]:
        # The Gemini API's countTokens takes no system instruction beside bare contents.
        counted = self.sdk.models.count_tokens(model=model, contents=f"{system}\n\n{prompt}")
        return counted.total_tokens, _request_id(counted)

    @staticmethod
    def expected_usage(prompt: int, completion: int, cached: int, reasoning: int) -> dict:
        return {"prompt_token_count": prompt, "candidates_token_count": completion - reasoning,
                "cached_content_token_count": cached, "thoughts_token_count": reasoning,
                "total_token_count": prompt + completion}

    @classmethod
    def check_error(cls, err: Exception, status: int) -> None:
        assert err.code == status and err.status == cls._STATUSES[status] and err.message


def _request_id(answer) -> str:
    headers = answer.sdk_http_response.headers
    return next(value for name, value in headers.items() if name.lower() == "x-request-id")


CLIENTS = {client.name: client for client in (Chat, Responses, Messages, Gemini)}
