"""Hostile input through the whole app, in-process (issue #16 item 7): Hypothesis puts values of
the wrong JSON type (and nested garbage) at any field of every translated client route, on every
channel dialect, and into what the channels answer. Never a 5xx from a client's types, never an
exception in the log, never a usage record with status 0 or 500; errors in the client's dialect.

The number of examples per test is the profile's (`HYPOTHESIS_PROFILE`, see conftest.py).
"""

from __future__ import annotations

import json
import re

import orjson
import pytest
from hypothesis import given

from fuzz_cases import paths, replaced, spelled, spoiled
from fuzz_proxy import COUNTED, MODELS, PAIRS, ROUTES, VALID, Proxy, array_outcome, error_shape, stream_outcome

_NAMED = re.compile(r"Invalid type for '([^']*)'")
_WHOLE = {  # what a served whole answer holds, per client route kind
    "openai": lambda a: isinstance(a.get("choices"), list),
    "responses": lambda a: a.get("object") == "response",
    "anthropic": lambda a: a.get("type") == "message",
    "gemini": lambda a: isinstance(a.get("candidates"), list),
}
_COUNTED = {"anthropic": "input_tokens", "gemini": "totalTokens"}


# (route, channel, field path, JSON kind put there): what the request fuzz covered, for the count
# the README gives (`pytest -s` prints it).
COVERED: set[tuple[str, str, str, str]] = set()


@pytest.fixture(scope="module")
def proxy():
    server = Proxy()
    yield server
    server.close()
    fields = {(route, channel, path) for route, channel, path, _ in COVERED}
    print(f"\nfuzz, in-process: {server.sent} requests; {len(COVERED)} (field, type) combinations "
          f"over {len(fields)} fields of {len(PAIRS)} route/channel pairs")


def _streams(route, body: object) -> str:
    if route.streams:
        return route.streams
    return "sse" if isinstance(body, dict) and body.get("stream") is True else ""


def served(proxy: Proxy, route_name: str, channel: str, body: object, may_fail: bool = False) -> dict:
    """Send `body`; assert what any answer must be; the parsed answer of a 4xx, else {}.
    `may_fail`: what the upstream sends is spoiled (or cannot be written back), so the answer
    may be a 502/503 or end with an error event; a whole answer in the client's own dialect is
    then not judged: it goes to the client as it came."""
    route = ROUTES[route_name]
    translated = route.dialect != channel
    proxy.failures.records.clear()
    response = proxy.post(route.url(MODELS[channel]), body)
    status, raw = response.status_code, response.content
    assert not proxy.failures.records, proxy.failures.describe()
    assert status < 500 or may_fail and status in (502, 503), (status, raw[:500])
    records = proxy.records()
    assert [r["status"] for r in records] == [status], records
    if status >= 400:
        error = orjson.loads(raw)
        assert error_shape(route.dialect, error), error
        return error
    streams = _streams(route, body)
    if streams == "sse":
        outcome = stream_outcome(route.dialect, raw)
        assert outcome == "complete" or may_fail and outcome == "error", (outcome, raw[-600:])
    elif streams == "array":
        outcome = array_outcome(raw)
        assert outcome == "complete" or may_fail and outcome == "error", (outcome, raw[-600:])
    elif route_name in ("count_tokens", "countTokens"):
        assert may_fail and not translated or isinstance(orjson.loads(raw).get(_COUNTED[route.dialect]), int), raw
    else:
        assert may_fail and not translated or _WHOLE[route.dialect](orjson.loads(raw)), raw[:600]
    return {}


def _message(error: dict) -> str:
    inner = error.get("error")
    return inner.get("message", "") if isinstance(inner, dict) else ""


@pytest.mark.parametrize(("route", "channel"), PAIRS)
def test_the_valid_request_is_served(proxy, route, channel) -> None:
    proxy.upstream.reset()
    assert served(proxy, route, channel, ROUTES[route].request(MODELS[channel])) == {}


@pytest.mark.parametrize(("route", "channel"), PAIRS)
def test_wrong_types_in_a_request_are_a_4xx_in_the_clients_dialect(proxy, route, channel) -> None:
    body = ROUTES[route].request(MODELS[channel])
    every = list(paths(body))
    proxy.upstream.reset()

    @given(spoiled(body, every))
    def sent(case) -> None:
        changed, done = case
        COVERED.update((route, channel, spelled(path), kind) for path, kind in done)
        error = served(proxy, route, channel, changed)
        named = _NAMED.search(_message(error))
        if named:
            # A wrong type is named where it was put, or inside what was put there.
            where = named.group(1)
            assert any(where == spelled(p) or where.startswith((spelled(p) + ".", spelled(p) + "["))
                       for p, _ in done), (where, done)

    sent()


@pytest.mark.parametrize(("route", "channel"), PAIRS)
def test_wrong_types_in_an_answer_end_in_the_clients_dialect(proxy, route, channel) -> None:
    """What the channel sends back, whole or streamed, with wrong types anywhere: the client gets
    its answer, a 502 in its dialect, or a stream that ends with its dialect's error event."""
    counting = route in ("count_tokens", "countTokens")
    if counting and channel == "openai":
        pytest.skip("counted by the proxy: nothing comes back")
    body = ROUTES[route].request(MODELS[channel])
    answer, events = VALID[channel]
    streamed = bool(_streams(ROUTES[route], body))
    original = COUNTED[channel] if counting else events if streamed else answer
    every = list(paths(original))

    @given(spoiled(original, every))
    def answered(case) -> None:
        changed, _ = case
        proxy.upstream.reset()
        if streamed and not counting:
            proxy.upstream.events[channel] = changed
        else:
            proxy.upstream.answer[channel] = changed
        served(proxy, route, channel, body, may_fail=True)

    try:
        answered()
    finally:
        proxy.upstream.reset()


def _deep(levels: int) -> dict:
    """An object nested `levels` deep: JSON parsers take 1024 levels, orjson writes only 254."""
    value: dict = {}
    for _ in range(levels):
        value = {"a": value}
    return value


# Where each dialect's converters copy a client's object as it is.
_COPIED = {
    "openai": ("tools", 0, "function", "parameters"),
    "responses": ("tools", 0, "parameters"),
    "anthropic": ("tools", 0, "input_schema"),
    "gemini": ("tools", 0, "functionDeclarations", 1, "parametersJsonSchema"),
}
# Where each channel dialect's answer holds an object the converters copy (and in its stream).
_ANSWERED = {
    "openai": ((("choices", 0, "message", "tool_calls", 0, "function", "arguments")),
               (4, "choices", 0, "delta", "tool_calls", 0, "function", "arguments")),
    "anthropic": (("content", 3, "input"), (10, "content_block", "input")),
    "gemini": (("candidates", 0, "content", "parts", 2, "functionCall", "args"),
               (2, "candidates", 0, "content", "parts", 2, "functionCall", "args")),
    "responses": (("output", 0, "content", 0, "annotations"), (2, "response", "output", 0, "content", 0, "annotations")),
}


@pytest.mark.parametrize(("route", "channel"), PAIRS)
def test_objects_nested_deeper_than_json_encoders_write(proxy, route, channel) -> None:
    """JSON nested 500 levels deep parses, but orjson cannot write it again: in a client's field
    a converter copies, beside the first message (which sticky routing encodes), in a field
    nobody reads, or in what the upstream answers (its error too; a Responses answer the proxy
    keeps), it is never a 500."""
    proxy.upstream.reset()
    body = ROUTES[route].request(MODELS[channel])
    inner = body.get("generateContentRequest", body)
    copied = replaced(inner, _COPIED[ROUTES[route].dialect], _deep(500))
    first = next(key for key in ("messages", "input", "contents") if key in inner)
    beside = replaced({k: v for k, v in inner.items() if k != "stream_options"}, (first, 0, "extra"), _deep(500))
    for sent in (copied, beside, {**inner, "unknown": _deep(500)}):
        # (a 502 when the client's deep object is dropped on the way up, then echoed: Responses' tools)
        served(proxy, route, channel, {"generateContentRequest": sent} if inner is not body else sent, may_fail=True)
    if route in ("count_tokens", "countTokens") and channel == "openai":
        return
    answer, events = VALID[channel]
    whole, streamed = _ANSWERED[channel]
    deep = json.dumps(_deep(500)) if channel == "openai" else _deep(500)  # OpenAI's arguments are text
    if route not in ("count_tokens", "countTokens"):
        proxy.upstream.answer[channel] = replaced(answer, whole, deep)
        proxy.upstream.events[channel] = replaced(events, streamed, deep)
        served(proxy, route, channel, body, may_fail=True)
    proxy.upstream.reset()
    proxy.upstream.answer[channel], proxy.upstream.status = {"error": {"message": "no", "detail": _deep(500)}}, 400
    served(proxy, route, channel, body, may_fail=True)
    proxy.upstream.reset()


def test_a_sum_of_a_clients_numbers_past_64_bits(proxy) -> None:
    """Anthropic wants max_tokens above the thinking budget: the two added up must still encode."""
    proxy.upstream.reset()
    body = {"model": MODELS["anthropic"], "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 10,
            "thinking": {"type": "enabled", "budget_tokens": 2**64 - 1}}
    error = served(proxy, "chat", "anthropic", body)
    assert error["error"]["code"] == "untranslatable", error


@pytest.mark.parametrize(("route", "channel", "field", "value", "path"), [
    ("chat", "openai", "stream", "true", "stream"),
    ("chat-stream", "openai", "stream_options", "x", "stream_options"),
    ("chat-stream", "openai", "stream_options", {"include_usage": "yes"}, "stream_options.include_usage"),
    ("responses", "responses", "stream", 1, "stream"),
    ("messages", "anthropic", "stream", "yes", "stream"),
])
def test_what_the_forwarder_reads_is_checked_on_same_dialect_requests(proxy, route, channel, field, value, path) -> None:
    """Untranslated requests go upstream as sent, but a `stream` the proxy would read otherwise
    than the upstream (a string is no `true` to it) is refused, naming the field."""
    proxy.upstream.reset()
    body = {**ROUTES[route].request(MODELS[channel]), field: value}
    error = served(proxy, route, channel, body)
    assert _NAMED.search(_message(error)).group(1) == path, error
    assert proxy.upstream.seen == []


@pytest.mark.parametrize("then", ["responses", "openai", "anthropic"])
def test_a_kept_answer_with_wrong_types_continues_a_conversation(proxy, then) -> None:
    """A Responses answer the proxy keeps (from a channel that serves the API itself, as it came)
    is the start of the next request that names it: wrong types in it are never a 500 there."""
    answer, _ = VALID["responses"]
    every = [path for path in paths(answer) if path != ("id",)]

    @given(spoiled(answer, every))
    def continued(case) -> None:
        changed, _ = case
        proxy.upstream.reset()
        proxy.upstream.answer["responses"] = {**changed, "id": "resp_kept"}
        served(proxy, "responses", "responses", ROUTES["responses"].request(MODELS["responses"]), may_fail=True)
        proxy.upstream.reset()
        body = {**ROUTES["responses"].request(MODELS[then]), "previous_response_id": "resp_kept"}
        served(proxy, "responses", then, body, may_fail=True)

    continued()


def test_a_deep_request_that_continues_a_kept_answer_is_never_a_500(proxy) -> None:
    """The kept conversation is joined to the request and written again for a channel that
    serves the Responses API itself: nested deeper than orjson writes, that is a 400 too_deep."""
    proxy.upstream.reset()
    proxy.upstream.answer["responses"] = {**VALID["responses"][0], "id": "resp_kept"}
    served(proxy, "responses", "responses", ROUTES["responses"].request(MODELS["responses"]))
    proxy.upstream.reset()
    body = {**ROUTES["responses"].request(MODELS["responses"]), "previous_response_id": "resp_kept",
            "metadata": {"note": "x"}, "unknown": _deep(300)}
    error = served(proxy, "responses", "responses", body)
    assert error["error"]["code"] == "too_deep", error
    proxy.upstream.reset()
