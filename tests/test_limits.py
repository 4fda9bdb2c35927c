"""rpm and tpm over a sliding minute, in memory."""

from __future__ import annotations

import pytest

from relay.config import Token
from relay.errors import ProxyError
from relay.limits import Limits


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rpm_refuses_with_retry_after_and_recovers():
    clock = Clock()
    limits, token = Limits(clock), Token("t", b"", "default", rpm=3)
    for _ in range(3):
        limits.admit(token)
    with pytest.raises(ProxyError) as info:
        limits.admit(token)
    assert info.value.status == 429 and "3 requests per minute" in info.value.message
    assert info.value.headers["retry-after"] == "60"
    clock.now += 30
    with pytest.raises(ProxyError) as info:
        limits.admit(token)
    assert info.value.headers["retry-after"] == "30"
    clock.now += 61  # the busy minute is now the previous one, mostly out of view
    limits.admit(token)


def test_tpm_counts_spent_tokens():
    clock = Clock()
    limits, token = Limits(clock), Token("t", b"", "default", tpm=100)
    limits.admit(token)
    limits.spend(token, 150)
    with pytest.raises(ProxyError, match="100 tokens per minute"):
        limits.admit(token)
    clock.now += 125  # two minutes later nothing is left
    limits.admit(token)


def test_tokens_without_limits_cost_nothing():
    limits = Limits()
    for _ in range(1000):
        limits.admit(Token("free", b"", "default"))
    assert len(limits._windows) == 0
