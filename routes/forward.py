"""The one generic forwarder behind every row of the route table.

Per request: find the caller (auth), read the body and its model, list the candidate channel
keys, and try them in order until one answers; then send that answer on, streamed as it
arrives, metering usage on the way. Failures before the first byte of an answer move on to the
next candidate (SPEC §6); after it, the stream ends with an error event (§9).
"""

from __future__ import annotations

import asyncio

import httpx
import orjson

from relay import bodies, shapes, stored
from relay.auth import Caller, check_model, find_key
from relay.config import Channel
from relay.dialects import Dialect
from relay.dialects.translation import between
from relay.admission import refusal, store_down, token_ask
from relay.edge import client_ip, header_map
from relay.errors import ProxyError
from relay import intake
from relay.intake import ClientGone
from relay.planner import Attempt
from relay.records import Call
from relay.runtime import Runtime
from relay.state import Ask, StoreUnavailable
from relay.usage import estimate_tokens, request_chars

from .answer import JSON, SHUTTING_DOWN, Answer, HeadPings, Watcher, log, stream
from .passthrough import StreamedPassthrough
from .table import COUNT, Row
from .upstream_answer import UpstreamAnswers, meter_stream, unreachable
from .upstream_request import UpstreamRequests, encoded, too_deep

# The key's own failures: it rests (fleet-wide), the next candidate is tried.
_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))


class Forward(UpstreamRequests, UpstreamAnswers, StreamedPassthrough):
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
        if not rt.started:
            await rt.start()  # a host that sends no lifespan events
        task = asyncio.current_task()
        rt.open_calls[task] = call  # (from here, the finally below settles and records it)
        watcher = None
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
        except StoreUnavailable:  # (a closed fleet whose store is down, wherever it was asked)
            await answer.error(dialect, store_down())
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
        admission = await rt.fleet.admit(ask)
        if not admission.ok:
            raise refusal(admission, caller.token, dialect)
        call.admitted = True

    async def _admit_address(self, call: Call, dialect: Dialect) -> None:
        """`[passthrough] rpm_per_ip`, for the fleet: requests with a provider's key, by client address."""
        ask = Ask(request_id=call.request_id, token=None, ip=call.client_ip or "unknown",
                  ip_rpm=self.rt.config.passthrough_rpm_per_ip)
        admission = await self.rt.fleet.admit(ask)
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
            kept = stored.load(await rt.fleet.get_response(caller.token.name, previous))
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
        continued: dict[bool, tuple[dict, bytes]] = {}  # the request joined to a kept answer
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
                native = translation is None
                if native not in continued:  # (the same for every channel of one kind)
                    joined = stored.continued(payload, kept, native=native)
                    joined_body = encoded(joined) if native else body
                    if joined_body is None:
                        raise too_deep()
                    continued[native] = joined, joined_body
                sent, sent_body = continued[native]
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
                        meter_stream(call, meter, sent)
                    shown = pipe.final() if pipe.complete and not pipe.failed else None
            finally:
                await response.aclose()
            if keep and isinstance(shown, dict) and isinstance(shown.get("id"), str):
                await self._keep(caller, sent, shown, native=translation is None)
            return
        if failure is None:
            failure = ProxyError(503, f"No upstream could serve the model '{model}'", code="no_upstream")
        await answer.error(row.dialect, failure)

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
