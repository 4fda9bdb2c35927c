"""OpenAI's Responses API (`/v1/responses`): Codex CLI and the OpenAI SDK's `client.responses`.

Part of OpenAI's family (its errors, usage and model lists are OpenAI's), with a request, answer
and event stream of its own. A channel serves it natively when it says so (`responses = true`,
SPEC §6); elsewhere it goes through the pivot: `responses_client.py` turns a request into a chat
request and a chat answer into a `response`, `responses_client_stream.py` chat chunks into the
Responses events (with `sequence_number`s).
"""

from __future__ import annotations

import orjson

from relay import sse
from relay.errors import ProxyError

from . import openai, responses_client, responses_client_stream
from .fields import RESPONSES_READ, RESPONSES_REQUEST
from .record import Dialect, Pivot, whole_number


def encode(event: dict) -> bytes:
    return sse.encode(orjson.dumps(event), event.get("type"))


def error_event(err: ProxyError, sent: int) -> bytes:
    # ResponseErrorEvent's fields, and the `error` object the SDK raises an APIError for. Every
    # event has the next sequence_number: after `sent` events (numbered from 0), it is `sent`.
    body = openai.error_body(err)
    event = {"type": "error", "code": err.code, "message": err.message, "param": err.param,
             "sequence_number": sent, **body}
    return encode(event)


RESPONSES = Dialect(
    name="responses",
    family="openai",
    error_body=openai.error_body,
    error_event=error_event,
    encode=encode,
    stream_tail=b"",
    client_sse=lambda query: True,
    asks_usage=lambda body: True,  # `response.completed` carries it
    meter=openai.OpenAIMeter,
    stream_end=openai.stream_end,
    stream_failure=openai.stream_failure,
    marked=openai.marked,
    models_list=openai.models_list,
    models_path="/models",
    max_output=lambda body: whole_number(body.get("max_output_tokens")),
    read_shape=RESPONSES_READ,
    pivot=Pivot(
        request_shape=RESPONSES_REQUEST,
        request_to_chat=responses_client.request,
        answer_from_chat=responses_client.response,
        stream_from_chat=responses_client_stream.stream,
    ),
)
