"""Keys from every header a client SDK uses, checked in memory; signed tokens."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest

from relay.auth import PASSTHROUGH, Auth, check_model, find_key
from relay.config import parse
from relay.errors import ProxyError
from relay.tokens import main as tokens_main, mint, verify

CONFIG = """
[proxy]
signing_secret = "s3cret"
[passthrough]
openai = "https://api.openai.com/v1"
[groups.default]
multiplier = 1
[groups.az]
multiplier = 1.5
[[tokens]]
name = "alice"
key = "sk-ax-alice"
group = "az"
models = ["gpt-4o*"]
[[tokens]]
name = "old"
key = "sk-ax-old"
group = "default"
expires = 2020-01-01T00:00:00Z
[[tokens]]
name = "hashed"
key_sha256 = "%s"
group = "default"
[[revoked]]
name = "mallory"
""" % hashlib.sha256(b"sk-ax-hashed").hexdigest()


@pytest.fixture()
def auth() -> Auth:
    return Auth(parse(CONFIG))


@pytest.mark.parametrize(
    "headers, query, key",
    [
        ({"authorization": "Bearer sk-ax-1"}, b"", "sk-ax-1"),
        ({"authorization": "bearer sk-ax-1"}, b"", "sk-ax-1"),
        ({"x-api-key": "sk-ax-2"}, b"", "sk-ax-2"),
        ({"x-goog-api-key": "sk-ax-3"}, b"", "sk-ax-3"),
        ({}, b"alt=sse&key=sk-ax-4", "sk-ax-4"),
        ({}, b"alt=sse", None),
    ],
)
def test_find_key(headers, query, key):
    assert find_key(headers, query) == key


@pytest.mark.parametrize("value", ["sk-ax-1", "Bearer", "Bearer ", "Bearer  sk-ax-1", "Bearer sk-ax-1 ",
                                   "Basic abc", "Token sk-ax-1", ""])
def test_malformed_authorization_header(value):
    with pytest.raises(ProxyError) as info:
        find_key({"authorization": value}, b"")
    assert info.value.status == 401
    assert info.value.message == "Invalid authorization header"


def test_tokens_by_key_and_digest(auth):
    caller = auth.identify("sk-ax-alice", "openai")
    assert caller.name == "alice" and caller.group.multiplier == 1.5
    assert auth.identify("sk-ax-hashed", "openai").name == "hashed"


@pytest.mark.parametrize(
    "key, message",
    [
        (None, "Missing API key"),
        ("", "Missing API key"),
        ("sk-ax-unknown", "Invalid proxy token: unknown key"),
        ("sk-ax-old", "Proxy token 'old' has expired"),
    ],
)
def test_refused_keys(auth, key, message):
    with pytest.raises(ProxyError) as info:
        auth.identify(key, "openai")
    assert info.value.status == 401
    assert message in info.value.message


def test_passthrough_only_where_configured(auth):
    assert auth.identify("sk-proj-real-openai-key", "openai") is PASSTHROUGH
    with pytest.raises(ProxyError) as info:
        auth.identify("sk-ant-real", "anthropic")
    assert info.value.status == 401 and "passthrough is off for anthropic" in info.value.message


def test_model_allow_list(auth):
    caller = auth.identify("sk-ax-alice", "openai")
    check_model(caller, "gpt-4o-mini")
    with pytest.raises(ProxyError) as info:
        check_model(caller, "claude-3-opus")
    assert info.value.status == 403
    assert "claude-3-opus" in info.value.message and "alice" in info.value.message


def test_known_keys_are_hashed_once(auth, monkeypatch):
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr("relay.auth.hashlib.sha256", lambda data: calls.append(data) or real(data))
    for _ in range(5):
        auth.identify("sk-ax-alice", "openai")
    assert len(calls) == 1


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_signed_token_format_is_interoperable():
    # Minted by hand, exactly as SPEC §5 describes, with no code of ours.
    import hmac

    payload = _b64(json.dumps({"name": "bob", "group": "az", "models": ["gpt-*"], "rpm": 5}).encode())
    mac = _b64(hmac.new(b"s3cret", payload.encode(), hashlib.sha256).digest())
    token = verify("s3cret", f"{payload}.{mac}")
    assert (token.name, token.group, token.rpm) == ("bob", "az", 5)
    assert token.models("gpt-4o") and not token.models("claude")


def test_signed_tokens_in_auth(auth):
    good = mint("s3cret", name="bob", group="az", exp=int(time.time()) + 60)
    assert auth.identify(good, "openai").name == "bob"
    cases = {
        mint("wrong", name="bob", group="az"): "bad signature",
        mint("s3cret", name="bob", group="nope"): "unknown group",
        mint("s3cret", name="bob", group="az", exp=1): "has expired",
        mint("s3cret", name="mallory", group="az"): "revoked",
        "sk-ax-" + _b64(b"not json") + "." + _b64(b"x"): "bad signature",
    }
    for key, reason in cases.items():
        with pytest.raises(ProxyError) as info:
            auth.identify(key, "openai")
        assert info.value.status == 401 and reason in info.value.message, (key, info.value.message)
    import hmac

    payload = _b64(b"[1,2]")
    mac = _b64(hmac.new(b"s3cret", payload.encode(), hashlib.sha256).digest())
    with pytest.raises(ProxyError, match="not a JSON object"):
        auth.identify(f"sk-ax-{payload}.{mac}", "openai")


def test_mint_cli(capsys, tmp_path, monkeypatch):
    conf = tmp_path / "u.toml"
    conf.write_text(CONFIG)
    monkeypatch.setenv("AURAX_CONFIG", str(conf))
    assert tokens_main(["mint", "--name", "carol", "--group", "az", "--days", "30", "--models", "gpt-4o"]) == 0
    key = capsys.readouterr().out.strip()
    token = verify("s3cret", key[len("sk-ax-"):])
    assert token.name == "carol" and token.expires > time.time() + 29 * 86400
    assert tokens_main(["mint", "--name", "carol", "--group", "nope"]) == 2
    assert "unknown group" in capsys.readouterr().err


def test_key_parameter_only_by_its_literal_name():
    assert find_key({}, b"k%65y=sk-ax-1") is None  # not a key for us, so never one to strip either
    assert find_key({}, b"a=1&key=sk-ax-2%3D") == "sk-ax-2="


def test_overlong_keys_are_refused_before_caching(auth):
    with pytest.raises(ProxyError, match="longer than 1024"):
        auth.identify("sk-ax-" + "a" * 5000, "openai")
    assert len(auth._cache) == 0


def test_access_log_redaction_of_every_spelling():
    from relay.logs import redact_query

    assert redact_query("/v1beta/models?alt=sse&key=AIza123&x=1") == "/v1beta/models?alt=sse&key=[redacted]&x=1"
    assert redact_query("/m?K%65Y=secret") == "/m?K%65Y=[redacted]"
