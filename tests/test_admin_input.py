"""The admin API's paths and bodies, read strictly: every bad field is a 400 that names it."""

from __future__ import annotations

import pytest

from relay.errors import ProxyError
from routes.admin_input import (
    MAX_NAME_CHARS, MintRequest, json_body, parse_credit, parse_empty, parse_mint, token_target,
)

GROUPS = ("default", "az")


def refused(fn, *args) -> ProxyError:
    with pytest.raises(ProxyError) as caught:
        fn(*args)
    assert caught.value.status == 400
    return caught.value


def test_a_full_mint_request():
    body = b'{"name": "alice", "group": "az", "models": ["gpt-4o*"], "days": 30, "rpm": 60, "tpm": 100000, ' \
           b'"balance_usd": 5}'
    assert parse_mint(body, GROUPS) == MintRequest("alice", "az", ("gpt-4o*",), 30.0, 60, 100000, 5.0)


def test_optional_fields_may_be_left_out_or_null():
    body = b'{"name": "bob", "group": "default", "models": null, "days": null, "balance_usd": null}'
    assert parse_mint(body, GROUPS) == MintRequest("bob", "default")
    assert parse_mint(b'{"name": "b", "group": "default", "balance_usd": 0}', GROUPS).balance_usd == 0.0
    assert parse_mint(b'{"name": "b", "group": "default", "days": 0.5}', GROUPS).days == 0.5


@pytest.mark.parametrize("body, field", [
    (b'{"group": "default"}', "name"),
    (b'{"name": "", "group": "default"}', "name"),
    (b'{"name": 7, "group": "default"}', "name"),
    (b'{"name": "a\\nb", "group": "default"}', "name"),
    (b'{"name": "a\\u0000b", "group": "default"}', "name"),
    (b'{"name": "a\\u2028b", "group": "default"}', "name"),
    (b'{"name": "' + b"x" * (MAX_NAME_CHARS + 1) + b'", "group": "default"}', "name"),
    (b'{"name": "a"}', "group"),
    (b'{"name": "a", "group": "gold"}', "group"),
    (b'{"name": "a", "group": ["default"]}', "group"),
    (b'{"name": "a", "group": "default", "models": "gpt-4o"}', "models"),
    (b'{"name": "a", "group": "default", "models": []}', "models"),
    (b'{"name": "a", "group": "default", "models": ["gpt-4o", ""]}', "models"),
    (b'{"name": "a", "group": "default", "models": [1]}', "models"),
    (b'{"name": "a", "group": "default", "days": 0}', "days"),
    (b'{"name": "a", "group": "default", "days": -1}', "days"),
    (b'{"name": "a", "group": "default", "days": "30"}', "days"),
    (b'{"name": "a", "group": "default", "days": true}', "days"),
    (b'{"name": "a", "group": "default", "days": 1e400}', "days"),
    (b'{"name": "a", "group": "default", "days": 1' + b"0" * 400 + b'}', "days"),
    (b'{"name": "a", "group": "default", "days": 100000}', "days"),
    (b'{"name": "a", "group": "default", "rpm": 0}', "rpm"),
    (b'{"name": "a", "group": "default", "rpm": 1.5}', "rpm"),
    (b'{"name": "a", "group": "default", "rpm": 60.0}', "rpm"),
    (b'{"name": "a", "group": "default", "rpm": true}', "rpm"),
    (b'{"name": "a", "group": "default", "tpm": -5}', "tpm"),
    (b'{"name": "a", "group": "default", "tpm": 99999999999999999999}', "tpm"),
    (b'{"name": "a", "group": "default", "balance_usd": -0.01}', "balance_usd"),
    (b'{"name": "a", "group": "default", "balance_usd": "5"}', "balance_usd"),
    (b'{"name": "a", "group": "default", "balance_usd": 1e10}', "balance_usd"),
    (b'{"name": "a", "group": "default", "balance": 5}', "balance"),
    (b'{"name": "a", "name": "b", "group": "default"}', "name"),
])
def test_every_bad_field_is_named(body, field):
    assert refused(parse_mint, body, GROUPS).param == field


@pytest.mark.parametrize("body", [b"", b"not json", b"[1]", b'"x"', b"{", b'{"usd": NaN}', b'{"usd": Infinity}',
                                  b"[" * 100_000, b"\xff\xfe{"])
def test_bodies_that_are_not_one_json_object(body):
    err = refused(parse_credit, body)
    assert err.code in ("invalid_json", "invalid_field")


def test_credit_takes_one_finite_number():
    assert parse_credit(b'{"usd": 2.5}') == 2.5
    assert parse_credit(b'{"usd": -1}') == -1.0
    for body in (b"{}", b'{"usd": null}', b'{"usd": "1"}', b'{"usd": false}', b'{"usd": 1e300}'):
        assert refused(parse_credit, body).param == "usd"
    assert refused(parse_credit, b'{"usd": 1, "note": "x"}').param == "note"


def test_revoke_takes_no_fields():
    parse_empty(b"")
    parse_empty(b"{}")
    assert refused(parse_empty, b'{"why": "left"}').param == "why"


def test_json_body_refuses_keys_given_twice_at_any_depth():
    assert json_body(b'{"a": {"b": 1}}') == {"a": {"b": 1}}
    assert refused(json_body, b'{"a": {"b": 1, "b": 2}}').code == "duplicate_field"


@pytest.mark.parametrize("raw, target", [
    (b"/admin/tokens", (None, "")),
    (b"/admin/tokens/", (None, "")),
    (b"/admin/tokens/alice", ("alice", "")),
    (b"/admin/tokens/alice/", ("alice", "")),
    (b"/admin/tokens/alice/credit", ("alice", "credit")),
    (b"/admin/tokens/team%2Falice/revoke", ("team/alice", "revoke")),
    (b"/admin/tokens/%E4%B8%AD%20x", ("\u4e2d x", "")),
    (b"/admin/tokens/a/b/c", None),
    (b"/admin/tokens//credit", None),
    (b"/admin/tokensx", None),
    (b"/admin/%74okens/alice", None),
])
def test_token_target_reads_the_path_as_sent(raw, target):
    assert token_target(raw) == target


def test_a_name_that_is_not_utf8_is_refused():
    assert refused(token_target, b"/admin/tokens/%FF").param == "name"
