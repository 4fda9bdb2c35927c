"""`upstreams.toml`, read once at start-up into frozen objects (SPEC §2–§3).

Nothing reads the file or the environment after this module has built a `Config`. Every problem
is reported as one `ConfigError` line that names the file, the field path and what is wrong.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import ipaddress
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from .dialects import CHANNEL_KINDS, PASSTHROUGH, RESPONSES, ChannelKind, Dialect

_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    pass


class Globs:
    """A list of model-name globs compiled into one regular expression."""

    __slots__ = ("patterns", "_regex")

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.patterns = patterns
        # No pattern matches nothing (an empty alternation would match everything).
        self._regex = re.compile("|".join(fnmatch.translate(p) for p in patterns) or "(?!)")

    def __call__(self, name: str) -> bool:
        return self._regex.match(name) is not None

    def __repr__(self) -> str:
        return f"Globs({self.patterns!r})"


@dataclass(frozen=True, slots=True)
class Proxy:
    token_prefix: str = "sk-ax-"
    max_attempts: int = 3
    cooldown_s: float = 30.0
    connect_timeout_s: float = 10.0
    first_byte_timeout_s: float = 300.0
    idle_timeout_s: float = 120.0
    keepalive_s: float = 15.0
    max_body_bytes: int = 25 * 1024 * 1024
    body_timeout_s: float = 30.0  # the whole request body must have arrived by then
    max_buffered_bytes: int = 64 * 1024 * 1024  # request body bytes the process holds at once
    signing_secret: str | None = None
    cors_origins: tuple[str, ...] = ("*",)
    trust_cloudflare: bool = False
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    drain_s: float = 30.0
    sticky: bool = True
    reserve_tokens: int = 4096  # output a request reserves (its price) when it names no maximum


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    multiplier: float
    description: str = ""


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    digest: bytes  # SHA-256 of the key: the key itself is never kept
    group: str
    models: Globs | None = None
    expires: float | None = None  # Unix seconds
    rpm: int | None = None
    tpm: int | None = None
    balance_usd: float | None = None  # the opening credit (SPEC §7); None: no balance limit


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    type: str
    base_url: str
    keys: tuple[str, ...]
    models: Globs
    groups: frozenset[str]
    priority: int = 0
    weight: float = 1.0
    model_map: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    headers: tuple[tuple[str, str], ...] = ()
    stream_usage: bool = True
    api_version: str | None = None
    responses: bool = False  # serves the Responses API itself (else it is translated to chat)
    auto_cache: bool = False  # anthropic: cache_control breakpoints on translated requests

    @property
    def kind(self) -> ChannelKind:
        return CHANNEL_KINDS[self.type]

    @property
    def dialect(self) -> Dialect:
        """The dialect its upstream speaks (azure speaks OpenAI's, at other URLs)."""
        return CHANNEL_KINDS[self.type].dialect

    def serves(self, dialect: Dialect) -> bool:
        """Whether a client of `dialect` is served without translation."""
        return dialect is self.kind.dialect or (dialect is RESPONSES and self.responses)

    def upstream_model(self, model: str) -> str:
        return self.model_map.get(model, model)


@dataclass(frozen=True, slots=True)
class Price:
    input: float = 0.0
    output: float = 0.0
    cached_input: float | None = None
    cache_write: float | None = None  # USD per 1M tokens written to a prompt cache (else `input`)
    request: float | None = None


@dataclass(frozen=True, slots=True)
class UsageSink:
    webhook: str | None = None
    batch: int = 100
    flush_s: float = 2.0
    queue: int = 10_000
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Admin:
    """`[admin]`: bearer keys for the operator's endpoints; None where unset (SPEC §9, §11)."""

    key: str | None = None
    metrics_key: str | None = None  # for a Prometheus scraper, which needs nothing else


@dataclass(frozen=True, slots=True)
class State:
    """`[state]`: where the fleet's shared state lives (SPEC §11)."""

    url: str = "memory://"  # memory:// (this process) or redis:// / rediss://
    timeout_ms: float = 50  # a state call slower than this counts as an outage
    on_outage: str = "open"  # open: serve on this replica's own counts; closed: 503
    responses_ttl_h: float = 24  # stored Responses API answers
    prefix: str = "ax:"  # of every key in the store: several fleets may share one Redis
    health_refresh_s: float = 1.0  # how stale a replica's view of resting keys may be
    journal_max: int = 100_000  # settlements kept while the store is down


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    proxy: Proxy
    passthrough: Mapping[str, str]
    groups: Mapping[str, Group]
    tokens: tuple[Token, ...]
    channels: tuple[Channel, ...]
    prices: Mapping[str, Price]
    revoked: frozenset[str]
    usage: UsageSink
    warnings: tuple[str, ...] = ()
    admin: Admin = Admin()
    state: State = State()
    passthrough_rpm_per_ip: int | None = None

    def price(self, model: str) -> Price | None:
        found = self.prices.get(model)
        if found is None:
            for pattern, price in self.prices.items():
                if "*" in pattern and fnmatch.fnmatchcase(model, pattern):
                    return price
        return found


def load(path: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    path = path or os.environ.get("AURAX_CONFIG") or "upstreams.toml"
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse(text, path, os.environ if env is None else env)


def parse(text: str, path: str = "upstreams.toml", env: Mapping[str, str] | None = None) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return _Reader(path, os.environ if env is None else env).config(data)


class _Unset(Exception):
    """A `${VAR}` without a value; callers decide whether that drops an item or is an error."""

    def __init__(self, var: str) -> None:
        self.var = var


class _Reader:
    def __init__(self, path: str, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env
        self.warnings: list[str] = []

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {problem}")

    # -- values ---------------------------------------------------------------------------

    def expand(self, value: str) -> str:
        def sub(m: re.Match) -> str:
            got = self.env.get(m.group(1))
            if got:
                return got
            if m.group(2) is not None:
                return m.group(2)
            raise _Unset(m.group(1))

        return _VAR.sub(sub, value)

    def string(self, table: dict, key: str, where: str, default: Any = ..., required_var: bool = True):
        value = table.get(key, default)
        if value is ...:
            raise self.fail(f"{where}.{key}" if where else key, "is required")
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{where}.{key}", f"must be a string, not {type(value).__name__}")
        try:
            return self.expand(value)
        except _Unset as unset:
            if required_var:
                raise self.fail(f"{where}.{key}", f"${{{unset.var}}} is not set") from None
            raise

    def number(self, table: dict, key: str, where: str, default: Any, *, minimum: float = 0,
               integer: bool = False, positive: bool = False):
        value = table.get(key, default)
        if value is None:
            return None
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
            kind = "a whole number" if integer else "a finite number"
            raise self.fail(f"{where}.{key}", f"must be {kind}, not {value!r}")
        if value < minimum or (positive and value <= 0):
            bound = "greater than 0" if positive else f"at least {minimum}"
            raise self.fail(f"{where}.{key}", f"must be {bound}, not {value!r}")
        return value

    def boolean(self, table: dict, key: str, where: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{where}.{key}", f"must be true or false, not {value!r}")
        return value

    def strings(self, table: dict, key: str, where: str, default: Any = ..., allow_empty: bool = True,
                blank_items: bool = False) -> tuple[str, ...]:
        value = table.get(key, default)
        if value is ...:
            raise self.fail(f"{where}.{key}", "is required")
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and (v or blank_items) for v in value):
            raise self.fail(f"{where}.{key}", "must be a list of non-empty strings")
        if not value and not allow_empty:
            raise self.fail(f"{where}.{key}", "must not be empty")
        return tuple(value)

    def table(self, data: dict, key: str, where: str = "") -> dict:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(f"{where}{key}", "must be a table")
        return value

    def array(self, data: dict, key: str) -> list[dict]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, f"must be an array of tables ([[{key}]])")
        return value

    def known(self, table: dict, where: str, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(f"{where}.{key}" if where else key, "unknown field")

    def url(self, value: str, where: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value) or any(c in value for c in "\r\n\t "):
            raise self.fail(where, f"must be an http(s) URL, not {value!r}")
        return value.rstrip("/")

    def header_pairs(self, value: Any, where: str) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict):
            raise self.fail(where, "must be a table of header names to values")
        pairs = []
        for name, raw in value.items():
            if not _HEADER_NAME.match(name):
                raise self.fail(f"{where}.{name}", "is not a valid header name")
            if not isinstance(raw, str):
                raise self.fail(f"{where}.{name}", "must be a string")
            try:
                text = self.expand(raw)
            except _Unset as unset:
                raise self.fail(f"{where}.{name}", f"${{{unset.var}}} is not set") from None
            if any(c in text for c in "\r\n\0"):
                raise self.fail(f"{where}.{name}", "must not contain line breaks")
            pairs.append((name.lower(), text))
        return tuple(pairs)

    # -- sections -------------------------------------------------------------------------

    def config(self, data: dict) -> Config:
        self.known(data, "", {"proxy", "passthrough", "groups", "tokens", "channels", "prices",
                              "revoked", "usage", "admin", "state"})
        proxy = self.proxy(self.table(data, "proxy"))
        passthrough, rpm_per_ip = self.passthrough(self.table(data, "passthrough"))
        groups = self.groups(self.table(data, "groups"))
        tokens = tuple(
            token for i, raw in enumerate(self.array(data, "tokens"))
            if (token := self.token(raw, f"tokens[{i}]", proxy, groups)) is not None
        )
        names: set[str] = set()
        channels = []
        for i, raw in enumerate(self.array(data, "channels")):
            channel = self.channel(raw, f"channels[{i}]", groups)
            if channel is None:
                continue
            if channel.name in names:
                raise self.fail(f"channels[{i}].name", f"{channel.name!r} is used twice")
            names.add(channel.name)
            channels.append(channel)
        revoked = frozenset(
            self.string(r, "name", f"revoked[{i}]") for i, r in enumerate(self.array(data, "revoked"))
        )
        return Config(
            path=self.path,
            proxy=proxy,
            passthrough=MappingProxyType(passthrough),
            groups=MappingProxyType(groups),
            tokens=tokens,
            channels=tuple(channels),
            prices=MappingProxyType(self.prices(self.table(data, "prices"))),
            revoked=revoked,
            usage=self.usage(self.table(data, "usage")),
            warnings=tuple(self.warnings),
            admin=self.admin(self.table(data, "admin")),
            state=self.state(self.table(data, "state")),
            passthrough_rpm_per_ip=rpm_per_ip,
        )

    def state(self, t: dict) -> State:
        w = "state"
        self.known(t, w, {"url", "timeout_ms", "on_outage", "responses_ttl_h", "prefix", "health_refresh_s",
                          "journal_max"})
        d = State()
        url = self.string(t, "url", w, self.env.get("AURAX_STATE_URL") or d.url)
        if not re.match(r"^(memory://|rediss?://\S+)", url):
            raise self.fail(f"{w}.url", "must be memory://, redis://… or rediss://…")
        on_outage = self.string(t, "on_outage", w, d.on_outage)
        if on_outage not in ("open", "closed"):
            raise self.fail(f"{w}.on_outage", f"must be 'open' or 'closed', not {on_outage!r}")
        return State(
            url=url,
            timeout_ms=self.number(t, "timeout_ms", w, d.timeout_ms, positive=True),
            on_outage=on_outage,
            responses_ttl_h=self.number(t, "responses_ttl_h", w, d.responses_ttl_h, positive=True),
            prefix=self.string(t, "prefix", w, d.prefix),
            health_refresh_s=self.number(t, "health_refresh_s", w, d.health_refresh_s, positive=True),
            journal_max=self.number(t, "journal_max", w, d.journal_max, integer=True, positive=True),
        )

    def proxy(self, t: dict) -> Proxy:
        w = "proxy"
        self.known(t, w, {"token_prefix", "max_attempts", "cooldown_s", "connect_timeout_s",
                          "first_byte_timeout_s", "idle_timeout_s", "keepalive_s", "max_body_mb",
                          "body_timeout_s", "max_buffered_mb", "signing_secret", "cors_origins",
                          "trust_cloudflare", "trusted_proxies", "drain_s", "sticky", "reserve_tokens"})
        d = Proxy()
        prefix = self.string(t, "token_prefix", w, d.token_prefix)
        if not prefix:
            raise self.fail(f"{w}.token_prefix", "must not be empty")
        try:
            secret = self.string(t, "signing_secret", w, None, required_var=False)
        except _Unset:
            secret = None
        networks = []
        for i, cidr in enumerate(self.strings(t, "trusted_proxies", w, [])):
            try:
                networks.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                raise self.fail(f"{w}.trusted_proxies[{i}]", f"{cidr!r} is not an IP network") from None
        max_body_mb = self.number(t, "max_body_mb", w, 25, positive=True)
        max_buffered_mb = self.number(t, "max_buffered_mb", w, d.max_buffered_bytes / 1024 / 1024, positive=True)
        if max_buffered_mb < max_body_mb:  # else a body of the largest size could never be read
            raise self.fail(f"{w}.max_buffered_mb", f"must be at least max_body_mb ({max_body_mb:g}), "
                                                    f"not {max_buffered_mb!r}")
        return Proxy(
            token_prefix=prefix,
            max_attempts=self.number(t, "max_attempts", w, d.max_attempts, minimum=1, integer=True),
            cooldown_s=self.number(t, "cooldown_s", w, d.cooldown_s),
            connect_timeout_s=self.number(t, "connect_timeout_s", w, d.connect_timeout_s, positive=True),
            first_byte_timeout_s=self.number(t, "first_byte_timeout_s", w, d.first_byte_timeout_s, positive=True),
            idle_timeout_s=self.number(t, "idle_timeout_s", w, d.idle_timeout_s, positive=True),
            keepalive_s=self.number(t, "keepalive_s", w, d.keepalive_s, positive=True),
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            body_timeout_s=self.number(t, "body_timeout_s", w, d.body_timeout_s, positive=True),
            max_buffered_bytes=int(max_buffered_mb * 1024 * 1024),
            signing_secret=secret or None,
            cors_origins=self.strings(t, "cors_origins", w, list(d.cors_origins)),
            trust_cloudflare=self.boolean(t, "trust_cloudflare", w, d.trust_cloudflare),
            trusted_proxies=tuple(networks),
            drain_s=self.number(t, "drain_s", w, d.drain_s),
            sticky=self.boolean(t, "sticky", w, d.sticky),
            reserve_tokens=self.number(t, "reserve_tokens", w, d.reserve_tokens, integer=True),
        )

    def admin(self, t: dict) -> Admin:
        self.known(t, "admin", {"key", "metrics_key"})
        keys = {}
        for name in ("key", "metrics_key"):
            if t.get(name) == "":
                raise self.fail(f"admin.{name}", "must not be empty")
            try:  # like signing_secret: an unset variable means no key, not an error
                keys[name] = self.string(t, name, "admin", None, required_var=False) or None
            except _Unset:
                keys[name] = None
        return Admin(key=keys["key"], metrics_key=keys["metrics_key"])

    def passthrough(self, t: dict) -> tuple[dict[str, str], int | None]:
        """The providers' URLs, and `rpm_per_ip`."""
        self.known(t, "passthrough", {*PASSTHROUGH, "rpm_per_ip"})
        rpm_per_ip = self.number(t, "rpm_per_ip", "passthrough", None, integer=True, positive=True)
        urls = {name: self.url(self.string(t, name, "passthrough"), f"passthrough.{name}")
                for name in t if name != "rpm_per_ip"}
        return urls, rpm_per_ip

    def groups(self, t: dict) -> dict[str, Group]:
        groups = {}
        for name, g in t.items():
            w = f"groups.{name}"
            if not isinstance(g, dict):
                raise self.fail(w, "must be a table")
            self.known(g, w, {"multiplier", "description"})
            groups[name] = Group(
                name=name,
                multiplier=self.number(g, "multiplier", w, 1),
                description=self.string(g, "description", w, ""),
            )
        return groups

    def token(self, t: dict, w: str, proxy: Proxy, groups: dict[str, Group]) -> Token | None:
        self.known(t, w, {"name", "key", "key_sha256", "group", "models", "expires", "rpm", "tpm",
                         "balance_usd"})
        name = self.string(t, "name", w)
        group = self.string(t, "group", w, "default")
        if group not in groups:
            raise self.fail(f"{w}.group", f"unknown group {group!r} (not in [groups])")
        if ("key" in t) == ("key_sha256" in t):
            raise self.fail(w, "needs exactly one of key or key_sha256")
        if "key" in t:
            try:
                key = self.string(t, "key", w, required_var=False)
            except _Unset as unset:
                self.warnings.append(f"{w} {name!r} left out: ${{{unset.var}}} is not set")
                return None
            if not key.startswith(proxy.token_prefix):
                raise self.fail(f"{w}.key", f"must start with the token prefix {proxy.token_prefix!r}")
            digest = hashlib.sha256(key.encode()).digest()
        else:
            hexdigest = self.string(t, "key_sha256", w)
            if not re.fullmatch(r"[0-9a-fA-F]{64}", hexdigest):
                raise self.fail(f"{w}.key_sha256", "must be 64 hex digits")
            digest = bytes.fromhex(hexdigest)
        models = self.strings(t, "models", w, None, allow_empty=False) if t.get("models") is not None else None
        balance = self.number(t, "balance_usd", w, None)
        return Token(
            name=name,
            digest=digest,
            group=group,
            models=Globs(models) if models else None,
            expires=self.instant(t.get("expires"), f"{w}.expires"),
            rpm=self.number(t, "rpm", w, None, integer=True, positive=True),
            tpm=self.number(t, "tpm", w, None, integer=True, positive=True),
            balance_usd=float(balance) if balance is not None else None,
        )

    def instant(self, value: Any, where: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise self.fail(where, f"{value!r} is not a date-time") from None
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.timezone.utc)
            return value.timestamp()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise self.fail(where, "must be a date-time such as 2027-01-01T00:00:00Z")

    def channel(self, t: dict, w: str, groups: dict[str, Group]) -> Channel | None:
        self.known(t, w, {"name", "type", "base_url", "keys", "key", "models", "groups", "priority",
                          "weight", "model_map", "headers", "stream_usage", "api_version", "responses",
                          "auto_cache"})
        name = self.string(t, "name", w)
        kind = self.string(t, "type", w)
        if kind not in CHANNEL_KINDS:
            raise self.fail(f"{w}.type", f"must be one of {', '.join(CHANNEL_KINDS)}, not {kind!r}")
        # "" is a key too: an upstream that takes none (a local vLLM); the client's is never sent
        raw_keys = self.strings(t, "keys", w, [t["key"]] if "key" in t else ..., allow_empty=False, blank_items=True)
        keys, missing = [], []
        for raw in raw_keys:
            try:
                key = self.expand(raw)
            except _Unset as unset:
                missing.append(unset.var)
                continue
            if any(c in key for c in "\r\n\0"):
                raise self.fail(f"{w}.keys", "a key must not contain line breaks")
            keys.append(key)
        if CHANNEL_KINDS[kind].default_base_url is None and "base_url" not in t:
            raise self.fail(f"{w}.base_url", f"is required for {kind} channels")
        if CHANNEL_KINDS[kind].needs_api_version and "api_version" not in t:
            raise self.fail(f"{w}.api_version", f"is required for {kind} channels")
        try:
            base_url = self.string(t, "base_url", w, CHANNEL_KINDS[kind].default_base_url, required_var=bool(keys))
            base_url = self.url(base_url, f"{w}.base_url")
        except _Unset:
            base_url = ""  # the channel is left out below: its URL's variable need not be set
        member_of = self.strings(t, "groups", w, ["default"])
        for i, group in enumerate(member_of):
            if group not in groups:
                raise self.fail(f"{w}.groups[{i}]", f"unknown group {group!r} (not in [groups])")
        model_map = t.get("model_map", {})
        if not isinstance(model_map, dict) or not all(
            isinstance(v, str) and v for v in model_map.values()
        ):
            raise self.fail(f"{w}.model_map", "must be a table of model names to model names")
        channel = Channel(
            name=name,
            type=kind,
            base_url=base_url,
            keys=tuple(keys),
            # a name the channel maps is a name it serves
            models=Globs(self.strings(t, "models", w, allow_empty=False) + tuple(model_map)),
            groups=frozenset(member_of),
            priority=self.number(t, "priority", w, 0, minimum=-(10**9), integer=True),
            weight=self.number(t, "weight", w, 1, positive=True),
            model_map=MappingProxyType(dict(model_map)),
            headers=self.header_pairs(t.get("headers", {}), f"{w}.headers"),
            stream_usage=self.boolean(t, "stream_usage", w, True),
            api_version=self.string(t, "api_version", w, None),
            responses=self.boolean(t, "responses", w, CHANNEL_KINDS[kind].serves_responses(base_url)),
            auto_cache=self.boolean(t, "auto_cache", w, False),
        )
        unset = ", ".join(f"${{{v}}}" for v in missing)
        if not keys:
            self.warnings.append(f"{w} {name!r} left out: {unset} not set")
            return None
        if missing:
            self.warnings.append(f"{w} {name!r}: {unset} not set, using {len(keys)} key(s)")
        return channel

    def prices(self, t: dict) -> dict[str, Price]:
        prices = {}
        for model, p in t.items():
            w = f'prices."{model}"'
            if not isinstance(p, dict):
                raise self.fail(w, "must be a table such as { input = 2.5, output = 10 }")
            self.known(p, w, {"input", "output", "cached_input", "cache_write", "request"})
            prices[model] = Price(
                input=self.number(p, "input", w, 0),
                output=self.number(p, "output", w, 0),
                cached_input=self.number(p, "cached_input", w, None),
                cache_write=self.number(p, "cache_write", w, None),
                request=self.number(p, "request", w, None),
            )
        return prices

    def usage(self, t: dict) -> UsageSink:
        w = "usage"
        self.known(t, w, {"webhook", "batch", "flush_s", "queue", "headers"})
        try:
            webhook = self.string(t, "webhook", w, None, required_var=False)
        except _Unset as unset:
            self.warnings.append(f"usage.webhook off: ${{{unset.var}}} is not set")
            webhook = None
        return UsageSink(
            webhook=self.url(webhook, "usage.webhook") if webhook else None,
            batch=self.number(t, "batch", w, 100, integer=True, positive=True),
            flush_s=self.number(t, "flush_s", w, 2.0, positive=True),
            queue=self.number(t, "queue", w, 10_000, integer=True, positive=True),
            headers=self.header_pairs(t.get("headers", {}), "usage.headers"),
        )
