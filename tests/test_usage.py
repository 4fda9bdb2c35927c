"""Usage normalised from every dialect, whole answers and streams; prices."""

from __future__ import annotations

import pytest

from relay.config import Price
from relay.records import cost
from relay.dialects import ANTHROPIC, GEMINI, OPENAI
from relay.usage import Usage, read_anthropic, read_gemini, read_openai, request_chars


def test_openai_chat_answer():
    meter = OPENAI.meter()
    meter.answer({"usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140,
                            "prompt_tokens_details": {"cached_tokens": 30},
                            "completion_tokens_details": {"reasoning_tokens": 12}}})
    assert meter.usage == Usage(100, 40, 30, 12)


def test_openai_responses_and_embeddings():
    meter = OPENAI.meter()
    meter.answer({"usage": {"input_tokens": 50, "output_tokens": 9, "input_tokens_details": {"cached_tokens": 5},
                            "output_tokens_details": {"reasoning_tokens": 3}}})
    assert meter.usage == Usage(50, 9, 5, 3)
    meter.answer({"usage": {"prompt_tokens": 8, "total_tokens": 8}})
    assert meter.usage == Usage(8, 0, 0, 0)


def test_openai_stream_usage_chunk_and_text():
    meter = OPENAI.meter()
    meter.event({"choices": [{"index": 0, "delta": {"content": "Hello"}}], "usage": None})
    meter.event({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}}]})
    assert meter.usage is None and meter.text_chars == 7
    meter.event({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}})
    assert meter.usage == Usage(5, 2, 0, 0)


def test_responses_stream_completed_event():
    meter = OPENAI.meter()
    meter.event({"type": "response.output_text.delta", "delta": "abc"})
    meter.event({"type": "response.completed", "response": {"usage": {"input_tokens": 4, "output_tokens": 3}}})
    assert meter.usage == Usage(4, 3, 0, 0) and meter.text_chars == 3


def test_anthropic_answer_counts_cache_reads_and_writes_as_input():
    meter = ANTHROPIC.meter()
    meter.answer({"usage": {"input_tokens": 10, "cache_read_input_tokens": 200, "cache_creation_input_tokens": 50,
                            "output_tokens": 30}})
    assert meter.usage == Usage(260, 30, 200, 0, 50)


def test_anthropic_stream_message_start_then_delta():
    meter = ANTHROPIC.meter()
    meter.event({"type": "message_start", "message": {"usage": {"input_tokens": 10, "cache_read_input_tokens": 90,
                                                                "output_tokens": 1}}})
    meter.event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hey"}})
    meter.event({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 42}})
    assert meter.usage == Usage(100, 42, 90, 0) and meter.text_chars == 3
    # newer API versions repeat the input side in message_delta; nulls keep the earlier value
    meter.event({"type": "message_delta", "usage": {"input_tokens": 10, "cache_read_input_tokens": None,
                                                    "output_tokens": 43}})
    assert meter.usage == Usage(100, 43, 90, 0)


def test_gemini_usage_metadata():
    meter = GEMINI.meter()
    meter.event({"candidates": [{"content": {"parts": [{"text": "ab"}]}}],
                 "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10}})
    meter.event({"candidates": [{"content": {"parts": [{"text": "cd"}]}, "finishReason": "STOP"}],
                 "usageMetadata": {"promptTokenCount": 1000, "cachedContentTokenCount": 200,
                                   "candidatesTokenCount": 400, "thoughtsTokenCount": 100}})
    assert meter.usage == Usage(1000, 500, 200, 100) and meter.text_chars == 4


@pytest.mark.parametrize(
    "price, usage, usd",
    [
        (Price(input=2.5, output=10, cached_input=1.25), Usage(1000, 500, 200, 0), 0.00725),
        (Price(input=3, output=15, cached_input=0.3), Usage(1000, 500, 200, 0), 0.00996),
        (Price(input=2.5, output=10), Usage(1000, 0, 1000, 0), 0.0025),  # no cached rate: full price
        (Price(request=0.006), None, 0.006),
        (Price(input=1), None, None),
        (None, Usage(1, 1, 0, 0), None),
    ],
)
def test_cost(price, usage, usd):
    assert cost(price, usage) == usd


def test_request_chars_for_estimates():
    payload = {"messages": [{"role": "user", "content": [{"type": "text", "text": "abcd"},
                                                         {"type": "image_url", "image_url": {"url": "x" * 999}}]}],
               "system": "12"}
    assert request_chars(payload) == len("user") + len("text") + 4 + len("image_url") + 2


@pytest.mark.parametrize("reader, usage", [
    (read_openai, {"prompt_tokens": 2**64 - 1, "completion_tokens": 3}),
    (read_anthropic, {"input_tokens": 5, "cache_read_input_tokens": 2**63}),
    (read_gemini, {"promptTokenCount": 10**12 + 1}),
])
def test_absurd_counts_are_untrusted_not_summed_past_64_bits(reader, usage):
    assert reader(usage) is None


USAGES = [Usage(0, 0), Usage(1000, 500, 200, 100, 0), Usage(1672, 89, 1200, 0, 300), Usage(10, 40, 0, 40, 0),
          Usage(5000, 1, 0, 0, 4000)]


@pytest.mark.parametrize("u", USAGES)
def test_every_dialect_reads_back_what_it_wrote(u):
    """One normaliser: each dialect's writer and reader agree (Gemini has no cache writes)."""
    from relay.usage import (anthropic_usage, chat_usage, gemini_usage, read_anthropic, read_gemini, read_openai,
                             responses_usage)

    assert read_openai(chat_usage(u)) == u
    assert read_openai(responses_usage(u)) == u
    assert read_anthropic(anthropic_usage(u)) == u
    assert read_gemini(gemini_usage(u)) == Usage(u.input_tokens, u.output_tokens, u.cached_input_tokens,
                                                 u.reasoning_tokens)


@pytest.mark.parametrize("u", USAGES)
def test_translated_usage_agrees_with_billed_usage(u):
    """What a client is shown after translation is what the usage record bills."""
    from relay.dialects.common import anthropic_usage_from_chat, usage_from_anthropic, usage_from_gemini
    from relay.dialects.gemini_client import usage_metadata
    from relay.dialects.responses_client import usage as responses_from_chat
    from relay.usage import anthropic_usage, chat_usage, gemini_usage, read_anthropic, read_gemini, read_openai

    assert read_openai(usage_from_anthropic(anthropic_usage(u))) == read_anthropic(anthropic_usage(u))
    assert read_openai(usage_from_gemini(gemini_usage(u))) == read_gemini(gemini_usage(u))
    assert read_anthropic(anthropic_usage_from_chat(chat_usage(u))) == u
    assert read_openai(responses_from_chat(chat_usage(u))) == u
    assert read_gemini(usage_metadata(chat_usage(u))) == read_gemini(gemini_usage(u))


@pytest.mark.parametrize("bad", [{"prompt_tokens": -5}, {"prompt_tokens": 1.5}, {"prompt_tokens": "7"},
                                 {"prompt_tokens": True}, {"prompt_tokens": 3, "prompt_tokens_details": []},
                                 {"input_tokens": float("nan")}])
def test_untrusted_counts_are_never_read(bad):
    from relay.usage import read_openai

    assert read_openai(bad) is None
