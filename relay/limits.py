"""Per-token `rpm` and `tpm`, per replica, in memory (SPEC §7).

A sliding minute approximated by two fixed minutes: the previous minute's count weighted by how
much of it still lies inside the last sixty seconds, plus the current one's. Tokens are charged
when a request finishes (only then is its usage known), so a request is refused once the
minute's spending has reached the limit.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from cachetools import LRUCache

from .config import Token
from .errors import ProxyError

WINDOW_S = 60.0


class _Window:
    __slots__ = ("start", "requests", "tokens", "prev_requests", "prev_tokens")

    def __init__(self, start: float) -> None:
        self.start = start
        self.requests = self.tokens = 0
        self.prev_requests = self.prev_tokens = 0

    def roll(self, now: float) -> float:
        """Bring the window to `now`; the weight of the previous minute still in view."""
        elapsed = now - self.start
        if elapsed >= WINDOW_S:
            minutes = int(elapsed // WINDOW_S)
            if minutes == 1:
                self.prev_requests, self.prev_tokens = self.requests, self.tokens
            else:
                self.prev_requests = self.prev_tokens = 0
            self.requests = self.tokens = 0
            self.start += minutes * WINDOW_S
            elapsed -= minutes * WINDOW_S
        return 1.0 - elapsed / WINDOW_S


class Limits:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # A window holds only its last two minutes, so an old one costs nothing but its slot;
        # the least recently used go first once this many tokens are tracked.
        self._windows: LRUCache[str, _Window] = LRUCache(maxsize=100_000)

    def _window(self, name: str) -> _Window:
        window = self._windows.get(name)
        if window is None:
            window = self._windows[name] = _Window(self._clock())
        return window

    def admit(self, token: Token) -> None:
        if token.rpm is None and token.tpm is None:
            return
        now = self._clock()
        window = self._window(token.name)
        weight = window.roll(now)
        retry_after = max(1, math.ceil(window.start + WINDOW_S - now))
        if token.rpm is not None and window.prev_requests * weight + window.requests >= token.rpm:
            raise _limited(f"Rate limit reached for token '{token.name}': {token.rpm} requests per minute "
                           f"(per replica)", retry_after)
        if token.tpm is not None and window.prev_tokens * weight + window.tokens >= token.tpm:
            raise _limited(f"Rate limit reached for token '{token.name}': {token.tpm} tokens per minute "
                           f"(per replica)", retry_after)
        window.requests += 1

    def spend(self, token: Token, tokens: int) -> None:
        if token.tpm is not None and tokens:
            window = self._window(token.name)
            window.roll(self._clock())
            window.tokens += tokens


def _limited(message: str, retry_after: int) -> ProxyError:
    return ProxyError(429, message, code="rate_limit_exceeded", headers={"retry-after": str(retry_after)})
