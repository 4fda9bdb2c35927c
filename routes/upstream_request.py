"""Each attempt's upstream request: the client's body as the channel takes it (translated,
its model mapped, OpenAI's usage chunk asked for), at the channel's URL, with the headers
rewritten; and a conversation's fingerprint for sticky routing."""

from __future__ import annotations

import hashlib

import httpx
import orjson

from relay import bodies, headers as header_rules
from relay.auth import Caller
from relay.dialects.translation import Translation
from relay.errors import ProxyError
from relay.planner import Attempt
from relay.upstream import url as upstream_url

from .answer import JSON
from .table import COUNT


class UpstreamRequests:
    """The part of `Forward` that builds what goes upstream."""

    def _affinity(self, caller: Caller, payload, tiers) -> bytes | None:
        """A conversation's fingerprint: the same system prompt and first message, same key."""
        if not self.proxy.sticky or caller.passthrough or payload is None:
            return None
        if len(tiers[0]) == 1 and len(tiers[0][0].keys) == 1:
            return None
        head = conversation_head(payload)
        if head is None:
            return None
        # The first 4 KB decide: enough to tell conversations apart, and a 100 KB document in
        # the first message costs no more to hash than a greeting.
        head_json = encoded(head)
        if head_json is None:
            return None
        fingerprint = head_json[:4096]
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
                if changes and (content := encoded({**payload, **changes})) is None:
                    raise too_deep()
            elif row.model_from == "form" and upstream_model != model:
                content = bodies.replace_form_model(body, content_type(scope), upstream_model)
            query = channel.dialect.upstream_query(endpoint, query)
        target = upstream_url(channel, endpoint, upstream_model, query, relay, self.token_prefix)
        hdrs = header_rules.upstream(scope["headers"], channel, attempt.key if relay else None, self.token_prefix)
        if translation is not None:
            hdrs = [(n, v) for n, v in hdrs if n != b"content-type"] + JSON
        return self.rt.upstream.request(row.method, target, hdrs, content), drop_usage_chunk, chat


def too_deep() -> ProxyError:
    return ProxyError(400, "The request is nested too deeply to be forwarded", code="too_deep")


def conversation_head(payload: dict):
    for field in ("messages", "contents", "input"):
        items = payload.get(field)
        if isinstance(items, list) and items:
            system = payload.get("system") or payload.get("systemInstruction") or payload.get("instructions")
            return [system, items[0]] if system is not None else items[:2]
    return None


def encoded(value: object) -> bytes | None:
    """`value` as JSON; None when it is nested deeper than orjson writes (254 levels: parsers read
    1024, so a hostile body or answer can be read and not written again)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return None


def content_type(scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.decode("latin-1")
    return ""

