"""Who is calling: the key from the request, checked in memory (SPEC §5).

Configured keys are known only by their SHA-256 digest. Each distinct key presented is hashed (or
its signature checked) once; the answer is kept in a bounded LRU cache, so the hot path of a known
caller is one dictionary lookup and a clock comparison.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import unquote_plus

from cachetools import LRUCache

from .config import Config, Group, Token
from .errors import ProxyError
from .tokens import BadToken, verify

INVALID_HEADER = "Invalid authorization header"
MAX_KEY_CHARS = 1024  # keys are cached: a client must not be able to park megabytes there


@dataclass(frozen=True, slots=True)
class Caller:
    """A proxy token (relay) or, for passthrough, the provider key the client brought."""

    token: Token | None
    group: Group | None

    @property
    def passthrough(self) -> bool:
        return self.token is None

    @property
    def name(self) -> str | None:
        return self.token.name if self.token else None


PASSTHROUGH = Caller(None, None)


def find_key(headers: dict[str, str], query_string: bytes) -> str | None:
    """The key from `Authorization: Bearer`, `x-api-key`, `x-goog-api-key` or `?key=`."""
    auth = headers.get("authorization")
    if auth is not None:
        scheme, space, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not space or not key or key != key.strip() or " " in key:
            raise ProxyError(401, INVALID_HEADER, code="invalid_authorization_header")
        return key
    key = headers.get("x-api-key") or headers.get("x-goog-api-key")
    if key:
        return key.strip()
    if b"key=" in query_string:
        # The name as sent, undecoded: the same test strips it before the request goes upstream.
        for part in query_string.split(b"&"):
            name, _, value = part.partition(b"=")
            if name == b"key" and value:
                return unquote_plus(value.decode("latin-1"))
    return None


class Auth:
    def __init__(self, config: Config, cache_size: int = 4096) -> None:
        self.prefix = config.proxy.token_prefix
        self.secret = config.proxy.signing_secret
        self.groups = config.groups
        self.revoked = config.revoked
        self.passthrough = config.passthrough
        self._by_digest = {t.digest: t for t in config.tokens}
        self._cache: LRUCache[str, Token | str] = LRUCache(cache_size)

    def identify(self, key: str | None, dialect: str) -> Caller:
        if not key:
            raise ProxyError(
                401, "Missing API key: send it as 'Authorization: Bearer <key>'", code="missing_api_key"
            )
        if len(key) > MAX_KEY_CHARS:
            raise ProxyError(401, f"Invalid API key: longer than {MAX_KEY_CHARS} characters", code="invalid_api_key")
        if not key.startswith(self.prefix):
            if dialect not in self.passthrough:
                raise ProxyError(
                    401,
                    f"Invalid API key: no-login passthrough is off for {dialect} requests; "
                    f"use a proxy token ({self.prefix}...)",
                    code="invalid_api_key",
                )
            return PASSTHROUGH
        found = self._cache.get(key)
        if found is None:
            found = self._lookup(key)
            self._cache[key] = found
        if isinstance(found, str):
            raise ProxyError(401, found, code="invalid_api_key")
        if found.expires is not None and found.expires <= time.time():
            raise ProxyError(401, f"Proxy token '{found.name}' has expired", code="token_expired")
        return Caller(found, self.groups[found.group])

    def _lookup(self, key: str) -> Token | str:
        """A token, or the reason the key is refused."""
        token = self._by_digest.get(hashlib.sha256(key.encode()).digest())
        if token is None and self.secret and "." in key:
            try:
                token = verify(self.secret, key[len(self.prefix):])
            except BadToken as exc:
                return str(exc)
            if token.group not in self.groups:
                return f"invalid proxy token: unknown group '{token.group}'"
        if token is None:
            return "Invalid proxy token: unknown key"
        if token.name in self.revoked:
            return f"Proxy token '{token.name}' has been revoked"
        return token


def check_model(caller: Caller, model: str) -> None:
    token = caller.token
    if token is not None and token.models is not None and not token.models(model):
        raise ProxyError(
            403,
            f"Model '{model}' is not allowed for token '{token.name}'",
            code="model_not_allowed",
            param="model",
        )


def key_digests(*keys: str | None) -> tuple[bytes, ...]:
    """The SHA-256 digests of the operator keys that are set, for `bearer_matches`."""
    return tuple(hashlib.sha256(k.encode()).digest() for k in keys if k)


def bearer_matches(authorization: str | None, allowed: tuple[bytes, ...]) -> bool:
    """Whether `Authorization: Bearer <key>` holds one of the keys digested in `allowed`.

    Digests, so that comparing takes as long whatever the length of the key presented; every one
    compared, in constant time, so that no early answer tells which came close.
    """
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key:
        return False
    given = hashlib.sha256(key.encode()).digest()
    found = False
    for digest in allowed:
        found |= hmac.compare_digest(digest, given)
    return found
