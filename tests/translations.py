"""One client dialect on one channel dialect, as the tests of a translation drive it: the
request in the client's dialect goes to the channel's, answers and streams come back."""

from __future__ import annotations

from types import SimpleNamespace

from relay.dialects import BY_NAME
from relay.dialects.translation import between


def pair(client: str, channel: str) -> SimpleNamespace:
    t = between(BY_NAME[client], BY_NAME[channel])
    assert t is not None, f"no translation from {client} to {channel}"
    return SimpleNamespace(
        request=lambda body, model: t.request(t.to_chat(body, model), model),
        response=lambda answer, model, body=None: t.answer(answer, model, body or {}),
        stream=lambda body, model: t.stream(body, t.to_chat(body, model), model),
        endpoint=lambda body: t.endpoint(t.to_chat(body, "m")),
        translation=t,
    )
