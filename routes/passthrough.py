"""Passthrough requests with large bodies: sent to the official API as the body arrives."""

from __future__ import annotations

import httpx

from relay import bodies, headers as header_rules, intake
from relay.errors import ProxyError
from relay.intake import ClientGone
from relay.planner import Attempt
from relay.upstream import url as upstream_url

from .answer import Answer, stream
from .upstream_answer import unreachable
from .upstream_request import content_type


class StreamedPassthrough:
    """The part of `Forward` that serves a passthrough request without holding its body."""

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
            model = bodies.sniff_form_model(first, content_type(scope))
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

