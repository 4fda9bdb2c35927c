"""Model lists: what the caller's token may use, in its dialect's own list shape (SPEC §4).

With a proxy token the list is made here from the channels of the token's group; with a
provider key (passthrough) the official API answers.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import orjson

from relay import headers as header_rules
from relay.auth import Caller
from relay.dialects import Dialect, guess
from relay.dialects.translation import between
from relay.errors import ProxyError
from relay.streams import Raw
from relay.upstream import forwarded_query

from .answer import JSON, Answer, stream
from .forward import Forward
from .upstream_answer import unreachable


class Models(Forward):
    def dialect_of(self, headers: dict[str, str], query: bytes = b"") -> Dialect:
        # Anthropic's SDK, and google-genai on API version v1, list models at OpenAI's path.
        return guess(self.row.path, headers, query)

    async def serve(self, scope, headers, caller: Caller, body: bytes, answer: Answer) -> None:
        dialect = self.dialect_of(headers, scope["query_string"])
        model = scope.get("path_params", {}).get("model")
        if caller.passthrough:
            await self._passthrough(scope, dialect, model, answer)
            return
        await self.admit(answer.call, caller, dialect, None, None)
        names = self._names(caller, dialect)
        if model is not None:
            if model.startswith("models/"):
                model = model[len("models/"):]
            if model not in names:
                raise ProxyError(404, f"The model '{model}' does not exist or is not available to this token",
                                 code="model_not_found", param="model")
            names = [model]
        listing = dialect.models_list(names, model is not None)
        answer.call.status = 200
        await answer.whole(200, list(JSON), orjson.dumps(listing))

    def _names(self, caller: Caller, dialect: Dialect) -> list[str]:
        token = caller.token
        names = set()
        for channel in self.rt.config.channels:
            if token.group not in channel.groups or not self._serves_dialect(channel, dialect):
                continue
            for name in channel.models.patterns:
                if not any(c in name for c in "*?[") and (token.models is None or token.models(name)):
                    names.add(name)
        return sorted(names)

    def _serves_dialect(self, channel, dialect: Dialect) -> bool:
        return channel.serves(dialect) or between(dialect, channel.dialect) is not None

    async def _passthrough(self, scope, dialect: Dialect, model: str | None, answer: Answer) -> None:
        await self.passthrough_get(scope, dialect, dialect.models_path + (f"/{quote(model, safe='')}" if model else ""),
                                   answer)

    async def passthrough_get(self, scope, dialect: Dialect, path: str, answer: Answer) -> None:
        """A GET with the client's own provider key, passed to the official API as it is."""
        channel = self.rt.passthrough.get(dialect.family)
        if channel is None:
            raise ProxyError(401, f"No-login passthrough is off for {dialect.name} requests")
        target = channel.base_url + path
        prefix = self.proxy.token_prefix.encode()
        query = forwarded_query(scope["query_string"], False, prefix)
        if query:
            target += "?" + query.decode("latin-1")
        hdrs = header_rules.upstream(scope["headers"], channel, None, prefix)
        request = self.rt.upstream.request("GET", target, hdrs, b"")
        try:
            response = await self.rt.upstream.send(request)
        except (httpx.TransportError, TimeoutError) as exc:
            raise unreachable(exc, channel, "", answer.call.request_id) from None
        try:
            await stream(response, Raw(), answer, self.rt.alarms, self.proxy.keepalive_s, self.proxy.idle_timeout_s)
        finally:
            await response.aclose()
