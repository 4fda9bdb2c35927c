"""What a request asks of the fleet before it is forwarded, and how a refusal reads (SPEC §7, §11).

A token's request reserves its likely maximum: its input (about three characters a token, more
than most text needs) plus the output it allows (`max_tokens` in its dialect, else `[proxy]
reserve_tokens`), priced at the model's rates times the group's multiplier, against its balance,
and those tokens against its `tpm`. Settlement after the answer replaces both with the truth.
"""

from __future__ import annotations

import datetime as dt

from .config import Config, Group, Price, Token
from .dialects import Dialect
from .errors import ProxyError
from .state import Admission, Ask, Settlement
from .usage import request_chars


def reserved_tokens(payload: dict | None, dialect: Dialect, reserve_tokens: int) -> tuple[int, int]:
    """(input, output) tokens a request may use at most, as far as can be told before it runs."""
    if not isinstance(payload, dict):
        return 0, 0
    return (request_chars(payload) + 2) // 3, dialect.max_output(payload) or reserve_tokens


def reserved_usd(price: Price | None, tokens: tuple[int, int], multiplier: float) -> float:
    if price is None:
        return 0.0
    if price.request is not None:
        return price.request * multiplier
    return (tokens[0] * price.input + tokens[1] * price.output) / 1_000_000 * multiplier


def token_ask(request_id: str, token: Token, group: Group, config: Config, dialect: Dialect,
              model: str | None, payload: dict | None) -> Ask:
    price = config.price(model) if model else None
    # Counting walks the whole request: only done when a tpm or a per-token price will read it.
    counts = model and (token.tpm is not None or price is not None and price.request is None)
    tokens = reserved_tokens(payload, dialect, config.proxy.reserve_tokens) if counts else (0, 0)
    return Ask(
        request_id=request_id, token=token.name, rpm=token.rpm, tpm=token.tpm, tokens=sum(tokens),
        usd=reserved_usd(price, tokens, group.multiplier), opening_usd=token.balance_usd,
    )


def refusal(admission: Admission, token: Token | None, dialect: Dialect) -> ProxyError:
    """The error a refused request gets, in the shape its dialect's provider uses."""
    reason = admission.reason
    name = token.name if token is not None else None
    if reason == "revoked":
        return ProxyError(401, f"Proxy token '{name}' has been revoked", code="token_revoked")
    if reason == "balance":
        left = admission.balance_usd or 0.0
        return ProxyError(
            dialect.out_of_credit,
            f"Your credit balance is too low: token '{name}' has ${max(left, 0):.4f} left for this request. "
            "Top it up to continue.",
            code="insufficient_quota", kind="insufficient_quota",
        )
    retry = {"retry-after": str(max(admission.retry_after, 1))}
    if reason == "ip_rpm":
        return ProxyError(429, "Rate limit reached for this client address (passthrough requests per minute)",
                          code="rate_limit_exceeded", headers=retry)
    limit = f"{token.rpm} requests" if reason == "rpm" else f"{token.tpm} tokens"
    return ProxyError(429, f"Rate limit reached for token '{name}': {limit} per minute (for the whole fleet)",
                      code="rate_limit_exceeded", headers=retry)


def store_down() -> ProxyError:
    """(A new one each time: an exception raised again keeps growing its traceback.)"""
    return ProxyError(503, "The proxy's shared state is unavailable; retry shortly", code="state_unavailable")


def settlement(request_id: str, name: str, billed_usd: float | None, input_tokens: int, output_tokens: int) -> Settlement:
    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    return Settlement(request_id=request_id, token=name, day=day, billed_usd=billed_usd or 0.0,
                      tokens=input_tokens + output_tokens)
