"""Prompt caching for clients that cannot ask (`auto_cache` on an anthropic channel, SPEC §6):
turn two of a long conversation reads its prefix from the cache, and cache writes and reads are
billed at their own prices (§7)."""

from __future__ import annotations

import openai
import pytest

import servers

CONFIG = """
[groups.default]
multiplier = 2
[[tokens]]
name = "carol"
key = "sk-ax-carol"
group = "default"
[[channels]]
name = "claude-cached"
type = "anthropic"
base_url = "{up}"
keys = ["ant-cached"]
models = ["claude-sonnet-4-5"]
auto_cache = true
[[channels]]
name = "claude-plain"
type = "anthropic"
base_url = "{up}"
keys = ["ant-plain"]
models = ["claude-haiku-4-5"]
[prices]
"claude-*" = {{ input = 3, output = 15, cached_input = 0.3, cache_write = 3.75 }}
"""

SYSTEM = "You are a careful assistant. " + "Follow the house style guide in every answer. " * 300
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    server = servers.proxy(CONFIG.format(up=upstream.url), tmp_path_factory.mktemp("caching"))
    yield server
    server.stop()


def chat(proxy, model: str, messages: list[dict]):
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="sk-ax-carol", max_retries=0)
    return client.chat.completions.with_raw_response.create(model=model, messages=messages, tools=[WEATHER],
                                                             tool_choice="none")


def test_turn_two_reads_the_conversation_from_the_cache(proxy, received):
    turn1 = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Plan a trip to Oslo."}]
    first = chat(proxy, "claude-sonnet-4-5", turn1)
    sent = received.last()["body"]
    assert sent.count('"cache_control"') == 3  # tools, system, the conversation so far
    answer = first.parse()
    assert answer.usage.prompt_tokens_details.cached_tokens == 0
    record1 = servers.usage_record(proxy, first.headers["x-request-id"])
    assert record1["usage"]["cache_write_tokens"] > 1000 and record1["usage"]["cached_input_tokens"] == 0

    turn2 = turn1 + [{"role": "assistant", "content": answer.choices[0].message.content},
                     {"role": "user", "content": "And to Bergen?"}]
    second = chat(proxy, "claude-sonnet-4-5", turn2)
    usage = second.parse().usage
    record2 = servers.usage_record(proxy, second.headers["x-request-id"])
    assert usage.prompt_tokens_details.cached_tokens > 1000  # the system prompt and turn one, from the cache
    assert record2["usage"]["cached_input_tokens"] == usage.prompt_tokens_details.cached_tokens
    u = record2["usage"]
    fresh = u["input_tokens"] - u["cached_input_tokens"] - u["cache_write_tokens"]
    official = (fresh * 3 + u["cached_input_tokens"] * 0.3 + u["cache_write_tokens"] * 3.75
                + u["output_tokens"] * 15) / 1e6
    assert record2["official_usd"] == pytest.approx(official) and record2["billed_usd"] == pytest.approx(2 * official)


def test_a_channel_without_auto_cache_sends_no_marks(proxy, received):
    response = chat(proxy, "claude-haiku-4-5", [{"role": "system", "content": SYSTEM},
                                                 {"role": "user", "content": "hi"}])
    assert '"cache_control"' not in received.last()["body"]
    assert response.parse().usage.prompt_tokens_details.cached_tokens == 0
