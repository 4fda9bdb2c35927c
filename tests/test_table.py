"""Every base-URL spelling clients use reaches the same route."""

from __future__ import annotations

import pytest

from routes.table import ROWS, canonical_path


@pytest.mark.parametrize(
    "path, canonical",
    [
        ("/v1/chat/completions", "/v1/chat/completions"),
        ("/chat/completions", "/v1/chat/completions"),
        ("/v1/v1/chat/completions", "/v1/chat/completions"),
        ("/v1/chat/completions/", "/v1/chat/completions"),
        ("/v1/chat/completions/chat/completions", "/v1/chat/completions"),
        ("/v1/chat/completions/v1/chat/completions", "/v1/chat/completions"),
        ("/messages", "/v1/messages"),
        ("/v1/v1/messages", "/v1/messages"),
        ("/v1/messages/count_tokens", "/v1/messages/count_tokens"),
        ("/models", "/v1/models"),
        ("/v1/v1/models/gpt-4o", "/v1/models/gpt-4o"),
        ("/embeddings", "/v1/embeddings"),
        ("/audio/transcriptions", "/v1/audio/transcriptions"),
        ("/v1beta/models/gemini-2.5-pro:generateContent", "/v1beta/models/gemini-2.5-pro:generateContent"),
        ("/v1/v1beta/models/gemini-2.5-pro:generateContent", "/v1beta/models/gemini-2.5-pro:generateContent"),
        ("/models/gemini-2.5-pro:streamGenerateContent", "/v1beta/models/gemini-2.5-pro:streamGenerateContent"),
        ("/v1alpha/models", "/v1beta/models"),
        ("/v1beta/models", "/v1beta/models"),
        ("/v1", "/v1/"),
    ],
)
def test_canonical_path(path, canonical):
    assert canonical_path(path) == canonical


def test_every_row_is_its_own_canonical_path():
    for row in ROWS:
        if "{" not in row.path:
            assert canonical_path(row.path) == row.path
