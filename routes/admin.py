"""The operator's API (SPEC §11): mint signed tokens, inspect them, credit or debit their
balances, revoke them (and undo that).

    POST /admin/tokens                  {name, group, models?, days?, rpm?, tpm?, balance_usd?} -> 201
    GET  /admin/tokens/{name}           -> {name, balance_usd, reserved_usd, spent_usd, spent_today_usd,
                                            requests_today, revoked}
    POST /admin/tokens/{name}/credit    {usd} -> {name, balance_usd}       (negative usd debits)
    POST /admin/tokens/{name}/revoke    -> {name, revoked: true}
    POST /admin/tokens/{name}/unrevoke  -> {name, revoked: false}

It exists only when `[admin] key` is set: without one every /admin path is the router's ordinary
404. The key comes as `Authorization: Bearer <key>`, compared in constant time; a wrong or missing
one is a 401 and is never logged. Every answer is JSON (errors in OpenAI's shape) that no browser
or proxy may cache. What it reads and writes is the store's own: a store that is down or slow is a
503, never a replica's local counts.

Balances, spend and revocations belong to a token's *name*: every token of one name shares them.
"""

from __future__ import annotations

import time

import orjson
from starlette.routing import Route

from relay.auth import bearer_matches, key_digests
from relay.dialects import OPENAI
from relay.errors import ProxyError
from relay.runtime import Runtime
from relay.state import StoreUnavailable, utc_today
from relay.tokens import mint

from .admin_input import TOKENS_PATH, check_name, parse_credit, parse_empty, parse_mint, token_target

MAX_BODY_BYTES = 64 * 1024


# (Made per answer: an exception instance raised again keeps every earlier traceback.)
def _needs_key() -> ProxyError:
    return ProxyError(401, "The admin API needs 'Authorization: Bearer <key>' with the [admin] key",
                      code="invalid_admin_key", headers={"www-authenticate": "Bearer"})


_STORE_DOWN = ProxyError(503, "The state store is unavailable: nothing was read or changed. Retry shortly.",
                         code="state_unavailable")  # (only rendered, never raised)


def _no_secret() -> ProxyError:
    return ProxyError(400, "Minting needs a signing secret: set [proxy] signing_secret "
                           "(signing_secret = \"${AURAX_SIGNING_SECRET}\") and restart", code="signing_secret_unset")


def admin_routes(rt: Runtime) -> list[Route]:
    """The admin API's routes: none unless `[admin] key` is set."""
    if not rt.config.admin.key:
        return []
    api = AdminApi(rt)
    # Every /admin path: those that name nothing get their 404 here too, after the key, uncached.
    return [Route("/admin", api), Route("/admin/{rest:path}", api)]


class AdminApi:
    """One ASGI app for every path under /admin: the key first, then the path's action."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        config = rt.config
        self._allowed = key_digests(config.admin.key)
        # (names a token, action) -> (method, handler)
        self._actions = {
            (False, ""): ("POST", self.mint),
            (True, ""): ("GET", self.inspect),
            (True, "credit"): ("POST", self.credit),
            (True, "revoke"): ("POST", self.revoke),
            (True, "unrevoke"): ("POST", self.unrevoke),
        }
        self._config_names = frozenset(t.name for t in config.tokens) | config.revoked
        # A config token's opening credit: its balance until its first request writes it.
        self._openings: dict[str, float] = {}
        for token in config.tokens:
            if token.balance_usd is not None:
                self._openings.setdefault(token.name, token.balance_usd)

    async def __call__(self, scope, receive, send) -> None:
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
        try:
            status, answer = await self._serve(scope, receive)
            body = orjson.dumps(answer)
        except StoreUnavailable:
            status, body = 503, OPENAI.render_error(_STORE_DOWN)
        except ProxyError as err:
            status, body = err.status, OPENAI.render_error(err)
            headers += [(k.encode(), v.encode("latin-1")) for k, v in err.headers.items()]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _serve(self, scope, receive) -> tuple[int, dict]:
        authorization = next((v for n, v in scope["headers"] if n == b"authorization"), b"")
        if not bearer_matches(authorization.decode("latin-1"), self._allowed):
            raise _needs_key()
        target = token_target(scope.get("raw_path") or scope["path"].encode())
        found = self._actions.get((target[0] is not None, target[1])) if target is not None else None
        if found is None:
            raise ProxyError(404, f"Unknown admin path: {scope['method']} {scope['path']}", code="unknown_path")
        method, handler = found
        if scope["method"] != method:
            raise ProxyError(405, f"Method {scope['method']} is not allowed on {scope['path']}",
                             code="method_not_allowed", headers={"allow": method})
        name = target[0]
        if name is not None and name not in self._config_names:
            check_name(name)
        body = await _read_body(receive) if method == "POST" else b""
        if not self.rt.started:
            await self.rt.start()  # a host that sends no lifespan events
        return await handler(name, body)

    # -- actions -------------------------------------------------------------------------------

    async def mint(self, _: None, body: bytes) -> tuple[int, dict]:
        """A signed token; its balance, when given, set in the store before it is handed out."""
        proxy = self.rt.config.proxy
        if not proxy.signing_secret:
            raise _no_secret()
        asked = parse_mint(body, self.rt.config.groups)
        await self._refuse_revoked(asked.name)
        expires_at = int(time.time() + asked.days * 86_400) if asked.days is not None else None
        models = list(asked.models) if asked.models is not None else None
        token = mint(proxy.signing_secret, proxy.token_prefix, name=asked.name, group=asked.group,
                     models=models, exp=expires_at, rpm=asked.rpm, tpm=asked.tpm, balance_usd=asked.balance_usd)
        if asked.balance_usd is not None:
            await self.rt.fleet.set_balance(asked.name, asked.balance_usd)
        return 201, {"token": token, "name": asked.name, "group": asked.group, "models": models,
                     "expires_at": expires_at, "rpm": asked.rpm, "tpm": asked.tpm,
                     "balance_usd": asked.balance_usd}

    async def inspect(self, name: str, _: bytes) -> tuple[int, dict]:
        account = await self.rt.fleet.account(name, utc_today().isoformat())
        if account is None:
            self._known_to_config(name)
            return 200, {"name": name, "balance_usd": self._openings.get(name), "reserved_usd": 0.0,
                         "spent_usd": 0.0, "spent_today_usd": 0.0, "requests_today": 0,
                         "revoked": name in self.rt.config.revoked}
        balance = account.balance_usd if account.balance_usd is not None else self._openings.get(name)
        return 200, {"name": name, "balance_usd": balance, "reserved_usd": account.reserved_usd,
                     "spent_usd": account.spent_usd, "spent_today_usd": account.spent_today_usd,
                     "requests_today": account.requests_today,
                     "revoked": account.revoked or name in self.rt.config.revoked}

    async def credit(self, name: str, body: bytes) -> tuple[int, dict]:
        usd = parse_credit(body)
        fleet = self.rt.fleet
        account = await fleet.account(name, utc_today().isoformat())
        if account is None:
            self._known_to_config(name)
        opening = self._openings.get(name)
        if opening is not None and (account is None or account.balance_usd is None):
            # Its first request would open it at the config's credit: a top-up adds to that. A
            # revoked name is never admitted, so nothing else opens it meanwhile.
            if not await fleet.open_balance(name, opening):
                usd += opening
        return 200, {"name": name, "balance_usd": await fleet.credit(name, usd)}

    async def revoke(self, name: str, body: bytes) -> tuple[int, dict]:
        """Refused from the next request on, on every replica: each admission reads the store.
        Any name may be revoked, also one no request has used yet."""
        parse_empty(body)
        await self.rt.fleet.revoke(name)
        return 200, {"name": name, "revoked": True}

    async def unrevoke(self, name: str, body: bytes) -> tuple[int, dict]:
        parse_empty(body)
        if name in self.rt.config.revoked:
            raise ProxyError(409, f"'{name}' is revoked in the config ([[revoked]]): remove it there and restart",
                             code="revoked_in_config")
        await self.rt.fleet.unrevoke(name)
        return 200, {"name": name, "revoked": False}

    # -- helpers -------------------------------------------------------------------------------

    def _known_to_config(self, name: str) -> None:
        if name not in self._config_names:
            raise ProxyError(404, f"No token named '{name}': the state store has no account for it (one opens at "
                                  "a token's first request, or when it is minted here with a balance) and the "
                                  "config names no such token", code="token_not_found")

    async def _refuse_revoked(self, name: str) -> None:
        """A new token of a revoked name would be refused at once: say so rather than mint it.
        Unrevoking is left to the operator, since it lets the older tokens of that name in too."""
        if name in self.rt.config.revoked:
            raise ProxyError(409, f"'{name}' is revoked in the config ([[revoked]]): choose another name",
                             code="token_revoked")
        account = await self.rt.fleet.account(name, utc_today().isoformat())
        if account is not None and account.revoked:
            raise ProxyError(409, f"'{name}' is revoked: choose another name, or unrevoke it first "
                                  f"(POST {TOKENS_PATH}/<name>/unrevoke), which lets its older tokens in too",
                             code="token_revoked")


async def _read_body(receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ProxyError(400, "The request ended before its body", code="incomplete_body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ProxyError(413, f"The body is larger than {MAX_BODY_BYTES // 1024} KB", code="body_too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
