"""/metrics: behind a bearer key when one is configured; configured models keep their labels."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app import build_app
from relay.config import ConfigError, parse
from relay.metrics import MAX_MODELS, Metrics, configured_models
from relay.records import Call

BASE = """
[groups.default]
multiplier = 1
[[channels]]
name = "oa"
type = "openai"
base_url = "https://oa.test/v1"
keys = ["oa-1"]
models = ["gpt-4o", "gpt-4.1-*", "o[34]-mini"]
model_map = { "fast" = "gpt-4o-mini" }
[prices]
"gpt-4o" = { input = 1, output = 2 }
"claude-*" = { input = 3, output = 15 }
"whisper-1" = { request = 0.006 }
"""


def scrape(config_text: str, env: dict | None = None, **headers) -> httpx.Response:
    app = build_app(parse(config_text, env=env or {}), transport=httpx.MockTransport(lambda r: httpx.Response(500)))

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://proxy") as client:
            return await client.get("/metrics", headers=headers)

    return asyncio.run(get())


ADMIN = BASE + '[admin]\nkey = "${AURAX_ADMIN_KEY}"\n'


def test_admin_table_reads_keys_and_treats_an_unset_variable_as_no_key():
    assert parse(ADMIN, env={}).admin.key is None
    assert parse(ADMIN, env={"AURAX_ADMIN_KEY": "adm"}).admin.key == "adm"
    both = parse(BASE + '[admin]\nkey = "adm"\nmetrics_key = "${SCRAPE:-scr}"\n', env={})
    assert (both.admin.key, both.admin.metrics_key) == ("adm", "scr")
    assert parse(BASE, env={}).admin.key is None and parse(BASE, env={}).admin.metrics_key is None
    with pytest.raises(ConfigError, match=r"admin.token: unknown field"):
        parse(BASE + '[admin]\ntoken = "x"\n', env={})
    with pytest.raises(ConfigError, match=r"admin.key: must not be empty"):
        parse(BASE + '[admin]\nkey = ""\n', env={})


def test_metrics_are_open_when_no_key_is_set():
    assert scrape(ADMIN).status_code == 200


@pytest.mark.parametrize("config, env", [
    (ADMIN, {"AURAX_ADMIN_KEY": "adm-secret"}),
    (BASE + '[admin]\nmetrics_key = "scrape-secret"\n', {}),
    (BASE + '[admin]\nkey = "adm-secret"\nmetrics_key = "scrape-secret"\n', {}),
])
def test_metrics_need_a_bearer_key_when_one_is_set(config, env):
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic adm-secret"},
                    {"authorization": "Bearer adm-secret "}, {"x-api-key": "adm-secret"}):
        response = scrape(config, env, **headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == "application/json"
        assert response.headers["www-authenticate"] == "Bearer"
        assert "secret" not in response.text and response.json()["error"]["code"] == "invalid_admin_key"
    keys = [k for k in ("adm-secret", "scrape-secret") if k in config or k in env.values()]
    for key in keys:
        response = scrape(config, env, authorization=f"Bearer {key}")
        assert response.status_code == 200 and "aurax_requests_total" in response.text
        assert "aurax_request_body_bytes 0.0" in response.text


def test_configured_models_are_the_names_without_globs():
    assert configured_models(parse(BASE, env={})) == {"gpt-4o", "fast", "whisper-1"}


def _call(model: str, passthrough: bool = False) -> Call:
    call = Call("r", "openai", None)
    call.model, call.status = model, 200
    if passthrough:
        call.passthrough = True
    else:
        call.channel, call.group = "oa", "default"
    return call


def test_client_names_cannot_push_out_configured_models():
    metrics = Metrics(lambda: 0, lambda: 0, known_models=frozenset({"gpt-4o", "fast"}))
    record = {"billed_usd": None, "latency_ms": 1.0}
    for i in range(MAX_MODELS + 50):
        metrics.observe(_call(f"made-up-{i}"), record, priced=False)
    for name in ("gpt-4o", "fast"):
        metrics.observe(_call(name), record, priced=False)
        metrics.observe(_call(name, passthrough=True), record, priced=False)  # a bounded set: labelled too
    labels = {key[1] for key in metrics.requests}
    assert {"gpt-4o", "fast", "other"} <= labels
    made_up = {label for label in labels if label.startswith("made-up-")}
    assert len(made_up) == MAX_MODELS  # the configured names took none of the slots
    assert metrics.requests[("passthrough", "gpt-4o", "", "200", "openai")] == 1
