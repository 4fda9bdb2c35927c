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
        ("/dashboard/billing/usage", "/v1/dashboard/billing/usage"),
        ("/v1/v1/dashboard/billing/subscription", "/v1/dashboard/billing/subscription"),
        ("/v1/chat/completions/dashboard/billing/usage", "/v1/dashboard/billing/usage"),
        ("/admin/tokens/alice/credit", "/admin/tokens/alice/credit"),  # the admin API has one spelling
        ("/admin", "/admin"),
        ("/administrator", "/v1/administrator"),
    ],
)
def test_canonical_path(path, canonical):
    assert canonical_path(path) == canonical


def test_every_row_is_its_own_canonical_path():
    for row in ROWS:
        if "{" not in row.path:
            assert canonical_path(row.path) == row.path


def test_fixed_paths_are_found_by_lookup_and_the_rest_by_the_router():
    import asyncio

    from starlette.routing import Route, Router

    from routes import Dispatch, DialectRoute

    reached = []

    class handler:  # an ASGI app, as the forwarder is (a function would be a Starlette endpoint)
        def __init__(self, name):
            self.name = name

        async def __call__(self, scope, receive, send):
            reached.append((self.name, scope["path_params"]))

    async def not_found(scope, receive, send):
        reached.append(("404", None))

    fixed = [DialectRoute(row.path, handler(row.path), methods=[row.method]) for row in ROWS if "{" not in row.path]
    with_model = [DialectRoute(row.path, handler(row.path), methods=[row.method]) for row in ROWS if "{" in row.path]
    dispatch = Dispatch(Router(fixed + with_model, default=not_found))
    assert {path for _, path in dispatch._exact} == {row.path for row in ROWS if "{" not in row.path}

    sent = []

    async def send(message):
        sent.append(message)

    async def call(method, path):
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"", "headers": []}
        await dispatch(scope, None, send)

    asyncio.run(call("POST", "/v1/chat/completions"))
    asyncio.run(call("POST", "/v1beta/models/gemini-2.5-flash:generateContent"))
    asyncio.run(call("GET", "/v1/models/gpt-4o"))
    asyncio.run(call("HEAD", "/v1/models"))  # (Starlette serves HEAD wherever GET is served)
    asyncio.run(call("POST", "/v1/nothing"))
    assert reached == [
        ("/v1/chat/completions", {}),
        ("/v1beta/models/{model:model}:generateContent", {"model": "gemini-2.5-flash"}),
        ("/v1/models/{model:model}", {"model": "gpt-4o"}),
        ("/v1/models", {}),
        ("404", None),
    ]
    assert not sent
    asyncio.run(call("GET", "/v1/chat/completions"))  # a fixed path, another method: the router's 405
    assert sent[0]["status"] == 405 and (b"allow", b"POST") in sent[0]["headers"]
    assert len(reached) == 5
