"""Header rewriting between the client and an upstream: pure functions over ASGI header lists.

Names arrive lower-case (ASGI guarantees it for requests; answers are lowered here).
"""

from __future__ import annotations

import functools

from .config import Channel

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
     b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"proxy-connection"}
)
CREDENTIALS = frozenset({b"authorization", b"x-api-key", b"api-key", b"x-goog-api-key"})

# Never sent upstream: transport details, the client's network identity, browser-only headers
# (Anthropic refuses requests that carry a browser `origin`), cookies.
_DROP_UP = HOP_BY_HOP | {
    b"host", b"content-length", b"cookie", b"cookie2", b"accept-encoding", b"origin", b"referer",
    b"forwarded", b"x-real-ip", b"true-client-ip", b"cdn-loop", b"via", b"x-request-id",
    b"expect",  # the server already answered the client's 100-continue; the body is here
}
_DROP_UP_PREFIXES = (b"cf-", b"x-forwarded-", b"sec-", b"access-control-request-")
# The client's account headers mean nothing on a channel's account.
_DROP_UP_RELAY = CREDENTIALS | {b"openai-organization", b"openai-project"}

# Never sent back: transport details, cookies, headers that speak for the upstream's host
# rather than ours, and what this proxy sets itself.
_DROP_DOWN = HOP_BY_HOP | {
    b"set-cookie", b"set-cookie2", b"content-length", b"date", b"server", b"alt-svc",
    b"strict-transport-security", b"report-to", b"nel", b"via", b"x-request-id",
    b"openai-organization", b"anthropic-organization-id", b"openai-project",
}
_DROP_DOWN_PREFIXES = (b"cf-", b"access-control-")

_IDENTITY = (b"accept-encoding", b"identity")


def upstream(client: Headers, channel: Channel, key: str | None, token_prefix: bytes = b"") -> Headers:
    """Headers for the upstream request.

    `key` is None for passthrough: the client's own key stays. Otherwise the client's
    credentials go, the channel's `headers` replace any the client sent under the same names,
    and the channel's key goes in (none for a keyless channel: `key` is "").
    Any header that holds a proxy token (`token_prefix`) is dropped either way: a passthrough
    request may bring one beside the provider key it is sent with.
    """
    if key is None:
        drop, own = _DROP_UP, ()
    else:
        drop, own = _relay_rules(channel.headers)
    out = [(n, v) for n, v in client if n not in drop and not n.startswith(_DROP_UP_PREFIXES)
           and not (token_prefix and v.find(token_prefix) != -1 and carries_token(v, token_prefix))]
    out.append(_IDENTITY)  # answers must stay readable for usage accounting
    kind = channel.kind
    for default in kind.headers:  # (anthropic-version) unless the client chose its own
        if not any(n == default[0] for n, _ in out):
            out.append(default)
    if own:
        out.extend(own)
    if key:
        out.append(kind.credential(key.encode()))
    return out


_KEY_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def carries_token(value: bytes, prefix: bytes) -> bool:
    """Whether `value` holds a proxy token: `prefix` at its start or after a character that is
    no part of a key (`Bearer sk-ax-…`, `t=sk-ax-…`; not `my-sk-ax-name`)."""
    at = value.find(prefix)
    while at != -1:
        if at == 0 or value[at - 1] not in _KEY_BYTES:
            return True
        at = value.find(prefix, at + 1)
    return False


@functools.lru_cache(maxsize=256)
def _relay_rules(channel_headers: tuple[tuple[str, str], ...]) -> tuple[frozenset[bytes], tuple]:
    """What a relayed request drops, and the channel's own headers: the same for every request
    of the channel (made once, not per request)."""
    own = tuple((n.encode(), v.encode()) for n, v in channel_headers)
    return _DROP_UP | _DROP_UP_RELAY | {n for n, _ in own}, own


def downstream(answer: Headers, secrets: list[str] = ()) -> Headers:
    """The upstream answer's headers as the client may see them (length is set by the sender);
    a header that quotes one of the request's keys (an upstream's debug echo) is left out."""
    out = []
    keys = [s.encode() for s in secrets if s]
    for name, value in answer:
        name = name.lower()
        if name not in _DROP_DOWN and not name.startswith(_DROP_DOWN_PREFIXES):
            # (find, not `in`: `bytes in bytes` tries its operand as an int first and builds a
            # TypeError to throw away, ~2k instructions a test; here and above on every request)
            if keys and any(value.find(key) != -1 for key in keys):
                continue
            out.append((name, value))
    return out
