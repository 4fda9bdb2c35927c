"""The model out of JSON and multipart bodies; multipart changed only where the model is."""

from __future__ import annotations

import httpx
import pytest

from relay import bodies
from relay.errors import ProxyError


def multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x", data=fields, files=files)
    return request.read(), request.headers["content-type"]


@pytest.mark.parametrize(
    "body, status, text",
    [
        (b"", 400, "empty"),
        (b"{bad", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object, not a JSON list"),
        (b'"x"', 400, "must be a JSON object, not a JSON str"),
    ],
)
def test_json_object_errors(body, status, text):
    with pytest.raises(ProxyError) as info:
        bodies.json_object(body)
    assert info.value.status == status and text in info.value.message


@pytest.mark.parametrize("payload, text", [({}, "is missing"), ({"model": 3}, "non-empty string"),
                                           ({"model": ""}, "non-empty string")])
def test_json_model_errors(payload, text):
    with pytest.raises(ProxyError) as info:
        bodies.json_model(payload)
    assert info.value.param == "model" and text in info.value.message


def test_form_model_found_and_replaced_byte_exact():
    audio = bytes(range(256)) * 40 + b"\r\n--not-a-boundary\r\n"
    body, ctype = multipart({"model": "whisper-1", "language": "zh"}, {"file": ("a.mp3", audio, "audio/mpeg")})
    assert bodies.form_model(body, ctype) == "whisper-1"
    changed = bodies.replace_form_model(body, ctype, "whisper-large-v3")
    assert changed == body.replace(b"\r\n\r\nwhisper-1\r\n", b"\r\n\r\nwhisper-large-v3\r\n")
    assert bodies.form_model(changed, ctype) == "whisper-large-v3"


def test_form_model_after_the_file():
    body, ctype = multipart({}, {"file": ("a.wav", b"RIFF....", "audio/wav"), "model": (None, b"gpt-4o-transcribe")})
    assert bodies.form_model(body, ctype) == "gpt-4o-transcribe"


def test_form_without_model_or_boundary():
    body, ctype = multipart({"language": "zh"}, {"file": ("a.mp3", b"x", "audio/mpeg")})
    with pytest.raises(ProxyError, match="'model' is missing"):
        bodies.form_model(body, ctype)
    with pytest.raises(ProxyError, match="without a boundary"):
        bodies.form_model(body, "multipart/form-data")
    with pytest.raises(ProxyError, match="multipart/form-data"):
        bodies.form_model(b"{}", "application/json")


@pytest.mark.parametrize("model", ["x" * 257, ".", "..", "gpt\r\nx-injected: 1"])
def test_model_names_that_are_not_names(model):
    with pytest.raises(ProxyError) as info:
        bodies.json_model({"model": model})
    assert info.value.status == 400 and info.value.param == "model"


@pytest.mark.parametrize("body", [
    b'{"model": "gpt-4o-mini", "messages": [], "model": "gpt-4o"}',
    b'{"model":"a","model":"a"}',  # even the same value twice: one field, one spelling
    b'{"mod\\u0065l": "gpt-4o", "model": "gpt-4o-mini"}',  # an escaped key is the same key
    b'{"messages": [{"role": "user", "content": "x"}], "\\u006d\\u006f\\u0064\\u0065\\u006c": "b", "model": "a"}',
    b'{ "model" : "a" ,\n "x": {"y": ["}", "{\\"", 1]}, "model"\t: "b"}',
])
def test_two_top_level_model_keys_are_refused(body):
    with pytest.raises(ProxyError) as info:
        bodies.json_object(body)
    assert info.value.status == 400 and info.value.param == "model" and "'model'" in info.value.message
    assert "more than once" in info.value.message


@pytest.mark.parametrize("body", [
    b'{"model": "a", "contents": [{"role": "model"}, {"role": "model"}]}',  # values, not keys
    b'{"model": "a", "tools": [{"parameters": {"properties": {"model": {"type": "string"}}}}]}',  # nested
    b'{"model": "a", "messages": [{"content": "say \\"model\\": \\"b\\""}]}',  # inside a string
    b'{"model": "a", "x": "\\\\", "y": {"model": "b"}}',  # an escaped backslash ends no string
    b'{"model": "a", "content": "\\u4e2d\\u0065"}',  # escapes in values
])
def test_model_once_at_the_top_is_fine(body):
    assert bodies.json_model(bodies.json_object(body)) == "a"


def test_two_model_fields_in_a_form_are_refused():
    body, ctype = multipart({"model": "whisper-1"}, {"file": ("a.mp3", b"\x00" * 100, "audio/mpeg"),
                                                     "model": (None, b"gpt-4o-transcribe")})
    assert body.count(b'name="model"') == 2
    for read in (bodies.form_model, lambda b, c: bodies.replace_form_model(b, c, "x")):
        with pytest.raises(ProxyError) as info:
            read(body, ctype)
        assert info.value.status == 400 and info.value.param == "model" and "more than once" in info.value.message
