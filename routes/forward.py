"""The one generic forwarder behind every row of the route table.

Per request: find the caller (auth), read the body and its model, list the candidate channel
keys, and try them in order until one answers; then send that answer on, streamed as it
arrives, metering usage on the way. Failures before the first byte of an answer move on to the
next candidate (SPEC §6); after it, the stream ends with an error event (§9).
"""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import orjson

from relay import bodies, errors, headers as header_rules, shapes, stored
from relay.auth import Caller, check_model, find_key
from relay.config import Channel
from relay.dialects import Dialect
from relay.dialects.translation import Translation, between
from relay.admission import refusal, store_down, token_ask
from relay.edge import client_ip, header_map
from relay.errors import ProxyError, UpstreamFailure, redact, upstream_message
from relay import intake
from relay.intake import ClientGone
from relay.planner import Attempt
from relay.records import Call
from relay.runtime import Runtime
from relay.state import Ask, StoreUnavailable
from relay.streams import Events, JsonArray, Raw, Translated, TranslatedArray
from relay.transport import header
from relay.upstream import url as upstream_url
from relay.usage import Meter, Usage, answer_chars, estimate_tokens, request_chars

from .answer import JSON, SHUTTING_DOWN, Answer, HeadPings, Watcher, log, read_all, stream
from .table import COUNT, GENERATE, Row

# The key's own failures: it rests (fleet-wide), the next candidate is tried.
_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_ERROR_BODY_LIMIT = 64 * 1024


class Forward:
    def __init__(self, row: Row, rt: Runtime) -> None:
        self.row = row
        self.rt = rt
        self.proxy = rt.config.proxy
        self.token_prefix = self.proxy.token_prefix.encode()

    def dialect_of(self, headers: dict[str, str], query: bytes = b"") -> Dialect:
        return self.row.dialect

    async def __call__(self, scope, receive, send) -> None:
        rt = self.rt
        headers = header_map(scope["headers"])
        dialect = self.dialect_of(headers, scope["query_string"])
        call = Call(scope["aurax.request_id"], dialect.name, client_ip(scope, headers, self.proxy))
        wrapped, raw = scope.get("aurax.sends", (None, None))
        answer = Answer(send, call, raw if send is wrapped else None)
        task = asyncio.current_task()
        rt.open_calls[task] = call
        watcher = None
        if not rt.started:
            await rt.start()  # a host that sends no lifespan events
        try:
            key = find_key(headers, scope["query_string"])
            if key:
                call.secrets.append(key)
            caller = rt.auth.identify(key, dialect.family)
            self._describe(call, caller)
            if caller.passthrough and rt.config.passthrough_rpm_per_ip is not None:
                await self._admit_address(call, dialect)
            if caller.passthrough and self.row.model_from and intake.streams(headers):
                watchers = []
                body = intake.Streamed(rt.intake, receive, headers,
                                       lambda: watchers.append(Watcher(receive, call, task, rt.alarms)))
                try:
                    await self.serve_streamed(scope, body, answer)
                finally:
                    body.close()
                    watcher = watchers[0] if watchers else None
            else:
                async with rt.intake.body(receive, headers) as body:  # counted until the request is over
                    watcher = Watcher(receive, call, task, rt.alarms)
                    await self.serve(scope, headers, caller, body, answer)
        except ProxyError as err:
            await answer.error(dialect, err)
        except ClientGone:
            call.status, call.error = 499, "client disconnected"
        except asyncio.CancelledError:
            if call.client_gone:
                task.uncancel()
                call.status, call.error = 499, "client disconnected"
            elif call.stopping:
                task.uncancel()
                await answer.error(dialect, SHUTTING_DOWN)
            else:
                raise
        finally:
            del rt.open_calls[task]
            if watcher is not None:
                watcher.stop()
            rt.finish(call)

    async def admit(self, call: Call, caller: Caller, dialect: Dialect, model: str | None, payload) -> None:
        """The fleet's admission of a token's request (revocation, rpm, tpm, a reservation against
        its balance): one round trip to the store at most; refused in the client's dialect."""
        rt = self.rt
        reserve = model if self.row.does != COUNT else None  # counting tokens costs nothing
        ask = token_ask(call.request_id, caller.token, caller.group, rt.config, dialect, reserve, payload)
        try:
            admission = await rt.fleet.admit(ask)
        except StoreUnavailable:
            raise store_down() from None
        if not admission.ok:
            raise refusal(admission, caller.token, dialect)
        call.admitted = True

    async def _admit_address(self, call: Call, dialect: Dialect) -> None:
        """`[passthrough] rpm_per_ip`, for the fleet: requests with a provider's key, by client address."""
        ask = Ask(request_id=call.request_id, token=None, ip=call.client_ip or "unknown",
                  ip_rpm=self.rt.config.passthrough_rpm_per_ip)
        try:
            admission = await self.rt.fleet.admit(ask)
        except StoreUnavailable:
            raise store_down() from None
        if not admission.ok:
            raise refusal(admission, None, dialect)

    @staticmethod
    def _describe(call: Call, caller: Caller) -> None:
        if caller.passthrough:
            call.passthrough = True
        else:
            call.token = caller.token
            call.group = caller.group.name
            call.multiplier = caller.group.multiplier

    def _model(self, scope, headers: dict[str, str], body: bytes) -> tuple[dict | None, str]:
        source = self.row.model_from
        if source == "body":
            payload = bodies.json_object(body)
            return payload, bodies.json_model(payload)
        if source == "form":
            return None, bodies.form_model(body, headers.get("content-type", ""))
        return bodies.json_object(body), bodies.checked_model(scope["path_params"]["model"])

    # -- choosing and calling the upstream -------------------------------------------------

    def _tiers(self, caller: Caller, model: str) -> tuple[tuple[Channel, ...], ...]:
        dialect = self.row.dialect
        if caller.passthrough:
            return ((self.rt.passthrough[dialect.family],),)
        tiers = self.rt.planner.tiers(caller.token.group, model)
        if all(c.serves(dialect) for tier in tiers for c in tier):
            return tiers
        usable = tuple(
            t for t in (tuple(c for c in tier if self._serves(c)) for tier in tiers) if t
        )
        return usable

    def _serves(self, channel: Channel) -> bool:
        """Whether `channel` can serve this row: natively, or through translation."""
        if channel.serves(self.row.dialect):
            return True
        return bool(self.row.does) and between(self.row.dialect, channel.dialect) is not None

    async def serve(self, scope, headers: dict[str, str], caller: Caller, body: bytes, answer: Answer) -> None:
        """Relay the request: try the candidate channel keys in turn until one answers."""
        row, rt, call = self.row, self.rt, answer.call
        payload, model = self._model(scope, headers, body)
        call.model = model
        if payload is not None and row.dialect.read_shape is not None:
            shapes.check(row.dialect.read_shape, payload)
        check_model(caller, model)
        tiers = self._tiers(caller, model)
        if not tiers:
            where = f"group '{caller.token.group}'" if caller.token else "passthrough"
            raise ProxyError(
                404, f"The model '{model}' is not available in {where}", code="model_not_found",
                param="model",
            )
        if not caller.passthrough:
            await self.admit(call, caller, row.dialect, model, payload)
        if row.does == COUNT:
            tiers = tuple(t for t in (tuple(c for c in tier if self._counts_upstream(c)) for tier in tiers) if t)
            if not tiers:
                await self._estimate_count(payload, answer)  # no channel for this model can count
                return
        kept = None
        if row.keeps and not caller.passthrough and isinstance(previous := payload.get("previous_response_id"), str):
            kept = stored.load(await self._fleet_call(rt.fleet.get_response(caller.token.name, previous)))
            if kept is None:  # perhaps an upstream that keeps answers itself knows it
                tiers = tuple(t for t in (tuple(c for c in tier if c.serves(row.dialect)) for tier in tiers) if t)
                if not tiers:
                    raise stored.not_found(previous)
        keep = row.keeps and not caller.passthrough and payload.get("store") is not False
        streaming = self._streaming(payload)
        call.stream = streaming
        client_sse = streaming and row.dialect.client_sse(scope["query_string"])
        affinity = self._affinity(caller, payload, tiers)
        failure: ProxyError | None = None
        unreachable_channels: set[str] = set()
        for attempt in rt.planner.plan(tiers, affinity):
            if call.attempts == self.proxy.max_attempts:
                break
            channel = attempt.channel
            if channel.name in unreachable_channels:
                continue  # its other keys lead to the same unreachable host
            call.attempts += 1
            call.channel = channel.name
            if attempt.key and not caller.passthrough:
                call.secrets.append(attempt.key)
            call.upstream_model = channel.upstream_model(model)
            translation = None if channel.serves(row.dialect) else between(row.dialect, channel.dialect)
            sent, sent_body = payload, body
            if kept is not None:  # the kept conversation goes first
                sent = stored.continued(payload, kept, native=translation is None)
                sent_body = orjson.dumps(sent) if translation is None else body
            request, drop_usage_chunk, chat = self._request(scope, attempt, caller, sent, sent_body, model,
                                                            translation, streaming)
            try:
                if client_sse:
                    response = await self._open_with_pings(request, answer)
                else:
                    response = await rt.upstream.send(request)
            except (httpx.TransportError, TimeoutError) as exc:
                failure = unreachable(exc, channel, attempt.key, call.request_id)
                self._rest(attempt, caller)
                rt.metrics.attempt(channel.name, None)
                unreachable_channels.add(channel.name)
                continue
            rt.metrics.attempt(channel.name, response.status_code)
            if response.status_code >= 400:
                status = response.status_code
                failure, raw = await self._failure(response, attempt, translation, call)
                if caller.passthrough:
                    break
                if status in _RETRY_STATUSES or channel.dialect.key_refused(status, raw):
                    self._rest(attempt, caller)
                    continue
                if status == 403:
                    continue  # maybe this key lacks the access another has; the client may provoke 403s: no rest
                break
            try:
                call.billable = True  # an upstream answered: what it sends on is used, even if cut short
                meter = channel.dialect.meter()
                pipe = self._pipe(response, channel, translation, sent, chat, model, drop_usage_chunk,
                                  client_sse, meter, call)
                if pipe is None:
                    shown = await self._whole(response, translation, meter, model, sent, answer)
                else:
                    try:
                        await stream(response, pipe, answer, rt.alarms, self.proxy.keepalive_s,
                                     self.proxy.idle_timeout_s)
                    finally:
                        _meter_stream(call, meter, sent)
                    shown = pipe.final() if pipe.complete and not pipe.failed else None
            finally:
                await response.aclose()
            if keep and isinstance(shown, dict) and isinstance(shown.get("id"), str):
                await self._keep(caller, sent, shown, native=translation is None)
            return
        if failure is None:
            failure = ProxyError(503, f"No upstream could serve the model '{model}'", code="no_upstream")
        await answer.error(row.dialect, failure)

    async def serve_streamed(self, scope, body: intake.Streamed, answer: Answer) -> None:
        """A passthrough request with a large body (its own provider key): sent to the official
        API as the body arrives, never held whole. Nothing in it needs reading but what the
        record shows, taken from its first chunk."""
        row, rt, call = self.row, self.rt, answer.call
        channel = rt.passthrough[row.dialect.family]
        first = await body.first()
        if row.model_from == "path":
            model = bodies.checked_model(scope["path_params"]["model"])
        elif row.model_from == "form":
            model = bodies.sniff_form_model(first, _content_type(scope))
        else:
            model = bodies.sniff_model(first)
        call.model = model
        streaming = row.streams == "always" or row.streams == "flag" and bodies.sniff_stream(first)
        call.stream = streaming
        client_sse = streaming and row.dialect.client_sse(scope["query_string"])
        query = row.dialect.upstream_query(row.endpoint, scope["query_string"])
        target = upstream_url(channel, row.endpoint, model or "", query, False, self.token_prefix)
        hdrs = header_rules.upstream(scope["headers"], channel, None, self.token_prefix)
        request = rt.upstream.streaming_request(row.method, target, hdrs, body, body.length)
        call.attempts, call.channel = 1, channel.name
        try:
            response = await (self._open_with_pings(request, answer) if client_sse else rt.upstream.send(request))
        except (httpx.TransportError, TimeoutError) as exc:
            if isinstance(body.failure, (ProxyError, ClientGone)):
                raise body.failure from None  # the client's side failed first: that is what it hears
            raise unreachable(exc, channel, "", call.request_id) from None
        rt.metrics.attempt(channel.name, response.status_code)
        try:
            if response.status_code >= 400:
                failure, _ = await self._failure(response, Attempt(channel, 0), None, call)
                await answer.error(row.dialect, failure)
                return
            call.billable = True
            meter = channel.dialect.meter()
            pipe = self._pipe(response, channel, None, None, None, model or "", False, client_sse, meter, call)
            if pipe is None:
                await self._whole(response, None, meter, model or "", None, answer)
            else:
                await stream(response, pipe, answer, rt.alarms, self.proxy.keepalive_s, self.proxy.idle_timeout_s)
                call.usage = meter.usage
        finally:
            await response.aclose()

    async def _fleet_call(self, awaitable):
        try:
            return await awaitable
        except StoreUnavailable:
            raise store_down() from None

    async def _keep(self, caller: Caller, sent: dict, response: dict, native: bool) -> None:
        """Keeps a Responses answer for `previous_response_id`; a store that fails costs only that."""
        try:
            data = stored.record(sent, response, native)
        except orjson.JSONEncodeError:
            return  # nested deeper than orjson writes (a hostile input or answer): not kept
        try:
            await self.rt.fleet.put_response(caller.token.name, response["id"], data,
                                             self.rt.config.state.responses_ttl_h * 3600)
        except StoreUnavailable:
            log.warning("the state store could not keep response %s", response["id"])

    def _counts_upstream(self, channel: Channel) -> bool:
        """Whether `channel` counts tokens itself (natively, or at its own counting endpoint)."""
        return channel.serves(self.row.dialect) or channel.dialect.counting is not None

    async def _estimate_count(self, payload: dict, answer: Answer) -> None:
        """Claude Code and Gemini CLI count tokens before each turn; a channel that cannot (an
        OpenAI-compatible one) gets an estimate, marked as such."""
        answer.call.estimated = True
        counting = self.row.dialect.counting
        tokens = estimate_tokens(request_chars(counting.unwrap(payload)))
        await answer.whole(200, list(JSON), orjson.dumps(counting.reply(tokens)))

    def _rest(self, attempt: Attempt, caller: Caller) -> None:
        if not caller.passthrough:
            self.rt.planner.rest(attempt)

    def _streaming(self, payload: dict | None) -> bool:
        streams = self.row.streams
        return streams == "always" or streams == "flag" and payload is not None and payload.get("stream") is True

    def _affinity(self, caller: Caller, payload, tiers) -> bytes | None:
        """A conversation's fingerprint: the same system prompt and first message, same key."""
        if not self.proxy.sticky or caller.passthrough or payload is None:
            return None
        if len(tiers[0]) == 1 and len(tiers[0][0].keys) == 1:
            return None
        head = _conversation_head(payload)
        if head is None:
            return None
        # The first 4 KB decide: enough to tell conversations apart, and a 100 KB document in
        # the first message costs no more to hash than a greeting.
        encoded = _encoded(head)
        if encoded is None:
            return None
        fingerprint = encoded[:4096]
        return hashlib.blake2b(caller.token.name.encode() + b"\0" + fingerprint, digest_size=16).digest()

    def _request(self, scope, attempt: Attempt, caller: Caller, payload, body: bytes, model: str,
                 translation: Translation | None, streaming: bool) -> tuple[httpx.Request, bool, dict | None]:
        """The upstream request; whether the proxy asked for OpenAI's usage chunk on the client's
        behalf; the request's pivot form when it is translated."""
        row, channel = self.row, attempt.channel
        relay = not caller.passthrough
        upstream_model = channel.upstream_model(model)
        query = scope["query_string"]
        drop_usage_chunk = False
        chat = None
        if translation is not None:
            try:
                translation.check(payload)
                chat = translation.to_chat(payload if row.does != COUNT else row.dialect.counting.unwrap(payload),
                                           upstream_model, streaming)
                if row.does == COUNT:
                    counting = channel.dialect.counting
                    endpoint, translated = counting.endpoint, counting.request_from_chat(chat, upstream_model)
                else:
                    endpoint, translated = translation.endpoint(chat), translation.request(chat, upstream_model)
                    if channel.auto_cache and channel.dialect.auto_cache is not None:
                        translated = channel.dialect.auto_cache(translated)
                if not channel.stream_usage:
                    translated.pop("stream_options", None)
                content = orjson.dumps(translated)
            except (RecursionError, orjson.JSONEncodeError):
                # Content nested deeper than a converter recurses or orjson writes, or a number the
                # converters added to that outgrew 64 bits.
                raise ProxyError(400, "The request is nested too deeply, or holds too large a number, to be "
                                      "translated", code="untranslatable") from None
            query = channel.dialect.upstream_query(endpoint, b"")
        else:
            endpoint = row.endpoint
            content = body
            if row.model_from == "body":
                changes = {}
                if upstream_model != model:
                    changes["model"] = upstream_model
                if streaming and relay and channel.stream_usage and row.endpoint in (
                    "chat/completions", "completions"
                ):
                    options = payload.get("stream_options")
                    if not (isinstance(options, dict) and options.get("include_usage") is True):
                        changes["stream_options"] = {**(options if isinstance(options, dict) else {}),
                                                     "include_usage": True}
                        drop_usage_chunk = True
                if changes and (content := _encoded({**payload, **changes})) is None:
                    raise _TOO_DEEP
            elif row.model_from == "form" and upstream_model != model:
                content = bodies.replace_form_model(body, _content_type(scope), upstream_model)
            query = channel.dialect.upstream_query(endpoint, query)
        target = upstream_url(channel, endpoint, upstream_model, query, relay, self.token_prefix)
        hdrs = header_rules.upstream(scope["headers"], channel, attempt.key if relay else None, self.token_prefix)
        if translation is not None:
            hdrs = [(n, v) for n, v in hdrs if n != b"content-type"] + JSON
        return self.rt.upstream.request(row.method, target, hdrs, content), drop_usage_chunk, chat

    async def _open_with_pings(self, request: httpx.Request, answer: Answer) -> httpx.Response:
        """The upstream's answer head for an event-stream client: one that has waited
        `keepalive_s` gets `: ping` lines (and so its 200) while the upstream thinks."""
        upstream = self.rt.upstream
        pings = HeadPings(answer, self.rt.alarms, self.proxy.keepalive_s)
        try:
            response = await upstream.send(request)
        except BaseException:
            # (a cancellation here also ends the upstream request: it is this very task's)
            if (sending := pings.stop()) is not None:
                await sending
            raise
        if (sending := pings.stop()) is not None:
            try:
                await sending
            except BaseException:
                await response.aclose()  # left early: the upstream request must not stay open
                raise
        return response

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

    # -- the answer ------------------------------------------------------------------------

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
        _meter_answer(call, meter, payload, parsed, self.row.does == GENERATE)
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


_TOO_DEEP = ProxyError(400, "The request is nested too deeply to be forwarded", code="too_deep")


def unreachable(exc: Exception, channel: Channel, key: str, request_id: str = "") -> ProxyError:
    """A request that got no answer head at all: the details (channel, the error with its host)
    go to the log, the client learns only which dialect's upstream failed and how."""
    log.warning("request %s: channel %r (%s) gave no answer: %s", request_id, channel.name, channel.type,
                redact(f"{type(exc).__name__}: {exc}", key))
    return errors.unreachable(exc, channel.dialect.name)


def _conversation_head(payload: dict):
    for field in ("messages", "contents", "input"):
        items = payload.get(field)
        if isinstance(items, list) and items:
            system = payload.get("system") or payload.get("systemInstruction") or payload.get("instructions")
            return [system, items[0]] if system is not None else items[:2]
    return None


def _meter_stream(call: Call, meter: Meter, payload) -> None:
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


def _meter_answer(call: Call, meter: Meter, payload, parsed, generated: bool) -> None:
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
    return _encoded(data) if isinstance(data, dict) and "error" in data else None


def _encoded(value: object) -> bytes | None:
    """`value` as JSON; None when it is nested deeper than orjson writes (254 levels: parsers read
    1024, so a hostile body or answer can be read and not written again)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return None


def _content_type(scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.decode("latin-1")
    return ""

