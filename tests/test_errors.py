"""Redaction: the keys the proxy knows, of any shape, and masked echoes of them; normal text kept."""

from __future__ import annotations

import socket
import ssl
import timeit

import httpx
import pytest

from relay.errors import redact, unreachable

CHANNEL = "sk-proj-AbCdEfGh1234567890wxyz"
OWN = "abcd1234efgh5678ijkl9012wxyz"  # a passthrough client's key of no known shape
GEMINI = "AIzaSyA1b2C3d4E5f6G7h8I9j0KLMNOPQRxyz"
TOKEN = "sk-ax-alice-secret-QRST"
SHORT = "k7-Zq"  # a key too short to replace inside words, still replaced as a word of its own


@pytest.mark.parametrize("text, gone", [
    # the keys themselves, wherever they are
    (f"Incorrect API key provided: {OWN}.", OWN),
    (f"key={OWN}&x=1", OWN),
    (f'{{"detail":"bad key \\"{OWN}\\""}}', OWN),
    (f"tokens {TOKEN} and {CHANNEL}", TOKEN),
    # masked echoes of the known keys
    ("Incorrect API key provided: abcd****wxyz.", "abcd****wxyz"),
    ("Incorrect API key provided: abcd1234***9012wxyz", "abcd1234***9012wxyz"),
    ("invalid key ...wxyz, check it", "...wxyz"),
    ("invalid key …wxyz", "…wxyz"),
    ("invalid key abcd...", "abcd..."),
    ("API key AIza...xyz is not valid", "AIza...xyz"),
    ("API key AIzaS***Rxyz is not valid", "AIzaS***Rxyz"),
    ("key sk-proj-********************************************wxyz rejected", "wxyz"),
    ("key sk-proj-Ab••••wxyz rejected", "wxyz"),
    ("token sk-ax-ali***QRST", "QRST"),
    (f"the key {SHORT} is not valid", SHORT),
    # the generic shapes, whoever's key they are
    ("Incorrect API key provided: sk-zzzz***9999", "sk-zzzz"),
    ("Authorization: Bearer eyJhbGciOi.abc.def", "eyJhbGciOi"),
    ("GET /v1beta/models?key=AIzaSyB0000000000000000", "AIzaSyB0000"),
])
def test_known_keys_and_their_masked_echoes_are_gone(text, gone):
    out = redact(text, CHANNEL, OWN, GEMINI, TOKEN, SHORT)
    assert gone not in out and "[redacted]" in out, out


@pytest.mark.parametrize("text", [
    "Loading... done. Please wait...",
    "The model said: **important** and ***very*** important",
    "Rate limit reached for requests per min (RPM): Limit 3, Used 3... try again in 20s.",
    "version 1.2.3... see https://example.com/docs/a.b",
    "abd...xyz",  # a known key ends with xyz, but none begins with abd: three letters say too little
    "k7-Zqx and xk7-Zq are other words",  # the short key only goes as a word of its own
    "The quick brown fox... jumps",
    "您的请求过多……请稍后再试",
])
def test_normal_text_is_left_alone(text):
    assert redact(text, CHANNEL, OWN, GEMINI, TOKEN, SHORT) == text


def test_empty_and_missing_keys_change_nothing():
    assert redact("hello ... world", "", None) == "hello ... world"


def test_short_texts_are_fast():
    text = "Incorrect API key provided: abcd****wxyz. You can find your API key at https://platform.openai.com."
    per_call = min(timeit.repeat(lambda: redact(text, CHANNEL, OWN, TOKEN), number=2000, repeat=3)) / 2000
    assert per_call < 50e-6, per_call  # a few microseconds on a laptop; generous for a busy CI


def _raised_from(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        raise exc from cause
    except BaseException as raised:
        return raised


@pytest.mark.parametrize("exc, status, message", [
    (_raised_from(httpx.ConnectError("Cannot connect to host 10.0.0.7:8443 ssl:default"),
                  ConnectionRefusedError(111, "Connect call failed ('10.0.0.7', 8443)")),
     502, "The anthropic upstream could not be reached (connection refused)"),
    (_raised_from(httpx.ConnectError("Cannot connect to host llm.internal:443"),
                  socket.gaierror(-2, "Name or service not known")),
     502, "The anthropic upstream could not be reached (its host name did not resolve)"),
    (_raised_from(httpx.ConnectError("Cannot connect to host llm.internal:443"), ssl.SSLError(1, "bad cert")),
     502, "The anthropic upstream could not be reached (TLS handshake failed)"),
    (httpx.RemoteProtocolError("Server disconnected"),
     502, "The anthropic upstream could not be reached (the connection closed before an answer)"),
    (httpx.ConnectError("refused"), 502, "The anthropic upstream could not be reached (connection refused)"),
    (httpx.NetworkError("something at 10.0.0.7"), 502, "The anthropic upstream could not be reached (network error)"),
    (httpx.ConnectTimeout("10.0.0.7:443"), 504, "The anthropic upstream timed out while connecting"),
    (TimeoutError(), 504, "The anthropic upstream timed out before answering"),
    (httpx.ReadTimeout("x"), 504, "The anthropic upstream timed out before answering"),
])
def test_unreachable_says_which_dialect_and_how_but_not_where(exc, status, message):
    err = unreachable(exc, "anthropic")
    assert (err.status, err.message) == (status, message)
