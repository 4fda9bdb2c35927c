"""Model lists: what the caller's token may use, in its dialect's own list shape (SPEC §4).

With a proxy token the list is made here from the channels of the token's group; with a
provider key (passthrough) the official API answers.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import orjson

from relay import headers as header_rules, translate
from relay.auth import Caller
from relay.errors import ProxyError
from relay.streams import Raw
from relay.upstream import forwarded_query

from .answer import JSON, Answer, stream
from .forward import Forward, unreachable

_CREATED = 1700000000  # lists need a creation time; the upstream's is not known here
_GEMINI_METHODS = ["generateContent", "streamGenerateContent", "countTokens", "embedContent"]


class Models(Forward):
    def dialect_of(self, headers: dict[str, str], query: bytes = b"") -> str:
        # Anthropic's SDK, and google-genai on API version v1, list models at OpenAI's path.
        if self.row.dialect == "openai":
            if "anthropic-version" in headers:
                return "anthropic"
            if "x-goog-api-key" in headers or b"key=" in query:
                return "gemini"
        return self.row.dialect

    async def serve(self, scope, headers, caller: Caller, body: bytes, answer: Answer) -> None:
        dialect = answer.call.dialect
        model = scope.get("path_params", {}).get("model")
        if caller.passthrough:
            await self._passthrough(scope, dialect, model, answer)
            return
        names = self._names(caller, dialect)
        if model is not None:
            if model.startswith("models/"):
                model = model[len("models/"):]
            if model not in names:
                raise ProxyError(404, f"The model '{model}' does not exist or is not available to this token",
                                 code="model_not_found", param="model")
            names = [model]
        listing = _shape(dialect, names, single=model is not None)
        answer.call.status = 200
        await answer.whole(200, list(JSON), orjson.dumps(listing))

    def _names(self, caller: Caller, dialect: str) -> list[str]:
        token = caller.token
        names = set()
        for channel in self.rt.config.channels:
            if token.group not in channel.groups or not self._serves_dialect(channel, dialect):
                continue
            for name in channel.models.patterns:
                if not any(c in name for c in "*?[") and (token.models is None or token.models(name)):
                    names.add(name)
        return sorted(names)

    def _serves_dialect(self, channel, dialect: str) -> bool:
        return channel.dialect == dialect or translate.find(dialect, channel.dialect) is not None

    async def _passthrough(self, scope, dialect: str, model: str | None, answer: Answer) -> None:
        channel = self.rt.passthrough.get(dialect)
        if channel is None:
            raise ProxyError(401, f"No-login passthrough is off for {dialect} requests")
        path = {"openai": "/models", "anthropic": "/v1/models", "gemini": "/v1beta/models"}[dialect]
        target = channel.base_url + path + (f"/{quote(model, safe='')}" if model else "")
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


def _shape(dialect: str, names: list[str], single: bool) -> dict:
    if dialect == "anthropic":
        items = [
            {"type": "model", "id": n, "display_name": n, "created_at": "2025-01-01T00:00:00Z",
             "lifecycle": "active"}
            for n in names
        ]
        if single:
            return items[0]
        return {"data": items, "has_more": False,
                "first_id": names[0] if names else None, "last_id": names[-1] if names else None}
    if dialect == "gemini":
        items = [
            {"name": f"models/{n}", "version": "", "displayName": n, "description": "",
             "supportedGenerationMethods": _GEMINI_METHODS}
            for n in names
        ]
        return items[0] if single else {"models": items}
    items = [{"id": n, "object": "model", "created": _CREATED, "owned_by": "aurax"} for n in names]
    return items[0] if single else {"object": "list", "data": items}
