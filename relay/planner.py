"""The channel planner: which channel key serves a request, and in what order the others are
tried (SPEC §6).

Candidates are the channels of the caller's group whose models match; the highest priority comes
first, a weighted random order within one priority, and each channel's keys in turn. Keys that
failed rest for `cooldown_s` (in memory, per replica) and go to the back of the line; when every
candidate rests, the one that failed longest ago is still tried rather than refusing.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from cachetools import LRUCache

from .config import Channel, Config


@dataclass(frozen=True, slots=True)
class Attempt:
    channel: Channel
    key_index: int

    @property
    def key(self) -> str:
        return self.channel.keys[self.key_index]


_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """A 64-bit finaliser (splitmix64): nearby inputs give unrelated, uniform outputs."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK
    return x ^ (x >> 31)


class Planner:
    def __init__(
        self,
        config: Config,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channels = config.channels
        self.cooldown_s = config.proxy.cooldown_s
        self._rand = rand
        self._clock = clock
        self._tiers: LRUCache[tuple[str, str], tuple[tuple[Channel, ...], ...]] = LRUCache(4096)
        self._turn = {c.name: itertools.count() for c in self.channels}
        self._resting: dict[tuple[str, int], tuple[float, float]] = {}  # -> (until, failed at)
        self._key_ids: dict[str, tuple[int, ...]] = {}

    def tiers(self, group: str, model: str) -> tuple[tuple[Channel, ...], ...]:
        """Matching channels grouped by priority, highest first; empty when none serves."""
        found = self._tiers.get((group, model))
        if found is None:
            matching = sorted(
                (c for c in self.channels if group in c.groups and c.models(model)),
                key=lambda c: -c.priority,
            )
            found = tuple(
                tuple(tier) for _, tier in itertools.groupby(matching, key=lambda c: c.priority)
            )
            self._tiers[(group, model)] = found
        return found

    def plan(self, tiers: tuple[tuple[Channel, ...], ...], affinity: bytes | None = None) -> Iterator[Attempt]:
        """Every channel key in the order to try it: healthy ones first, resting ones last."""
        now = self._clock()
        resting: list[tuple[float, Attempt]] = []
        sticky = self._sticky(tiers[0], affinity) if affinity and tiers else None
        if sticky is not None and not self._rests(sticky, now, resting):
            yield sticky
        for tier in tiers:
            for channel in self._shuffle(tier):
                n = len(channel.keys)
                start = next(self._turn[channel.name]) % n if n > 1 else 0
                for i in range(n):
                    attempt = Attempt(channel, (start + i) % n)
                    if attempt == sticky:
                        continue
                    if not self._rests(attempt, now, resting):
                        yield attempt
        resting.sort(key=lambda pair: pair[0])
        for _, attempt in resting:
            yield attempt

    def _rests(self, attempt: Attempt, now: float, resting: list) -> bool:
        state = self._resting.get((attempt.channel.name, attempt.key_index))
        if state is None:
            return False
        until, failed_at = state
        if until <= now:
            del self._resting[(attempt.channel.name, attempt.key_index)]
            return False
        resting.append((failed_at, attempt))
        return True

    def _shuffle(self, tier: tuple[Channel, ...]) -> list[Channel] | tuple[Channel, ...]:
        if len(tier) == 1:
            return tier
        # Weighted random order (Efraimidis–Spirakis): sort by u^(1/w), largest first.
        return sorted(tier, key=lambda c: self._rand() ** (1.0 / c.weight), reverse=True)

    def _sticky(self, tier: tuple[Channel, ...], affinity: bytes) -> Attempt:
        """One conversation's home: weighted rendezvous hashing over the top tier's keys.

        Each key has a fixed 64-bit identity; mixed with the conversation's hash (a few integer
        operations, no hash call per key) it gives the key's draw for this conversation.
        """
        conversation = int.from_bytes(affinity[:8], "big")
        best, best_score = None, math.inf
        for channel in tier:
            share = channel.weight / len(channel.keys)
            for index, identity in enumerate(self._identities(channel)):
                u = (_mix(conversation ^ identity) + 1) / (2**64 + 1)
                score = -math.log(u) / share
                if score < best_score:
                    best, best_score = Attempt(channel, index), score
        return best

    def _identities(self, channel: Channel) -> tuple[int, ...]:
        found = self._key_ids.get(channel.name)
        if found is None:
            found = self._key_ids[channel.name] = tuple(
                int.from_bytes(hashlib.blake2b(f"{channel.name}\0{i}".encode(), digest_size=8).digest(), "big")
                for i in range(len(channel.keys))
            )
        return found

    def rest(self, attempt: Attempt) -> None:
        now = self._clock()
        self._resting[(attempt.channel.name, attempt.key_index)] = (now + self.cooldown_s, now)

    def resting_count(self) -> int:
        now = self._clock()
        return sum(1 for until, _ in self._resting.values() if until > now)
