"""The store shared by a fleet through a Redis-protocol server (`redis://`, `rediss://`).

Redis 6.2+ and Valkey, or any managed service with Lua scripting; only standard commands. Every
decision is one Lua script run atomically on the server (`lua.py`), with the server's clock, so
N replicas see one truth. An admission is one EVALSHA; a batch of settlements is one round trip.

Keys live under a prefix (default `ax:`); each token's keys share the hash tag `{name}` so one
script only touches one cluster slot. The client is the plain (non-cluster) one: Redis Cluster
itself is not supported, though the key layout is ready for it.

Admissions issued in the same event-loop tick leave in one write on one pooled connection
(auto-pipelining): under load that divides the client's per-call cost by the batch size.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, ResponseError

from . import (
    ADMITTED, DAY_TTL_S, NANO, REASONS, Account, Admission, Ask, Settlement, days, to_nano, to_usd,
)
from . import lua

_pack = hiredis.pack_command
_IDLE_MAX = 16  # connections a pipeline keeps between round trips


def _escape(name: str) -> str:
    """A name that cannot end its hash tag early nor pass for another name's key."""
    return name.replace("%", "%25").replace("}", "%7D")


class TokenKeys:
    """The keys of one token, all tagged `{name}`."""

    __slots__ = ("acct", "rpm", "tpm", "res", "rexp", "base", "admit")

    def __init__(self, prefix: str, name: str) -> None:
        base = self.base = f"{prefix}{{{_escape(name)}}}:"
        self.acct = base + "acct"  # hash: bal, reserved, spent (nano-USD), revoked (0/1)
        self.rpm = base + "rpm"  # hash: second -> requests admitted in it (the last 61 s)
        self.tpm = base + "tpm"  # hash: second -> tokens counted in it (the last 61 s)
        self.res = base + "res"  # hash: request id -> "nano-USD held, tpm tokens or -1, second"
        self.rexp = base + "rexp"  # zset: request id -> reservation expiry (µs)
        self.admit = (5, self.acct, self.rpm, self.tpm, self.res, self.rexp)

    def settled(self, request_id: str) -> str:
        return f"{self.base}settled:{request_id}"  # set while the settlement is remembered

    def day(self, day: str) -> str:
        return f"{self.base}day:{day}"  # hash: usd (nano-USD), n (requests)

    def response(self, response_id: str) -> str:
        return f"{self.base}resp:{response_id}"


class _Pipeline:
    """Sends packed commands: those issued in the same loop tick together in one write (`call`,
    bounded by `tick_timeout_s`), or a given list in one round trip (`run`). A round trip over
    its time drops its connection (a hung server holds none for long) and fails its callers.
    One timer per round trip, not per call: `asyncio.timeout` costs 5-8 µs. The connections
    are the pipeline's own (made by the client's pool, with its settings), kept between round
    trips: taking one from the pool and giving it back cost more than a small round trip."""

    def __init__(self, client: Redis, scripts: list, tick_timeout_s: float) -> None:
        self._pool = client.connection_pool
        self._scripts = scripts
        self.tick_timeout_s = tick_timeout_s
        self._queue: list[tuple[bytes, asyncio.Future]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        self._idle: list = []  # connected, or to connect again at their next use

    def call(self, packed: bytes) -> asyncio.Future:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((packed, future))
        return future

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        task = self._loop.create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[bytes, asyncio.Future]]) -> None:
        try:
            replies = await self.run([packed for packed, _ in batch], self.tick_timeout_s)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), reply in zip(batch, replies):
            if not future.done():
                future.set_result(reply)

    async def run(self, commands: list[bytes], timeout_s: float) -> list[Any]:
        """Replies in order; an error reply is returned as its exception, not raised."""
        conn = self._idle.pop() if self._idle else self._pool.make_connection()
        try:
            async with asyncio.timeout(timeout_s):
                if not conn.is_connected:
                    await conn.connect()
                replies = await self._round_trip(conn, commands)
                missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
                if missing:  # the server restarted or flushed its scripts
                    for script in self._scripts:
                        await conn.send_command("SCRIPT", "LOAD", script.script, check_health=False)
                        await conn.read_response()
                    again = await self._round_trip(conn, [commands[i] for i in missing])
                    for i, reply in zip(missing, again):
                        replies[i] = reply
        except BaseException:
            await conn.disconnect(nowait=True)  # mid-reply: unusable until it connects again
            raise
        finally:
            if len(self._idle) < _IDLE_MAX:
                self._idle.append(conn)
            else:
                await conn.disconnect(nowait=True)
        return replies

    @staticmethod
    async def _round_trip(conn, commands: list[bytes]) -> list[Any]:
        await conn.send_packed_command(b"".join(commands), check_health=False)
        replies = []
        for _ in commands:
            try:
                replies.append(await conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect(nowait=True)


def _raise_errors(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


class RedisStore:
    """The `Store` on a Redis-protocol server; see `memory.MemoryStore` for the semantics.

    `timeout_s` bounds every round trip but admissions, which `admit_timeout_s` bounds;
    `reservation_ttl_s` frees the money of reservations never settled. Settled request ids are
    remembered `settled_ttl_s`, a key each: about 170 bytes of server memory per request with
    a 40-character id (measured on Redis 7.0), so 60 MB at 100 requests a second over the
    default hour, 600 MB at 1,000.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "ax:",
        reservation_ttl_s: float = 3600.0,
        settled_ttl_s: float = 3600.0,
        timeout_s: float = 2.0,
    ) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("state prefix: must not contain '{' or '}' (they mark hash tags)")
        self._client = client
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._reservation_ttl_us = int(reservation_ttl_s * 1_000_000)
        self._settled_ttl_ms = max(1, round(settled_ttl_s * 1000))
        self._health = prefix + "health"  # hash: key id -> resting until (unix seconds)
        self._keys: dict[str, TokenKeys] = {}
        register = client.register_script
        self._admit, self._admit_ip, self._settle = register(lua.ADMIT), register(lua.ADMIT_IP), register(lua.SETTLE)
        self._account, self._rest, self._resting = register(lua.ACCOUNT), register(lua.REST_KEY), register(lua.RESTING)
        scripts = [self._admit, self._admit_ip, self._settle, self._account, self._rest, self._resting]
        self._pipeline = _Pipeline(client, scripts, timeout_s)

    @property
    def admit_timeout_s(self) -> float:
        """How long an admission may take (its whole round trip); `Fleet` sets it."""
        return self._pipeline.tick_timeout_s

    @admit_timeout_s.setter
    def admit_timeout_s(self, value: float) -> None:
        self._pipeline.tick_timeout_s = value

    @classmethod
    def from_url(cls, url: str, **options) -> "RedisStore":
        # No retries inside the client: a failed call is the fleet's to handle, at once. No
        # socket timeout either: every call here runs under its own deadline, which is cheaper
        # than the client's timer per read.
        client = Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_timeout=None,
                                socket_connect_timeout=options.get("timeout_s", 2.0), max_connections=64)
        return cls(client, **options)

    def token_keys(self, name: str) -> TokenKeys:
        keys = self._keys.get(name)
        if keys is None:
            if len(self._keys) >= 100_000:  # a cache, not a registry: start over past its size
                self._keys.clear()
            keys = self._keys[name] = TokenKeys(self._prefix, name)
        return keys

    async def _call(self, script, keys: list[str], args: list) -> Any:
        reply = (await self._pipeline.run([_pack(("EVALSHA", script.sha, len(keys), *keys, *args))], self._timeout_s))[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _bounded(self, awaitable):
        async with asyncio.timeout(self._timeout_s):
            return await awaitable

    async def admit(self, ask: Ask) -> Admission:
        name = ask.token
        if name is None:
            if ask.ip is None or ask.ip_rpm is None:
                return ADMITTED
            packed = _pack(("EVALSHA", self._admit_ip.sha, 1, f"{self._prefix}ip{{{ask.ip}}}", ask.request_id,
                            ask.ip_rpm))
        else:
            keys = self._keys.get(name) or self.token_keys(name)
            packed = _pack((
                "EVALSHA", self._admit.sha, *keys.admit, ask.request_id,
                b"" if ask.rpm is None else ask.rpm, b"" if ask.tpm is None else ask.tpm, ask.tokens,
                round(ask.usd * NANO), b"" if ask.opening_usd is None else round(ask.opening_usd * NANO),
                self._reservation_ttl_us,
            ))
        reply = await self._pipeline.call(packed)
        if isinstance(reply, Exception):
            raise reply
        code, retry_after, available = reply
        if code == 0 and available is None:
            return ADMITTED
        return Admission(code == 0, REASONS[code], retry_after, None if available is None else available / NANO)

    async def settle(self, entries: list[Settlement]) -> None:
        if not entries:
            return
        commands = []
        sha, settled_ttl = self._settle.sha, self._settled_ttl_ms
        for s in entries:
            k = self._keys.get(s.token) or self.token_keys(s.token)
            commands.append(_pack((
                "EVALSHA", sha, 6, k.acct, k.tpm, k.res, k.rexp, k.settled(s.request_id), k.day(s.day),
                s.request_id, to_nano(s.billed_usd), s.tokens, settled_ttl, DAY_TTL_S,
            )))
        _raise_errors(await self._pipeline.run(commands, self._timeout_s))

    async def rest_key(self, key_id: str, until: float) -> None:
        await self._call(self._rest, [self._health], [key_id, repr(float(until))])

    async def resting_keys(self) -> dict[str, float]:
        flat = await self._call(self._resting, [self._health], [])
        return {flat[i].decode(): float(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def revoke(self, name: str) -> None:
        await self._bounded(self._client.hset(self.token_keys(name).acct, "revoked", 1))

    async def unrevoke(self, name: str) -> None:
        await self._bounded(self._client.hset(self.token_keys(name).acct, "revoked", 0))

    async def credit(self, name: str, usd: float) -> float:
        return to_usd(await self._bounded(self._client.hincrby(self.token_keys(name).acct, "bal", to_nano(usd))))

    async def set_balance(self, name: str, usd: float) -> None:
        await self._bounded(self._client.hset(self.token_keys(name).acct, "bal", to_nano(usd)))

    async def account(self, name: str, day: str) -> Account | None:
        k = self.token_keys(name)
        found = await self._call(self._account, [k.acct, k.res, k.rexp, k.day(day)], [])
        if found is None:
            return None
        balance, reserved, spent, revoked, spent_today, requests_today = found
        return Account(
            name=name,
            balance_usd=None if balance is None else to_usd(balance),
            reserved_usd=to_usd(reserved),
            spent_usd=to_usd(spent),
            spent_today_usd=to_usd(spent_today),
            requests_today=requests_today,
            revoked=bool(revoked),
        )

    async def spend(self, name: str, first_day: str, last_day: str) -> list[tuple[str, float]]:
        k = self.token_keys(name)
        wanted = days(first_day, last_day)
        commands = [_pack(("HGET", k.day(day), "usd")) for day in wanted]
        replies = _raise_errors(await self._pipeline.run(commands, self._timeout_s))
        return [(day, to_usd(int(reply))) for day, reply in zip(wanted, replies) if reply is not None]

    async def put_response(self, token: str, response_id: str, data: bytes, ttl_s: float) -> None:
        key = self.token_keys(token).response(response_id)
        await self._bounded(self._client.set(key, data, px=max(1, round(ttl_s * 1000))))

    async def get_response(self, token: str, response_id: str) -> bytes | None:
        return await self._bounded(self._client.get(self.token_keys(token).response(response_id)))

    async def ping(self) -> None:
        await self._bounded(self._client.ping())

    async def warm(self) -> None:
        """Connects and loads the scripts now, rather than on the first requests."""
        scripts = (self._admit, self._admit_ip, self._settle, self._account, self._rest, self._resting)
        replies = await self._pipeline.run([_pack(("SCRIPT", "LOAD", s.script)) for s in scripts], self._timeout_s)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply

    async def aclose(self) -> None:
        await self._pipeline.aclose()
        await self._client.aclose()
