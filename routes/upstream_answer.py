"""What the upstream answered, passed on: an error answer read as the client's failure, the pipe
a stream goes through, a whole answer (translated or not), and the usage metered from them."""

from __future__ import annotations

import httpx
import orjson

from relay import headers as header_rules
from relay.config import Channel
from relay.dialects.translation import Translation
from relay import errors
from relay.errors import ProxyError, UpstreamFailure, redact, upstream_message
from relay.planner import Attempt
from relay.records import Call
from relay.streams import Events, JsonArray, Raw, Translated, TranslatedArray
from relay.transport import header
from relay.usage import Meter, Usage, answer_chars, estimate_tokens, request_chars

from .answer import JSON, Answer, log, read_all
from .table import COUNT, GENERATE
from .upstream_request import encoded

_ERROR_BODY_LIMIT = 64 * 1024


class UpstreamAnswers:
    """The part of `Forward` that passes an upstream's answer on."""

    async def _failure(self, response: httpx.Response, attempt: Attempt, translation,
                       call: Call) -> tuple[ProxyError, bytes]:
        """The upstream's error answer as the client's failure, and the body it came with."""
        raw = b""
        try:
            raw = await read_all(response, self.rt.alarms, self.proxy.idle_timeout_s, _ERROR_BODY_LIMIT)
        except (httpx.HTTPError, TimeoutError):
            pass
        finally:
            await response.aclose()
        status = response.status_code
        if translation is not None and status == 529:
            status = 503  # Anthropic's "overloaded" has no name in other dialects
        message = call.scrub(upstream_message(raw))
        headers = {}
        retry_after = header(response.headers, b"retry-after")
        if retry_after is not None:
            headers["retry-after"] = retry_after
        passable = _error_body(raw) if translation is None else None
        return UpstreamFailure(
            status, message,
            raw=call.scrub_bytes(passable) if passable is not None else None,
            family=attempt.channel.dialect.family, headers=headers,
        ), raw

    def _pipe(self, response: httpx.Response, channel: Channel, translation: Translation | None, payload,
              chat: dict | None, model: str, drop_usage_chunk: bool, client_sse: bool, meter: Meter, call: Call):
        """How the answer's body is passed on: a pipe for `stream`, or None to read it whole."""
        dialect = self.row.dialect
        ctype = header(response.headers, b"content-type") or ""
        if ctype.startswith("text/event-stream"):
            if translation is not None:
                pipe = Translated if client_sse else TranslatedArray
                return pipe(channel.dialect, dialect, meter, translation.stream(payload, chat, model))
            if not client_sse:
                return JsonArray(dialect, meter, call.scrub_bytes)
            expect = drop_usage_chunk or dialect.asks_usage(payload)
            return Events(dialect, meter, drop_usage_chunk, expect, call.scrub_bytes)
        if ctype.startswith("application/json") and not call.stream:
            return None
        return Raw()

    async def _whole(self, response: httpx.Response, translation: Translation | None, meter: Meter, model: str,
                     payload, answer: Answer) -> dict | None:
        """Sends a whole answer on; returns it as the client sees it, parsed (None if not JSON)."""
        call = answer.call
        try:
            data = await read_all(response, self.rt.alarms, self.proxy.idle_timeout_s)
        except httpx.DecodingError as exc:  # compressed although identity was asked, and broken
            raise ProxyError(502, str(exc), code="bad_upstream_answer") from None
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            meter.answer(parsed)
            if translation is not None:
                try:
                    parsed = self._translated_answer(translation, parsed, model, payload)
                    data = orjson.dumps(parsed)
                except (RecursionError, orjson.JSONEncodeError):  # parsers read 1024 levels, orjson writes 254
                    raise ProxyError(502, "The answer is nested too deeply to be translated",
                                     code="bad_upstream_answer") from None
            elif parsed.get("error"):
                data = call.scrub_bytes(data)  # an error under a 200 may quote the key it was sent
        elif translation is not None:
            raise ProxyError(502, "The upstream answered with a body that is not JSON", code="bad_upstream_answer")
        else:
            data = call.scrub_bytes(data)
        meter_answer(call, meter, payload, parsed, self.row.does == GENERATE)
        out = JSON if translation is not None else header_rules.downstream(response.headers.raw, call.secrets)
        await answer.whole(response.status_code, out, data)
        return parsed if isinstance(parsed, dict) and not parsed.get("error") else None

    def _translated_answer(self, translation: Translation, parsed: dict, model: str, payload) -> dict:
        if self.row.does != COUNT:
            return translation.answer(parsed, model, payload)
        tokens = translation.channel.counting.read(parsed)
        if tokens is None:
            raise ProxyError(502, "The upstream's token count could not be read", code="bad_upstream_answer")
        return self.row.dialect.counting.reply(tokens)


def meter_stream(call: Call, meter: Meter, payload) -> None:
    """A stream's usage: the upstream's final word, else what the client was sent, estimated
    (a cut or aborted stream: message_start's count of 1 output token is not the answer)."""
    if meter.final:
        call.usage = meter.usage
        return
    if payload is None and meter.usage is None:
        return  # not a model's answer (a binary body): nothing to estimate
    reported = meter.usage or Usage()
    call.estimated = True
    call.usage = Usage(
        reported.input_tokens or estimate_tokens(request_chars(payload or {})),
        max(reported.output_tokens, meter.estimate_output()),
        reported.cached_input_tokens, reported.reasoning_tokens, reported.cache_write_tokens,
    )


def meter_answer(call: Call, meter: Meter, payload, parsed, generated: bool) -> None:
    """A whole answer's usage; a model's answer without usage that can be trusted (none, a
    negative count, an empty or non-JSON body) is estimated from the request and the text."""
    call.usage = meter.usage
    if meter.usage is None and generated and isinstance(payload, dict):
        call.estimated = True
        text = answer_chars(parsed) if isinstance(parsed, dict) else 0
        call.usage = Usage(estimate_tokens(request_chars(payload)), estimate_tokens(text))


def _error_body(raw: bytes) -> bytes | None:
    """An upstream's error body fit to pass on as it is (compact: it may end up on a `data:`
    line of an event stream), or None when it is not a JSON error object."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return encoded(data) if isinstance(data, dict) and "error" in data else None


def unreachable(exc: Exception, channel: Channel, key: str, request_id: str = "") -> ProxyError:
    """A request that got no answer head at all: the details (channel, the error with its host)
    go to the log, the client learns only which dialect's upstream failed and how."""
    log.warning("request %s: channel %r (%s) gave no answer: %s", request_id, channel.name, channel.type,
                redact(f"{type(exc).__name__}: {exc}", key))
    return errors.unreachable(exc, channel.dialect.name)


