"""The admin API in process: its key, its answers and errors, what it writes to the store."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest

from app import build_app
from relay.config import parse
from relay.state import Ask
from relay.tokens import verify

from redis_server import free_port

ADMIN_KEY = "admin-key-for-tests-0123456789"
SECRET = "admin-test-secret"
BASE = """
[proxy]
{secret}
[groups.default]
multiplier = 1
[groups.az]
multiplier = 1.5
[[tokens]]
name = "opened"
key = "sk-ax-opened-1"
group = "default"
balance_usd = 5
[[tokens]]
name = "plain"
key = "sk-ax-plain-2"
group = "default"
[[revoked]]
name = "fired"
{extra}
"""
WITH_KEY = f'[admin]\nkey = "{ADMIN_KEY}"\n'


def make_app(extra: str = WITH_KEY, secret: bool = True):
    text = BASE.format(secret=f'signing_secret = "{SECRET}"' if secret else "", extra=extra)
    return build_app(parse(text, env={}), transport=httpx.MockTransport(lambda r: httpx.Response(500)))


def call(app, method: str, path: str, key: str | None = ADMIN_KEY, **kw) -> httpx.Response:
    return calls(app, [(method, path, kw)], key)[0]


def calls(app, requests, key: str | None = ADMIN_KEY) -> list[httpx.Response]:
    headers = {"authorization": f"Bearer {key}"} if key else {}

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://proxy") as client:
            return [await client.request(method, path, headers=headers, **kw) for method, path, kw in requests]

    return asyncio.run(main())


def error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()["error"]  # OpenAI's shape
    assert set(body) == {"message", "type", "param", "code"}
    return body


def test_without_an_admin_key_every_admin_path_is_404():
    app = make_app(extra="")
    for method, path in (("POST", "/admin/tokens"), ("GET", "/admin/tokens/opened"),
                         ("POST", "/admin/tokens/opened/revoke"), ("GET", "/admin")):
        response = call(app, method, path, json={"name": "x", "group": "default"})
        assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_path"


@pytest.mark.parametrize("key", [None, "wrong", ADMIN_KEY + "x", ADMIN_KEY[:-1], "sk-ax-opened-1"])
def test_a_wrong_or_missing_key_is_401_and_never_logged(key, caplog):
    app = make_app(extra=WITH_KEY + 'metrics_key = "scraper-key"\n')
    caplog.set_level(logging.DEBUG)
    for method, path in (("POST", "/admin/tokens"), ("GET", "/admin/tokens/opened"),
                         ("POST", "/admin/tokens/opened/credit"), ("GET", "/admin/tokens/nobody/what")):
        response = call(app, method, path, key=key, json={"usd": 1})
        assert error(response, 401)["code"] == "invalid_admin_key"
        assert response.headers["www-authenticate"] == "Bearer"
    if key:
        assert key not in caplog.text
    assert call(app, "GET", "/admin/tokens/opened", key="scraper-key").status_code == 401  # /metrics only
    assert call(app, "GET", "/admin/tokens/opened").json()["balance_usd"] == 5.0  # nothing was credited


def test_the_key_must_come_as_a_bearer():
    app = make_app()

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://proxy") as client:
            return [await client.get("/admin/tokens/opened", headers=h) for h in (
                {"x-api-key": ADMIN_KEY}, {"authorization": ADMIN_KEY}, {"authorization": f"Basic {ADMIN_KEY}"})]

    assert all(r.status_code == 401 for r in asyncio.run(main()))


def test_mint_gives_a_working_signed_token_and_sets_its_balance():
    app = make_app()
    before = time.time()
    response = call(app, "POST", "/admin/tokens", json={
        "name": "alice", "group": "az", "models": ["gpt-4o*"], "days": 30, "rpm": 60, "tpm": 1000,
        "balance_usd": 5})
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert {k: v for k, v in body.items() if k not in ("token", "expires_at")} == {
        "name": "alice", "group": "az", "models": ["gpt-4o*"], "rpm": 60, "tpm": 1000, "balance_usd": 5.0}
    assert before + 30 * 86400 - 1 <= body["expires_at"] <= time.time() + 30 * 86400
    assert body["token"].startswith("sk-ax-")
    claims = verify(SECRET, body["token"][len("sk-ax-"):])
    assert (claims.name, claims.group, claims.rpm, claims.tpm, claims.balance_usd) == ("alice", "az", 60, 1000, 5.0)
    assert claims.models("gpt-4o-mini") and not claims.models("claude-3") and claims.expires == body["expires_at"]
    inspected = call(app, "GET", "/admin/tokens/alice").json()
    assert inspected == {"name": "alice", "balance_usd": 5.0, "reserved_usd": 0.0, "spent_usd": 0.0,
                         "spent_today_usd": 0.0, "requests_today": 0, "revoked": False}


def test_mint_without_optional_fields_is_unlimited_and_never_expires():
    body = call(make_app(), "POST", "/admin/tokens", json={"name": "bob", "group": "default"}).json()
    assert (body["models"], body["expires_at"], body["rpm"], body["tpm"], body["balance_usd"]) == (None,) * 5
    claims = verify(SECRET, body["token"][len("sk-ax-"):])
    assert claims.expires is None and claims.balance_usd is None and claims.models is None


def test_mint_needs_a_signing_secret():
    err = error(call(make_app(secret=False), "POST", "/admin/tokens", json={"name": "a", "group": "default"}), 400)
    assert "signing_secret" in err["message"] and err["code"] == "signing_secret_unset"


@pytest.mark.parametrize("kw, param", [
    ({"content": b"{not json"}, None),
    ({"content": b"[]"}, None),
    ({"content": b""}, "name"),
    ({"json": {"name": "a", "group": "nope"}}, "group"),
    ({"json": {"name": "a", "group": "default", "expires": 3}}, "expires"),
    ({"json": {"name": "a", "group": "default", "balance_usd": -1}}, "balance_usd"),
])
def test_bad_mint_bodies_are_400_naming_the_field(kw, param):
    err = error(call(make_app(), "POST", "/admin/tokens", **kw), 400)
    assert err["param"] == param


def test_a_body_too_large_is_413():
    error(call(make_app(), "POST", "/admin/tokens", content=b" " * (64 * 1024 + 1)), 413)


def test_mint_refuses_a_revoked_name():
    app = make_app()
    assert error(call(app, "POST", "/admin/tokens", json={"name": "fired", "group": "default"}), 409)["code"] \
        == "token_revoked"
    call(app, "POST", "/admin/tokens/carol/revoke")
    err = error(call(app, "POST", "/admin/tokens", json={"name": "carol", "group": "default"}), 409)
    assert "unrevoke" in err["message"]
    call(app, "POST", "/admin/tokens/carol/unrevoke")
    assert call(app, "POST", "/admin/tokens", json={"name": "carol", "group": "default"}).status_code == 201


def test_inspect_config_tokens_never_used_and_unknown_names():
    app = make_app()
    opened, plain, fired, unknown = calls(app, [("GET", f"/admin/tokens/{n}", {})
                                                for n in ("opened", "plain", "fired", "stranger")])
    zeros = {"reserved_usd": 0.0, "spent_usd": 0.0, "spent_today_usd": 0.0, "requests_today": 0}
    assert opened.json() == {"name": "opened", "balance_usd": 5.0, "revoked": False, **zeros}  # its opening credit
    assert plain.json() == {"name": "plain", "balance_usd": None, "revoked": False, **zeros}  # no balance limit
    assert fired.json() == {"name": "fired", "balance_usd": None, "revoked": True, **zeros}
    assert error(unknown, 404)["code"] == "token_not_found"


def test_credit_and_debit():
    app = make_app()
    call(app, "POST", "/admin/tokens", json={"name": "dora", "group": "default", "balance_usd": 1})
    assert call(app, "POST", "/admin/tokens/dora/credit", json={"usd": 2.5}).json() == {"name": "dora",
                                                                                       "balance_usd": 3.5}
    assert call(app, "POST", "/admin/tokens/dora/credit", json={"usd": -0.25}).json()["balance_usd"] == 3.25
    assert call(app, "GET", "/admin/tokens/dora").json()["balance_usd"] == 3.25
    assert error(call(app, "POST", "/admin/tokens/nobody/credit", json={"usd": 1}), 404)["code"] == "token_not_found"
    assert error(call(app, "POST", "/admin/tokens/dora/credit", json={"usd": "1"}), 400)["param"] == "usd"


def test_a_top_up_adds_to_a_config_tokens_opening_credit():
    app = make_app()
    assert call(app, "POST", "/admin/tokens/opened/credit", json={"usd": 1}).json()["balance_usd"] == 6.0
    # and its first request does not open it again
    assert app.runtime.fleet.store.admit_now(Ask("r1", "opened", usd=0.5, opening_usd=5.0)).balance_usd == 5.5


def test_a_top_up_of_a_revoked_config_token_keeps_its_opening_credit():
    app = make_app()
    call(app, "POST", "/admin/tokens/opened/revoke")
    assert call(app, "POST", "/admin/tokens/opened/credit", json={"usd": 1}).json()["balance_usd"] == 6.0


def test_revoke_and_unrevoke():
    app = make_app()
    store = app.runtime.fleet.store
    assert call(app, "POST", "/admin/tokens/erin/revoke").json() == {"name": "erin", "revoked": True}
    assert store.admit_now(Ask("r1", "erin")).reason == "revoked"
    assert call(app, "GET", "/admin/tokens/erin").json()["revoked"] is True
    assert call(app, "POST", "/admin/tokens/erin/unrevoke").json() == {"name": "erin", "revoked": False}
    assert store.admit_now(Ask("r2", "erin")).ok
    assert error(call(app, "POST", "/admin/tokens/erin/revoke", json={"why": "x"}), 400)["param"] == "why"
    assert error(call(app, "POST", "/admin/tokens/fired/unrevoke"), 409)["code"] == "revoked_in_config"


def test_names_with_any_character_through_percent_encoding():
    app = make_app()
    name = "team/\u4e2d x?#%"
    encoded = "team%2F%E4%B8%AD%20x%3F%23%25"
    assert call(app, "POST", "/admin/tokens", json={"name": name, "group": "default", "balance_usd": 2}).status_code \
        == 201
    assert call(app, "GET", f"/admin/tokens/{encoded}").json()["name"] == name
    assert call(app, "POST", f"/admin/tokens/{encoded}/credit", json={"usd": 1}).json()["balance_usd"] == 3.0
    assert error(call(app, "GET", "/admin/tokens/a%01b"), 400)["param"] == "name"
    assert call(app, "GET", "/admin/tokens/a%0Ab").status_code == 404  # (no route matches a line break)


def test_unknown_paths_and_methods():
    app = make_app()
    assert error(call(app, "GET", "/admin/tokens/opened/refund"), 404)["code"] == "unknown_path"
    assert error(call(app, "GET", "/admin/tokens/a/b/c"), 404)["code"] == "unknown_path"
    assert error(call(app, "GET", "/admin/users"), 404)["code"] == "unknown_path"
    assert error(call(app, "GET", "/admin"), 404)["code"] == "unknown_path"
    assert call(app, "GET", "/admin/users", key="wrong").status_code == 401  # the key first, whatever the path
    response = call(app, "GET", "/admin/tokens")
    assert error(response, 405)["code"] == "method_not_allowed" and response.headers["allow"] == "POST"
    assert call(app, "DELETE", "/admin/tokens/opened").headers["allow"] == "GET"
    assert call(app, "GET", "/admin/tokens/opened/revoke").status_code == 405


def test_a_store_that_does_not_answer_is_503():
    # Nothing listens on the port: every store call fails at once.
    app = make_app(extra=WITH_KEY + f'[state]\nurl = "redis://127.0.0.1:{free_port()}"\n')
    for method, path, kw in (("GET", "/admin/tokens/opened", {}),
                             ("POST", "/admin/tokens/opened/credit", {"json": {"usd": 1}}),
                             ("POST", "/admin/tokens/opened/revoke", {}),
                             ("POST", "/admin/tokens", {"json": {"name": "x", "group": "default", "balance_usd": 1}})):
        assert error(call(app, method, path, **kw), 503)["code"] == "state_unavailable"
