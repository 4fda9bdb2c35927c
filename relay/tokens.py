"""Signed proxy tokens: valid on every replica without a config change (SPEC §5).

    sk-ax-<payload>.<mac>
    payload = base64url(JSON {"name", "group", "models"?, "exp"?, "rpm"?, "tpm"?, "balance_usd"?}), unpadded
    mac     = base64url(HMAC-SHA256(secret, ASCII bytes of payload)), unpadded

A token has one spelling: base64url without padding, with the unused bits of its last character
clear. Anything else (padding, `+` or `/`, whitespace, another spelling of the same bytes) is
refused, so a token cannot be varied to slip past a cache, a rate limit or a revocation list
keyed by its text.

Mint one with:  python -m relay.tokens mint --name alice --group default --days 30
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import re
import sys
import time

import orjson

from .config import ConfigError, Globs, Token, load


class BadToken(Exception):
    pass


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def _b64decode(text: str) -> bytes:
    """Strict unpadded base64url: the alphabet only, and only the one canonical spelling."""
    if len(text) % 4 == 1 or not _B64URL.fullmatch(text):
        raise ValueError("not unpadded base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(raw) != text:  # the last character's unused bits were not zero
        raise ValueError("not the canonical spelling")
    return raw


def mint(secret: str, prefix: str = "sk-ax-", **claims) -> str:
    claims = {k: v for k, v in claims.items() if v is not None}
    payload = _b64encode(json.dumps(claims, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
    mac = hmac.new(secret.encode(), payload.encode("ascii"), hashlib.sha256).digest()
    return f"{prefix}{payload}.{_b64encode(mac)}"


def verify(secret: str, body: str) -> Token:
    """`body` is the token without its prefix. Raises BadToken with a reason a client may read."""
    payload, dot, mac = body.partition(".")
    if not dot or not payload or not mac:
        raise BadToken("invalid proxy token")
    try:
        given = _b64decode(mac)
        raw = _b64decode(payload)
    except (binascii.Error, ValueError):
        raise BadToken("invalid proxy token: not unpadded base64url") from None
    expected = hmac.new(secret.encode(), payload.encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        raise BadToken("invalid proxy token: bad signature")
    try:
        # orjson, not json: Python's json takes NaN, Infinity and 1e999, and a NaN or infinite
        # `exp` never expires.
        claims = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadToken("invalid proxy token: payload is not JSON") from None
    if not isinstance(claims, dict):
        raise BadToken("invalid proxy token: payload is not a JSON object")
    name, group = claims.get("name"), claims.get("group")
    if not isinstance(name, str) or not name or not isinstance(group, str) or not group:
        raise BadToken("invalid proxy token: name and group are required")
    models = claims.get("models")
    if models is not None and (
        not isinstance(models, list) or not all(isinstance(m, str) and m for m in models)
    ):
        raise BadToken("invalid proxy token: models must be a list of strings")
    exp = claims.get("exp")
    if exp is not None and not _finite(exp):
        raise BadToken("invalid proxy token: exp must be a number (Unix seconds)")
    limits = {}
    for key in ("rpm", "tpm"):
        value = limits[key] = claims.get(key)
        if value is not None and (type(value) is not int or value < 1):
            raise BadToken(f"invalid proxy token: {key} must be a whole number of at least 1")
    balance = claims.get("balance_usd")
    if balance is not None and not (_finite(balance) and balance >= 0):
        raise BadToken("invalid proxy token: balance_usd must be a number of at least 0")
    return Token(
        name=name,
        digest=b"",
        group=group,
        models=Globs(tuple(models)) if models is not None else None,  # [] allows nothing
        expires=float(exp) if exp is not None else None,
        rpm=limits["rpm"],
        tpm=limits["tpm"],
        balance_usd=float(balance) if balance is not None else None,
    )


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def main(argv: list[str] | None = None) -> int:
    import argparse  # (here: the proxy imports this module; argparse was ~1 ms of its cold start)

    parser = argparse.ArgumentParser(prog="python -m relay.tokens", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("mint", help="print a new signed token")
    m.add_argument("--name", required=True)
    m.add_argument("--group", required=True)
    m.add_argument("--models", nargs="*", help="allowed model globs (default: all)")
    m.add_argument("--days", type=float, help="valid for this many days (default: no expiry)")
    m.add_argument("--rpm", type=int)
    m.add_argument("--tpm", type=int)
    m.add_argument("--balance-usd", type=float, help="opening credit in USD (default: no balance limit)")
    m.add_argument("--config", help="upstreams.toml to take the secret, prefix and groups from")
    m.add_argument("--secret", help="signing secret (default: $AURAX_SIGNING_SECRET or the config's)")
    args = parser.parse_args(argv)

    prefix, secret, groups = "sk-ax-", args.secret or os.environ.get("AURAX_SIGNING_SECRET"), None
    if args.config or os.path.exists(os.environ.get("AURAX_CONFIG") or "upstreams.toml"):
        try:
            config = load(args.config)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        prefix, groups = config.proxy.token_prefix, config.groups
        secret = secret or config.proxy.signing_secret
    if not secret:
        print("no signing secret: set AURAX_SIGNING_SECRET or pass --secret", file=sys.stderr)
        return 2
    if groups is not None and args.group not in groups:
        print(f"unknown group {args.group!r}; the config has: {', '.join(groups)}", file=sys.stderr)
        return 2
    for flag, value in (("--rpm", args.rpm), ("--tpm", args.tpm)):
        if value is not None and value < 1:
            print(f"{flag} must be at least 1", file=sys.stderr)
            return 2
    if args.days is not None and not (math.isfinite(args.days) and args.days > 0):
        print("--days must be a finite number greater than 0", file=sys.stderr)
        return 2
    if args.balance_usd is not None and not (math.isfinite(args.balance_usd) and args.balance_usd >= 0):
        print("--balance-usd must be a finite number of at least 0", file=sys.stderr)
        return 2
    exp = int(time.time() + args.days * 86400) if args.days else None
    print(mint(secret, prefix, name=args.name, group=args.group, models=args.models or None,
               exp=exp, rpm=args.rpm, tpm=args.tpm, balance_usd=args.balance_usd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
