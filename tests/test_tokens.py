"""Signed tokens: one spelling per token, claims of the right type and range, or a clear 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from relay.auth import Auth
from relay.config import parse
from relay.errors import ProxyError
from relay.tokens import BadToken, main as tokens_main, mint, verify

SECRET = "s3cret"
CONFIG = """
[proxy]
signing_secret = "s3cret"
[groups.default]
multiplier = 1
"""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mac(payload: str) -> str:
    return _b64(hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).digest())


def _signed(payload: str) -> str:
    """A token body whose mac is right for `payload` exactly as spelled."""
    return f"{payload}.{_mac(payload)}"


def _claims(text: str) -> str:
    """A token body for a payload given as raw JSON text (Python's json would write NaN, 1e999)."""
    return _signed(_b64(text.encode()))


def _other_spelling(text: str) -> str:
    """The same bytes in base64url with the unused low bits of the last character set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare = {2: 0b1111, 3: 0b11}[len(text) % 4]
    last = alphabet.index(text[-1])
    assert last & spare == 0, "a canonical spelling has its spare bits clear"
    return text[:-1] + alphabet[last | 1]


def _refused(body: str) -> str:
    with pytest.raises(BadToken) as info:
        verify(SECRET, body)
    return str(info.value)


def test_a_good_token_still_verifies():
    body = mint(SECRET, name="bob", group="default", exp=int(time.time()) + 60, rpm=5, tpm=1000,
                balance_usd=12.5)[len("sk-ax-"):]
    token = verify(SECRET, body)
    assert (token.name, token.rpm, token.tpm, token.balance_usd) == ("bob", 5, 1000, 12.5)


@pytest.mark.parametrize("spoil", [
    lambda p, m: f"{p}=.{m}",                  # padding on the payload
    lambda p, m: f"{p}.{m}=",                  # padding on the mac
    lambda p, m: f"{p}.{m}==",
    lambda p, m: f"{p}.{m[:10]}+{m[11:]}",     # base64, not base64url
    lambda p, m: f"{p}.{m[:10]}/{m[11:]}",
    lambda p, m: f"{p[:4]} {p[4:]}.{m}",       # stray characters
    lambda p, m: f"{p}\n.{m}",
    lambda p, m: f"{p}.{m}\t",
    lambda p, m: f"{p}.{m}.{m}",               # a second dot
    lambda p, m: f"{p}.{_other_spelling(m)}",  # the same mac, spelled another way
    lambda p, m: f"{p}.{m}A",                  # a length base64 cannot have (4n + 1)
])
def test_one_token_one_spelling(spoil):
    payload, mac = mint(SECRET, name="bob", group="default")[len("sk-ax-"):].split(".")
    assert len(mac) % 4 == 3  # 32 bytes: the last character has two spare bits
    assert "invalid proxy token" in _refused(spoil(payload, mac))


def test_a_payload_spelled_another_way_is_refused_even_with_its_own_mac():
    # Whoever holds the secret could sign either spelling; only the canonical one is a token.
    payload = _b64(b'{"name":"bob","group":"default"}')
    assert len(payload) % 4 in (2, 3)
    assert "invalid proxy token" in _refused(_signed(_other_spelling(payload)))
    assert verify(SECRET, _signed(payload)).name == "bob"


@pytest.mark.parametrize("claims, reason", [
    ('{"name":"bob","group":"default","exp":NaN}', "not JSON"),
    ('{"name":"bob","group":"default","exp":Infinity}', "not JSON"),
    ('{"name":"bob","group":"default","exp":-Infinity}', "not JSON"),
    ('{"name":"bob","group":"default","exp":1e999}', "not JSON"),
    ('{"name":"bob","group":"default","exp":"2030-01-01"}', "exp must be a number"),
    ('{"name":"bob","group":"default","exp":true}', "exp must be a number"),
    ('{"name":"bob","group":"default","exp":null}', None),
    ('{"name":"bob","group":"default","rpm":NaN}', "not JSON"),
    ('{"name":"bob","group":"default","rpm":-1}', "rpm must be a whole number of at least 1"),
    ('{"name":"bob","group":"default","rpm":0}', "rpm must be a whole number of at least 1"),
    ('{"name":"bob","group":"default","rpm":1.5}', "rpm must be a whole number of at least 1"),
    ('{"name":"bob","group":"default","rpm":5.0}', "rpm must be a whole number of at least 1"),
    ('{"name":"bob","group":"default","rpm":"5"}', "rpm must be a whole number of at least 1"),
    ('{"name":"bob","group":"default","rpm":true}', "rpm must be a whole number of at least 1"),
    ('{"name":"bob","group":"default","tpm":1e30}', "tpm must be a whole number of at least 1"),
    ('{"name":"bob","group":"default","tpm":-100}', "tpm must be a whole number of at least 1"),
    ('{"name":"bob","group":"default","balance_usd":-0.01}', "balance_usd must be a number of at least 0"),
    ('{"name":"bob","group":"default","balance_usd":"5"}', "balance_usd must be a number of at least 0"),
    ('{"name":"bob","group":"default","balance_usd":NaN}', "not JSON"),
    ('{"name":"bob","group":"default","balance_usd":0}', None),
])
def test_claims_of_the_wrong_type_or_range(claims, reason):
    body = _claims(claims)
    if reason is None:
        verify(SECRET, body)
    else:
        assert reason in _refused(body)


@pytest.mark.parametrize("claims", [
    '{"name":"bob","group":"default","exp":NaN}',
    '{"name":"bob","group":"default","exp":1e999}',
    '{"name":"bob","group":"default","exp":1e400,"rpm":1e400}',
    '{"name":"bob","group":"default","rpm":100000000000000000000000000000}',
    '{"name":"bob","group":"default","rpm":-5}',
])
def test_no_bad_claim_gets_in_nor_breaks_the_proxy(claims):
    # Before: a NaN or infinite exp made a token that never expires, a huge number a 500.
    auth = Auth(parse(CONFIG))
    with pytest.raises(ProxyError) as info:
        auth.identify("sk-ax-" + _claims(claims), "openai")
    assert info.value.status == 401 and "invalid proxy token" in info.value.message


def test_balance_usd_in_the_config_and_the_cli(capsys, tmp_path):
    config = parse(CONFIG + '[[tokens]]\nname = "a"\nkey = "sk-ax-a"\nbalance_usd = 50\n')
    assert config.tokens[0].balance_usd == 50
    assert parse(CONFIG + '[[tokens]]\nname = "a"\nkey = "sk-ax-a"\n').tokens[0].balance_usd is None
    from relay.config import ConfigError

    with pytest.raises(ConfigError, match=r"tokens\[0\].balance_usd: must be at least 0"):
        parse(CONFIG + '[[tokens]]\nname = "a"\nkey = "sk-ax-a"\nbalance_usd = -1\n')
    conf = tmp_path / "u.toml"
    conf.write_text(CONFIG)
    assert tokens_main(["mint", "--config", str(conf), "--name", "c", "--group", "default",
                        "--balance-usd", "7.25"]) == 0
    token = verify(SECRET, capsys.readouterr().out.strip()[len("sk-ax-"):])
    assert token.balance_usd == 7.25
    for bad in (["--balance-usd", "-1"], ["--balance-usd", "nan"], ["--rpm", "0"], ["--tpm", "-3"]):
        assert tokens_main(["mint", "--config", str(conf), "--name", "c", "--group", "default", *bad]) == 2
        assert "must be" in capsys.readouterr().err


def test_hand_minted_payload_with_json_whitespace_is_fine():
    # The spelling rule is about base64, not JSON: any JSON text, encoded canonically, is a token.
    body = _claims(json.dumps({"name": "bob", "group": "default", "rpm": 3}, indent=2))
    assert verify(SECRET, body).rpm == 3
