"""What a token's request reserves before it is forwarded (relay/admission.py)."""

from __future__ import annotations

import pytest

from relay.admission import reserved_tokens, token_ask
from relay.config import parse
from relay.dialects import ANTHROPIC, GEMINI, OPENAI, RESPONSES

CONFIG = """
[proxy]
reserve_tokens = 1000
[groups.default]
multiplier = 2
[[tokens]]
name = "limited"
key = "sk-ax-limited-0123456789"
tpm = 100000
[[tokens]]
name = "prepaid"
key = "sk-ax-prepaid-0123456789"
balance_usd = 5
[[channels]]
name = "openai"
type = "openai"
base_url = "https://api.openai.com/v1"
keys = ["sk-upstream"]
models = ["*"]
[prices]
"per-token" = { input = 1, output = 2 }
"per-call" = { request = 0.01 }
"""
PROMPT = "x" * 300  # 100 tokens reserved at three characters a token (+ the role's 4 characters)


@pytest.mark.parametrize(("dialect", "body", "output"), [
    (OPENAI, {"messages": [{"role": "user", "content": PROMPT}], "max_completion_tokens": 70}, 70),
    (OPENAI, {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 60}, 60),
    (ANTHROPIC, {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 50}, 50),
    (RESPONSES, {"input": PROMPT, "max_output_tokens": 40}, 40),
    (GEMINI, {"contents": [{"parts": [{"text": PROMPT}]}], "generationConfig": {"maxOutputTokens": 30}}, 30),
    (GEMINI, {"contents": [{"parts": [{"text": PROMPT}]}], "generation_config": {"max_output_tokens": 20}}, 20),
    (OPENAI, {"messages": [{"role": "user", "content": PROMPT}]}, 1000),  # [proxy] reserve_tokens
])
def test_a_request_reserves_its_input_and_the_output_it_allows_in_its_own_dialect(dialect, body, output):
    assert reserved_tokens(body, dialect, 1000)[1] == output
    assert 100 <= reserved_tokens(body, dialect, 1000)[0] <= 102


def test_tokens_are_counted_only_where_a_tpm_or_a_per_token_price_reads_them():
    config = parse(CONFIG, env={})
    limited, prepaid = config.tokens
    group = config.groups["default"]
    body = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 100}

    def ask(token, model):
        return token_ask("r", token, group, config, OPENAI, model, body)

    assert ask(limited, "unpriced").tokens > 200 and ask(limited, "unpriced").usd == 0
    per_token = ask(prepaid, "per-token")
    assert per_token.tokens > 200 and per_token.usd == pytest.approx((102 * 1 + 100 * 2) / 1e6 * 2, rel=0.02)
    assert (ask(prepaid, "per-call").tokens, ask(prepaid, "per-call").usd) == (0, 0.02)
    assert (ask(prepaid, "unpriced").tokens, ask(prepaid, "unpriced").usd) == (0, 0)
    assert ask(limited, None).tokens == 0  # no model: nothing to price or count
