"""Config parsing: the shipped file works with no secrets; bad files name file, field and problem."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from relay.config import ConfigError, load, parse

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """
[groups.default]
multiplier = 1
[[channels]]
name = "a"
type = "openai"
keys = ["k"]
models = ["gpt-*"]
"""


def test_shipped_config_loads_with_no_secrets():
    config = load(str(ROOT / "upstreams.toml"), env={})
    assert set(config.groups) == {"default", "az", "reverse", "claude-direct"}
    assert [config.groups[g].multiplier for g in ("default", "az", "reverse", "claude-direct")] == [1, 1.5, 1.4, 16]
    assert set(config.passthrough) == {"openai", "anthropic", "gemini"}
    assert config.channels == ()
    assert config.tokens == ()
    assert config.proxy.signing_secret is None
    assert config.admin.key is None  # no admin API
    # one warning per left-out channel or token
    assert len(config.warnings) == 8
    assert all("left out" in w for w in config.warnings)


def test_shipped_config_with_keys_set():
    config = load(str(ROOT / "upstreams.toml"), env={"OPENAI_API_KEY": "sk-1", "ANTHROPIC_API_KEY": "a",
                                                    "AURAX_DEMO_TOKEN": "sk-ax-demo", "AURAX_ADMIN_KEY": "adm"})
    assert config.admin.key == "adm"
    names = [c.name for c in config.channels]
    assert names == ["openai", "anthropic"]
    openai = config.channels[0]
    assert openai.keys == ("sk-1",)  # OPENAI_API_KEY_2 unset: that key is dropped, with a warning
    assert any("OPENAI_API_KEY_2" in w and "using 1 key" in w for w in config.warnings)
    assert config.tokens[0].digest == hashlib.sha256(b"sk-ax-demo").digest()


def test_env_defaults_and_values():
    config = parse(MINIMAL.replace('keys = ["k"]', 'keys = ["${K:-fallback}", "${J}"]'), env={"J": "j"})
    assert config.channels[0].keys == ("fallback", "j")


@pytest.mark.parametrize(
    "change, message",
    [
        ('type = "openai"', 'type = "bedrock"'),
        ('models = ["gpt-*"]', 'models = "gpt-*"\nmodles = 1'),
        ("multiplier = 1", 'multiplier = "x"'),
        ('keys = ["k"]', 'keys = ["k"]\nbase_url = "ftp://x"'),
        ('keys = ["k"]', 'keys = ["k"]\ngroups = ["vip"]'),
        ('keys = ["k"]', 'keys = ["k"]\nbase_url = "${UPSTREAM_URL}"'),
        ('keys = ["k"]', 'keys = ["k"]\nheaders = { "Bad Name" = "x" }'),
    ],
    ids=["type", "unknown-field", "multiplier", "url", "group", "unset-required-var", "header"],
)
def test_bad_config_names_field(change, message, request):
    text = MINIMAL.replace(change, message)
    with pytest.raises(ConfigError) as info:
        parse(text, "conf.toml", env={})
    text = str(info.value)
    assert text.startswith("conf.toml: ")
    expected = {
        "type": "channels[0].type: must be one of openai, azure, anthropic, gemini, not 'bedrock'",
        "unknown-field": "channels[0].modles: unknown field",
        "multiplier": "groups.default.multiplier: must be a finite number",
        "url": "channels[0].base_url: must be an http(s) URL",
        "group": "channels[0].groups[0]: unknown group 'vip'",
        "unset-required-var": "channels[0].base_url: ${UPSTREAM_URL} is not set",
        "header": "channels[0].headers.Bad Name: is not a valid header name",
    }
    assert expected[request.node.callspec.id] in text, text


def test_bad_toml_and_missing_file():
    with pytest.raises(ConfigError, match=r"^x.toml: not valid TOML"):
        parse("[proxy\n", "x.toml")
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load("/nonexistent/upstreams.toml")


def test_tokens_validation():
    base = MINIMAL + '[[tokens]]\nname = "t"\n'
    with pytest.raises(ConfigError, match=r"tokens\[0\]: needs exactly one of key or key_sha256"):
        parse(base, env={})
    with pytest.raises(ConfigError, match=r"tokens\[0\].key: must start with the token prefix 'sk-ax-'"):
        parse(base + 'key = "nope"\n', env={})
    with pytest.raises(ConfigError, match=r"tokens\[0\].key_sha256: must be 64 hex digits"):
        parse(base + 'key_sha256 = "abc"\n', env={})
    config = parse(base + 'key_sha256 = "' + "ab" * 32 + '"\nexpires = 2027-01-01T00:00:00Z\nmodels = ["gpt-4o*"]\n')
    token = config.tokens[0]
    assert token.digest == bytes.fromhex("ab" * 32)
    assert token.expires == 1798761600.0
    assert token.models("gpt-4o-mini") and not token.models("claude-3")


def test_bad_config_stops_startup_with_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL.replace('type = "openai"', 'type = "bedrock"'))
    result = subprocess.run(
        [sys.executable, "-c", "import app"], cwd=ROOT, env={"AURAX_CONFIG": str(bad), "PATH": "/usr/bin"},
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"aurax: {bad}: channels[0].type: must be one of openai, azure, anthropic, gemini, not 'bedrock'"]


@pytest.mark.parametrize(
    "text, message",
    [
        (MINIMAL.replace("multiplier = 1", "multiplier = nan"), "groups.default.multiplier: must be a finite number"),
        ("[proxy]\nmax_body_mb = inf\n" + MINIMAL, "proxy.max_body_mb: must be a finite number"),
        (MINIMAL.replace('models = ["gpt-*"]', "models = []"), "channels[0].models: must not be empty"),
        (MINIMAL + '[[tokens]]\nname = "t"\nkey = "sk-ax-t"\nmodels = []\n', "tokens[0].models: must not be empty"),
    ],
)
def test_numbers_and_lists_that_would_mean_something_else(text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(text, env={})


def test_keyless_channel():
    config = parse(MINIMAL.replace('keys = ["k"]', 'keys = ["${LOCAL_KEY:-}"]'), env={})
    assert config.channels[0].keys == ("",)


def test_prices_exact_and_glob():
    config = parse(MINIMAL + '[prices]\n"gpt-4o" = { input = 2.5, output = 10 }\n"claude-*" = { input = 3 }\n')
    assert config.price("gpt-4o").input == 2.5
    assert config.price("claude-x").input == 3
    assert config.price("unknown") is None
