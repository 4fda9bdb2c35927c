"""Every field, every wrong JSON type, every translated pair, at the translation level (issue #16
item 7): the exhaustive complement of the sampled whole-app fuzz in test_fuzz_app.py.

Each field of a valid request, answer or stream gets each value of `WRONG` in turn and goes
through what the forwarder runs (type check, the client's half, the channel's half, encoding;
the channel's meter on what comes back). A request may be refused with a 400, an answer with an
error the client gets in its dialect; nothing may raise anything else.
"""

from __future__ import annotations

import orjson
import pytest

from fuzz_cases import KINDS, kind_of, paths, replaced, spelled
from fuzz_proxy import COUNTED, MODELS, ROUTES, VALID
from relay.dialects import BY_NAME
from relay.dialects.translation import between
from relay.errors import ProxyError

# Values of each JSON kind, chosen to reach what readers trip over: big integers (sums past 64
# bits), empty containers, and containers of every kind.
WRONG = {
    "null": [None],
    "boolean": [True],
    "integer": [-1, 2**63],
    "number": [1.5],
    "string": ["", "x"],
    "array": [[], [None, 1, "x", [], {}]],
    "object": [{}, {"type": 1, "text": {}, "content": 2}],
}
COUNTING = ("count_tokens", "countTokens")
# Client routes, each on the channel dialects that translate it (the JSON-array stream differs
# from the SSE one only in framing; an OpenAI channel cannot count tokens: the proxy estimates).
TRANSLATED = [(route, channel) for route, r in ROUTES.items() if not route.endswith("-array")
              for channel in ("openai", "anthropic", "gemini")
              if r.dialect != channel and not (route in COUNTING and channel == "openai")]


def variants(document: object):
    """(path, kind, a copy of `document` with a value of another kind at path), for every path."""
    for path in paths(document):
        original = kind_of(_at(document, path))
        for kind in KINDS:
            if kind != original:
                for value in WRONG[kind]:
                    yield path, kind, replaced(document, path, value)


def _at(document: object, path: tuple) -> object:
    for key in path:
        document = document[key]  # type: ignore[index]
    return document


class Pair:
    """A client route on a channel dialect, run the way routes/forward.py runs it."""

    def __init__(self, route: str, channel: str) -> None:
        self.route = ROUTES[route]
        self.client, self.channel = BY_NAME[self.route.dialect], BY_NAME[channel]
        self.translation = between(self.client, self.channel)
        self.model = MODELS[channel]
        self.counting = route in COUNTING
        self.body = self.route.request(self.model)
        self.streaming = self.route.streams == "sse"

    def request(self, body: dict) -> dict:
        """The pivot form of `body` (the upstream request is made and encoded on the way)."""
        t = self.translation
        t.check(body)
        streaming = self.streaming or body.get("stream") is True
        chat = t.to_chat(body if not self.counting else self.client.counting.unwrap(body), self.model, streaming)
        if self.counting:
            orjson.dumps(self.channel.counting.request_from_chat(chat, self.model))
        else:
            orjson.dumps(t.request(chat, self.model))
        return chat

    def answer(self, body: dict, chat: dict, answer: object = None, events: list | None = None) -> None:
        """The channel's answer (valid unless given) through the meter and back to the client."""
        valid_answer, valid_events = VALID[self.channel.name]
        meter = self.channel.meter()
        if self.counting:
            answer = COUNTED[self.channel.name] if answer is None else answer
            if isinstance(answer, dict):
                meter.answer(answer)
                tokens = self.channel.counting.read(answer)
                orjson.dumps(self.client.counting.reply(tokens if tokens is not None else 0))
        elif chat.get("stream"):
            translator = self.translation.stream(body, chat, self.model)
            for event in valid_events if events is None else events:
                if isinstance(event, dict):
                    meter.event(event)
                    self.channel.stream_end(event)
                    self.channel.stream_failure(event)
                    for out in translator.feed(event):
                        orjson.dumps(out)
            for out in translator.finish():
                orjson.dumps(out)
        else:
            answer = valid_answer if answer is None else answer
            if isinstance(answer, dict):
                meter.answer(answer)
                orjson.dumps(self.translation.answer(answer, self.model, body))


COUNT = {"requests": 0, "answers": 0, "fields": 0}  # for the README's figure (`pytest -s` prints it)


@pytest.fixture(scope="module", autouse=True)
def tally():
    yield
    print(f"\nfuzz, translation level: {COUNT['requests']} requests over {COUNT['fields']} request fields, "
          f"{COUNT['answers']} answers and streams, {len(TRANSLATED)} route/channel pairs")


@pytest.mark.parametrize(("route", "channel"), TRANSLATED)
def test_every_wrong_type_in_every_field_of_a_request(route, channel) -> None:
    pair = Pair(route, channel)
    pair.answer(pair.body, pair.request(pair.body))  # the valid request is served
    COUNT["fields"] += sum(1 for _ in paths(pair.body))
    for path, kind, body in variants(pair.body):
        COUNT["requests"] += 1
        try:
            chat = pair.request(body)  # type: ignore[arg-type]
        except ProxyError as err:
            assert err.status == 400, (spelled(path), kind, err.status)
            continue
        pair.answer(body, chat)  # type: ignore[arg-type]  (answers read the client's body too)


@pytest.mark.parametrize(("route", "channel"), TRANSLATED)
def test_every_wrong_type_in_every_field_of_an_answer(route, channel) -> None:
    pair = Pair(route, channel)
    chat = pair.request(pair.body)
    answer, events = VALID[channel]
    original = COUNTED[channel] if pair.counting else events if chat.get("stream") else answer
    for path, kind, changed in variants(original):
        COUNT["answers"] += 1
        try:
            if original is events:
                pair.answer(pair.body, chat, events=changed)  # type: ignore[arg-type]
            else:
                pair.answer(pair.body, chat, answer=changed)
        except ProxyError as err:
            assert err.status >= 429, (spelled(path), kind, err.status)  # an upstream's failure
