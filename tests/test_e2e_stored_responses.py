"""Kept Responses API answers (SPEC §6): `previous_response_id` works on any channel and any
replica, `GET /v1/responses/{id}` returns one, unknown or foreign ids are 404."""

from __future__ import annotations

import json

import openai
import pytest

import servers
from redis_server import RedisServer

CONFIG = """
[state]
url = "{state}"
[groups.default]
multiplier = 1
[[tokens]]
name = "dora"
key = "sk-ax-dora"
group = "default"
[[tokens]]
name = "eve"
key = "sk-ax-eve"
group = "default"
[[channels]]
name = "deepseek"
type = "openai"
base_url = "{up}/v1"
keys = ["ds-key"]
models = ["deepseek-chat"]
[[channels]]
name = "openai"
type = "openai"
base_url = "{up}/v1"
keys = ["oa-key"]
models = ["gpt-4o"]
responses = true
[[channels]]
name = "claude"
type = "anthropic"
base_url = "{up}"
keys = ["ant-key"]
models = ["claude-sonnet-4-5"]
"""


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replicas(upstream, redis, tmp_path_factory):
    """Two proxies sharing one redis-server, as two replicas of a fleet."""
    with servers.fleet(CONFIG.format(up=upstream.url, state=redis.url), tmp_path_factory) as pair:
        yield pair


def client(proxy, key: str = "sk-ax-dora") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)


def sent_messages(received) -> list[dict]:
    return json.loads(received.last()["body"])["messages"]


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_a_conversation_continues_on_another_replica_and_another_channel(replicas, received, stream):
    a, b = replicas
    if stream:
        with client(a).responses.stream(model="deepseek-chat", input="My name is Ada.",
                                        instructions="Be brief.") as events:
            first = events.get_final_response()
    else:
        first = client(a).responses.create(model="deepseek-chat", input="My name is Ada.", instructions="Be brief.")
    assert first.id.startswith("resp_") and first.output_text
    # Turn two, on the other replica, on a Claude channel: the kept conversation goes first.
    second = client(b).responses.create(model="claude-sonnet-4-5", input="What is my name?",
                                        previous_response_id=first.id)
    body = json.loads(received.last()["body"])
    turns = [(m["role"], json.dumps(m["content"])) for m in body["messages"]]
    assert [role for role, _ in turns] == ["user", "assistant", "user"]
    assert "My name is Ada." in turns[0][1] and first.output_text in turns[1][1] and "What is my name?" in turns[2][1]
    assert "system" not in body  # instructions belong to their own request, as with OpenAI
    assert second.previous_response_id == first.id
    # A third turn chains on the second: the whole conversation comes along.
    client(a).responses.create(model="deepseek-chat", input="Thanks!", previous_response_id=second.id)
    assert [m["role"] for m in sent_messages(received)] == ["user", "assistant", "user", "assistant", "user"]


def test_a_kept_answer_can_be_retrieved_by_its_token_only(replicas):
    a, b = replicas
    made = client(a).responses.create(model="deepseek-chat", input="Remember this.")
    again = client(b).responses.retrieve(made.id)
    assert again.id == made.id and again.output_text == made.output_text
    with pytest.raises(openai.NotFoundError):
        client(b, key="sk-ax-eve").responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError) as info:
        client(a, key="sk-ax-eve").responses.create(model="deepseek-chat", input="x", previous_response_id=made.id)
    assert info.value.body["code"] == "previous_response_not_found"


def test_unknown_and_unkept_ids_are_404(replicas):
    a, _ = replicas
    with pytest.raises(openai.NotFoundError) as info:
        client(a).responses.create(model="claude-sonnet-4-5", input="x", previous_response_id="resp_nope")
    assert info.value.body["code"] == "previous_response_not_found"
    unkept = client(a).responses.create(model="deepseek-chat", input="Forget this.", store=False)
    with pytest.raises(openai.NotFoundError):
        client(a).responses.create(model="deepseek-chat", input="x", previous_response_id=unkept.id)


def test_a_channel_that_serves_responses_gets_the_conversation_not_the_id(replicas, received):
    a, _ = replicas
    first = client(a).responses.create(model="claude-sonnet-4-5", input="Hello from Claude's side.")
    client(a).responses.create(model="gpt-4o", input="Next.", previous_response_id=first.id)
    sent = json.loads(received.last()["body"])
    assert received.last()["path"] == "/v1/responses"
    assert "previous_response_id" not in sent  # OpenAI never saw that id: the conversation goes instead
    assert len(sent["input"]) == 3 and sent["input"][-1]["content"] == "Next."
    assert not any(item.get("type") == "reasoning" for item in sent["input"])
