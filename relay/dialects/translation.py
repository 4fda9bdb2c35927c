"""A client dialect on a channel of another: the two halves of the pivot, composed.

`between(client, channel)` is the translation from one to the other (None where none exists);
its functions are the client's half and the channel's half of `record.Pivot` run one after the
other. With OpenAI chat on either side, that side's half is the identity and is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.shapes import check

from .record import Dialect, StreamTranslator


class _Chain:
    """Stream events through two translators: channel events -> chat chunks -> client events."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, inner: StreamTranslator, outer: StreamTranslator) -> None:
        self._inner = inner
        self._outer = outer

    def feed(self, data: dict) -> list[dict]:
        out: list[dict] = []
        for chunk in self._inner.feed(data):
            out += self._outer.feed(chunk)
        return out

    def finish(self) -> list[dict]:
        out: list[dict] = []
        for chunk in self._inner.finish():
            out += self._outer.feed(chunk)
        return out + self._outer.finish()

    def __getattr__(self, name: str):
        return getattr(self._outer, name)  # what the client's half exposes (a stored response)


@dataclass(frozen=True, slots=True)
class Translation:
    client: Dialect
    channel: Dialect

    def to_chat(self, body: dict, model: str, streaming: bool = False) -> dict:
        """The client's request in the pivot form (the client's own body when it speaks chat).
        `streaming`: the route streams whatever the body says (Gemini's streamGenerateContent)."""
        convert = self.client.pivot.request_to_chat
        if convert is None:
            return body
        chat = convert(body, model)
        if streaming and not chat.get("stream"):
            chat["stream"] = True
            chat["stream_options"] = {"include_usage": True}
        return chat

    def check(self, body: dict) -> None:
        """A 400 naming the first field of the client's request (a count request's wrapper
        included) whose type the conversion cannot read."""
        if self.client.pivot.request_shape is not None:
            check(self.client.pivot.request_shape, body)

    def request(self, chat: dict, model: str) -> dict:
        """The pivot request in the channel's dialect, for the upstream `model`."""
        convert = self.channel.pivot.request_from_chat
        return convert(chat, model) if convert is not None else chat

    def endpoint(self, chat: dict) -> str:
        return self.channel.pivot.endpoint(chat)

    def answer(self, answer: dict, model: str, body: dict) -> dict:
        """The channel's whole answer in the client's dialect; `model` is the name the client asked."""
        to_chat = self.channel.pivot.answer_to_chat
        chat = to_chat(answer, model) if to_chat is not None else answer
        from_chat = self.client.pivot.answer_from_chat
        return from_chat(chat, model, body) if from_chat is not None else chat

    def stream(self, body: dict, chat: dict, model: str) -> StreamTranslator:
        """A fresh translator of the channel's stream events into the client's. `body` is the
        client's request, `chat` its pivot form."""
        to_chat = self.channel.pivot.stream_to_chat
        from_chat = self.client.pivot.stream_from_chat
        inner = to_chat(chat, model) if to_chat is not None else None
        outer = from_chat(body, model) if from_chat is not None else None
        if inner is None:
            return outer
        return inner if outer is None else _Chain(inner, outer)


def between(client: Dialect, channel: Dialect) -> Translation | None:
    """How a client of one dialect is served by a channel of another; None when they are the
    same (nothing to translate) or one of them has no way to or from the pivot."""
    if client is channel:
        return None
    if not (client.pivot.is_chat or client.pivot.request_to_chat is not None) or channel.pivot.endpoint is None:
        return None
    return Translation(client, channel)
