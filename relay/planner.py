"""The channel planner: which channel key serves a request, and in what order the others are
tried (SPEC §6).

Candidates are the channels of the caller's group whose models match; the highest priority comes
first, a weighted random order within one priority, and each channel's keys in turn. Keys that
failed rest for `cooldown_s` and go to the back of the line; when every candidate rests, the one
that failed longest ago is still tried rather than refusing. Key health is the fleet's
(`relay.state.fleet.Fleet`): a key rested on one replica rests on all of them.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Protocol

from cachetools import LRUCache

from .config import Channel, Config


class KeyHealth(Protocol):
    """Which channel keys rest, until when (wall clock); what `Fleet` provides."""

    @property
    def resting(self) -> Mapping[str, float]: ...

    def rest_key(self, key_id: str, seconds: float) -> None: ...


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
        health: KeyHealth,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.channels = config.channels
        self.cooldown_s = config.proxy.cooldown_s
        self._health = health
        self._rand = rand
        self._clock = clock
        self._tiers: LRUCache[tuple[str, str], tuple[tuple[Channel, ...], ...]] = LRUCache(4096)
        self._turn = {c.name: itertools.count() for c in self.channels}
        self._key_ids: dict[str, tuple[int, ...]] = {}
        # A key's name in the fleet's key health: its channel and a digest of the key (never the
        # key), so reordering a channel's keys keeps their health.
        self._health_ids = {
            c.name: tuple(f"{c.name}:{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}" for key in c.keys)
            for c in self.channels
        }

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
        health = self._health.resting
        sticky = self._sticky(tiers[0], affinity) if affinity and tiers else None
        if sticky is not None and not self._rests(sticky, health, now, resting):
            yield sticky
        for tier in tiers:
            for channel in self._shuffle(tier):
                n = len(channel.keys)
                start = next(self._turn[channel.name]) % n if n > 1 else 0
                for i in range(n):
                    attempt = Attempt(channel, (start + i) % n)
                    if attempt == sticky:
                        continue
                    if not self._rests(attempt, health, now, resting):
                        yield attempt
        resting.sort(key=lambda pair: pair[0])
        for _, attempt in resting:
            yield attempt

    def _rests(self, attempt: Attempt, health: Mapping[str, float], now: float, resting: list) -> bool:
        if not health:
            return False
        until = health.get(self._health_ids[attempt.channel.name][attempt.key_index])
        if until is None or until <= now:
            return False
        resting.append((until, attempt))  # every rest is as long: the earliest end failed first
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
        """The key failed by its own fault: it rests `cooldown_s` on every replica."""
        self._health.rest_key(self._health_ids[attempt.channel.name][attempt.key_index], self.cooldown_s)

    def resting_count(self) -> int:
        now = self._clock()
        return sum(1 for until in self._health.resting.values() if until > now)
