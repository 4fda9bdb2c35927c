"""What the admin API accepts: its paths and JSON bodies, read strictly into plain values.

Pure functions: bytes in, values out, a `ProxyError` (400, naming the field) for anything else.
An operator's typo must fail loudly rather than mint a token unlike the one intended.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Mapping
from urllib.parse import unquote_to_bytes

from relay.errors import ProxyError

MAX_NAME_CHARS = 128
# Money is integer nano-USD in the store (a 64-bit integer in Redis): 1e9 USD is 1e18 of them.
MAX_USD = 1e9
MAX_DAYS = 36_500  # a hundred years: `exp` stays a plain Unix time
MAX_LIMIT = 2**53  # rpm / tpm: exact in the double that the store's Lua reads them as
TOKENS_PATH = "/admin/tokens"


@dataclass(frozen=True, slots=True)
class MintRequest:
    name: str
    group: str
    models: tuple[str, ...] | None = None
    days: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    balance_usd: float | None = None


_MINT_FIELDS = ("name", "group", "models", "days", "rpm", "tpm", "balance_usd")


def bad(field: str, message: str, code: str = "invalid_field") -> ProxyError:
    return ProxyError(400, message, code=code, param=field)


class _Twice(Exception):
    pass


def _no_repeats(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _Twice(key)
        out[key] = value
    return out


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def json_body(body: bytes) -> dict:
    """The body as a JSON object; empty is `{}`. A key given twice is refused: which of the two
    counts would be a guess."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body, object_pairs_hook=_no_repeats, parse_constant=_no_constant)
    except _Twice as twice:
        field = twice.args[0]
        raise bad(field, f"Field '{field}' is given more than once", "duplicate_field") from None
    except (ValueError, RecursionError) as exc:  # (UnicodeDecodeError is a ValueError)
        raise ProxyError(400, f"The body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ProxyError(400, f"The body must be a JSON object, not a JSON {type(data).__name__}",
                         code="invalid_json")
    return data


def only_fields(data: Mapping, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for key in data:
        if key not in allowed:
            takes = ", ".join(allowed) if allowed else "no fields"
            raise bad(key, f"Unknown field '{key}' (this endpoint takes: {takes})", "unknown_field")


def finite(value) -> float | None:
    """A JSON number as a finite float, else None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a double
        return None
    return number if math.isfinite(number) else None


def check_name(name, field: str = "name") -> str:
    """A token name: it shows in usage lines, logs and metrics, so one line of printable text."""
    if not isinstance(name, str) or not name:
        raise bad(field, f"'{field}' must be a non-empty string")
    if len(name) > MAX_NAME_CHARS:
        raise bad(field, f"'{field}' is longer than {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
        raise bad(field, f"'{field}' must not contain control characters or line breaks")
    return name


def _whole(data: Mapping, field: str) -> int | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise bad(field, f"'{field}' must be a whole number from 1 to {MAX_LIMIT}")
    return value


def parse_mint(body: bytes, groups: Iterable[str]) -> MintRequest:
    """`{name, group, models?, days?, rpm?, tpm?, balance_usd?}`; null is the same as absent."""
    data = json_body(body)
    only_fields(data, _MINT_FIELDS)
    name = check_name(data.get("name"))
    group = data.get("group")
    known = sorted(groups)
    if not isinstance(group, str) or group not in known:
        raise bad("group", f"'group' must be one of the configured groups ({', '.join(known)}), not {group!r}")
    models = data.get("models")
    if models is not None:
        if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise bad("models", "'models' must be a list of non-empty strings (model names or globs)")
        if not models:
            raise bad("models", "'models' must not be empty: leave it out to allow every model")
        models = tuple(models)
    days = data.get("days")
    if days is not None:
        days = finite(days)
        if days is None or not 0 < days <= MAX_DAYS:
            raise bad("days", f"'days' must be a number greater than 0 and at most {MAX_DAYS}")
    balance = data.get("balance_usd")
    if balance is not None:
        balance = finite(balance)
        if balance is None or not 0 <= balance <= MAX_USD:
            raise bad("balance_usd", f"'balance_usd' must be a number from 0 to {MAX_USD:.0f}")
    return MintRequest(name=name, group=group, models=models, days=days, rpm=_whole(data, "rpm"),
                       tpm=_whole(data, "tpm"), balance_usd=balance)


def parse_credit(body: bytes) -> float:
    """`{usd}`: added to the balance; negative debits."""
    data = json_body(body)
    only_fields(data, ("usd",))
    usd = finite(data.get("usd"))
    if usd is None or abs(usd) > MAX_USD:
        raise bad("usd", f"'usd' is required: a number from -{MAX_USD:.0f} to {MAX_USD:.0f} (negative debits)")
    return usd


def parse_empty(body: bytes) -> None:
    only_fields(json_body(body), ())


def token_target(raw_path: bytes) -> tuple[str | None, str] | None:
    """(name, action) of a path under /admin/tokens, from the path as sent: a name may hold any
    character, `/` too, percent-encoded. (None, "") is the collection itself; None: no such path."""
    if not raw_path.startswith(TOKENS_PATH.encode()):
        return None  # (its letters percent-encoded: a spelling no client needs)
    rest = raw_path[len(TOKENS_PATH):]
    if rest in (b"", b"/"):
        return None, ""
    if rest[:1] != b"/":
        return None
    parts = rest[1:].rstrip(b"/").split(b"/")
    if len(parts) > 2 or not parts[0]:
        return None
    try:
        name = unquote_to_bytes(parts[0]).decode("utf-8")
    except UnicodeDecodeError:
        raise bad("name", "The token name in the path is not UTF-8") from None
    return name, (parts[1].decode("latin-1") if len(parts) == 2 else "")
