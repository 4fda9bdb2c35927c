"""Candidate order: priority, weight, keys in turn, cooldown, stickiness."""

from __future__ import annotations

import collections
import itertools
import random

from relay.config import parse
from relay.planner import Planner
from relay.state.fleet import Fleet
from relay.state.memory import MemoryStore

CONFIG = """
[proxy]
cooldown_s = 30
[groups.default]
multiplier = 1
[groups.vip]
multiplier = 2
[[channels]]
name = "primary"
type = "openai"
keys = ["p1", "p2"]
models = ["gpt-4o", "gpt-4o-mini"]
priority = 10
[[channels]]
name = "heavy"
type = "openai"
keys = ["h1"]
models = ["gpt-*"]
weight = 3
[[channels]]
name = "light"
type = "anthropic"
keys = ["l1"]
models = ["gpt-*", "claude-*"]
weight = 1
[[channels]]
name = "vip-only"
type = "openai"
keys = ["v1"]
models = ["gpt-4o"]
groups = ["vip"]
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(seed: int = 0):
    clock = Clock()
    health = Fleet(MemoryStore(clock=clock), clock=clock)  # key health of one process
    return Planner(parse(CONFIG), health, rand=random.Random(seed).random, clock=clock), clock


def order(routes: Planner, group: str, model: str, affinity=None) -> list[str]:
    return [f"{a.channel.name}/{a.key}" for a in routes.plan(routes.tiers(group, model), affinity)]


def test_candidates_by_group_model_and_priority():
    routes, _ = make()
    tiers = routes.tiers("default", "gpt-4o")
    assert [[c.name for c in tier] for tier in tiers] == [["primary"], ["heavy", "light"]]
    assert [c.name for t in routes.tiers("default", "gpt-3.5") for c in t] == ["heavy", "light"]
    assert [c.name for t in routes.tiers("default", "claude-3") for c in t] == ["light"]
    assert routes.tiers("default", "llama") == ()
    assert [c.name for t in routes.tiers("vip", "gpt-4o") for c in t] == ["vip-only"]


def test_keys_in_turn_then_lower_priority():
    routes, _ = make()
    first = order(routes, "default", "gpt-4o")
    second = order(routes, "default", "gpt-4o")
    assert first[:2] == ["primary/p1", "primary/p2"]
    assert second[:2] == ["primary/p2", "primary/p1"]
    assert sorted(first[2:]) == ["heavy/h1", "light/l1"]


def test_weighted_spread_within_a_priority():
    routes, _ = make(seed=7)
    firsts = collections.Counter(order(routes, "default", "gpt-3.5")[0] for _ in range(4000))
    share = firsts["heavy/h1"] / 4000
    assert 0.70 < share < 0.80  # weight 3 : 1


def test_cooldown_moves_a_key_back_and_expires():
    routes, clock = make()
    attempt = next(routes.plan(routes.tiers("default", "gpt-4o")))
    routes.rest(attempt)
    assert routes.resting_count() == 1
    for _ in range(3):
        plan = order(routes, "default", "gpt-4o")
        assert plan[0] != f"primary/{attempt.key}"
        assert plan[-1] == f"primary/{attempt.key}"
    clock.now += 31
    assert routes.resting_count() == 0
    assert f"primary/{attempt.key}" in order(routes, "default", "gpt-4o")[:2]


def test_all_resting_tries_the_longest_rested_first():
    routes, clock = make()
    tiers = routes.tiers("default", "claude-3")
    (only,) = routes.plan(tiers)
    routes.rest(only)
    assert order(routes, "default", "claude-3") == ["light/l1"]  # still tried, not refused
    failed_in_turn = ["heavy/h1", "primary/p2", "light/l1", "primary/p1"]
    by_name = {f"{a.channel.name}/{a.key}": a for a in routes.plan(routes.tiers("default", "gpt-4o"))}
    for name in failed_in_turn:
        clock.now += 1
        routes.rest(by_name[name])
    assert order(routes, "default", "gpt-4o") == failed_in_turn  # the longest rested first


def test_sticky_conversations_stay_and_spread():
    routes, _ = make(seed=3)
    homes = {}
    for conversation in range(400):
        affinity = f"conv-{conversation}".encode()
        seen = {order(routes, "default", "gpt-3.5", affinity)[0] for _ in range(5)}
        assert len(seen) == 1  # the same conversation always lands on the same key
        homes[conversation] = seen.pop()
    share = collections.Counter(homes.values())["heavy/h1"] / 400
    assert 0.65 < share < 0.85  # conversations spread by weight 3 : 1


def test_sticky_key_that_rests_is_skipped():
    routes, _ = make()
    affinity = b"conversation"
    home = next(routes.plan(routes.tiers("default", "gpt-4o"), affinity))
    routes.rest(home)
    plan = list(itertools.islice(routes.plan(routes.tiers("default", "gpt-4o"), affinity), 10))
    assert plan[0] != home and plan[-1] == home and len(plan) == 4
