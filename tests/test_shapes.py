"""relay.shapes (declarative JSON type checks) and the dialects' tables of request field types."""

from __future__ import annotations

import pytest

from fuzz_cases import CHAT, COUNT_GEMINI, GEMINI, MESSAGES, RESPONSES
from relay.dialects import fields
from relay.errors import ProxyError
from relay.shapes import BOOLEAN, INTEGER, NUMBER, STRING, array, check, either, obj

PART = obj(type=STRING, text=STRING)
BODY = obj(model=STRING, max_tokens=INTEGER, temperature=NUMBER, stream=BOOLEAN,
           messages=array(obj(role=STRING, content=either(STRING, array(PART)))))


def refused(shape, value) -> ProxyError:
    with pytest.raises(ProxyError) as caught:
        check(shape, value)
    return caught.value


@pytest.mark.parametrize(("body", "path", "expected", "got"), [
    ({"model": 1}, "model", "a string", "an integer"),
    ({"max_tokens": 2.5}, "max_tokens", "an integer", "a decimal number"),
    ({"max_tokens": True}, "max_tokens", "an integer", "a boolean"),  # a bool is no number in JSON
    ({"temperature": "hot"}, "temperature", "a number", "a string"),
    ({"stream": "true"}, "stream", "a boolean", "a string"),
    ({"messages": {}}, "messages", "an array", "an object"),
    ({"messages": [1]}, "messages[0]", "an object", "an integer"),
    ({"messages": [None]}, "messages[0]", "an object", "null"),  # a list item is never null
    ({"messages": [{"content": 5}]}, "messages[0].content", "one of a string or an array", "an integer"),
    ({"messages": [{"content": "x"}, {"content": [{"type": "text"}, {"type": ["text"]}]}]},
     "messages[1].content[1].type", "a string", "an array"),
])
def test_a_wrong_type_is_a_400_naming_its_path(body, path, expected, got) -> None:
    err = refused(BODY, body)
    assert (err.status, err.code, err.param) == (400, "invalid_type", path)
    assert err.message == f"Invalid type for '{path}': expected {expected}, but got {got} instead."


def test_null_unknown_fields_and_either_kind_pass() -> None:
    check(BODY, {"model": None, "max_tokens": None, "messages": None, "extra": {"any": [1]}})
    check(BODY, {"temperature": 1, "max_tokens": 10, "messages": [{"content": "x"}, {"content": [{}]}]})


def test_a_shape_may_hold_itself() -> None:
    block = obj(type=STRING)
    block.fields["content"] = either(STRING, array(block))
    check(block, {"content": [{"content": [{"content": "deep"}]}]})
    assert refused(block, {"content": [{"content": [{"type": 1}]}]}).param == "content[0].content[0].type"


@pytest.mark.parametrize(("shape", "body"), [
    (fields.CHAT_REQUEST, CHAT), (fields.RESPONSES_REQUEST, RESPONSES), (fields.MESSAGES_REQUEST, MESSAGES),
    (fields.GENERATE_REQUEST, GEMINI), (fields.GENERATE_REQUEST, COUNT_GEMINI),
])
def test_the_tables_take_every_field_of_a_full_request(shape, body) -> None:
    check(shape, body)


@pytest.mark.parametrize(("shape", "body", "path"), [
    (fields.CHAT_REQUEST, {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 3}]}]},
     "messages[0].content[0].image_url"),
    (fields.CHAT_REQUEST, {"tool_choice": 1}, "tool_choice"),
    (fields.CHAT_REQUEST, {"n": "x"}, "n"),
    (fields.RESPONSES_REQUEST, {"tools": [{"type": "namespace", "tools": [{"name": 7}]}]}, "tools[0].tools[0].name"),
    (fields.MESSAGES_REQUEST, {"metadata": "x"}, "metadata"),
    (fields.MESSAGES_REQUEST, {"messages": [{"content": [{"type": "tool_result", "content": [{"text": 1}]}]}]},
     "messages[0].content[0].content[0].text"),
    (fields.GENERATE_REQUEST, {"contents": [{"parts": [{"inline_data": {"mime_type": 1}}]}]},
     "contents[0].parts[0].inline_data.mime_type"),
    (fields.GENERATE_REQUEST, {"generateContentRequest": {"generationConfig": {"maxOutputTokens": "9"}}},
     "generateContentRequest.generationConfig.maxOutputTokens"),
])
def test_the_tables_name_nested_fields(shape, body, path) -> None:
    assert refused(shape, body).param == path


def test_search_results_name_their_source_by_a_string() -> None:
    block = {"type": "search_result", "source": "https://example.com", "title": "t", "content": [{"type": "text", "text": "x"}]}
    check(fields.MESSAGES_REQUEST, {"messages": [{"role": "user", "content": [block]}]})
