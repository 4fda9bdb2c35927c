"""Streamed tool-call arguments: whole exactly when the text so far parses as one JSON object,
however the fragments split it (inside strings, escapes, unicode), and each fragment scanned once."""

from __future__ import annotations

import orjson
import pytest

from relay.dialects import arguments as arguments_module
from relay.dialects.arguments import Arguments

TEXTS = [
    '{"city": "Paris"}',
    '  {"a": {"b": [1, {"c": "}"}]}, "d": "{[\\"]}"}',  # brackets and quotes inside strings
    '{"path": "C:\\\\dir\\\\", "x": "\\\\\\""}',  # backslashes that end a string or escape a quote
    '{"code": "fn() { return \'}\'; }\\n", "n": 1}',
    '{"text": "日本語 \\u00e9 🙂"}',
    "{}",
    '{"a": 1}  \n',
    '{"a": tru}',  # balanced, but not JSON
    '{"a": 1]',  # closed by the wrong bracket
    '[{"a": 1}]',  # JSON, but not an object
    '"just a string"',
    "",
]


def _reference(text: str) -> bool:
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_whole_exactly_when_the_text_so_far_is_one_object(text, size):
    args = Arguments()
    for at in range(0, len(text), size):
        args.add(text[at:at + size])
        assert args.whole == _reference(text[:at + size])
        assert args.text == text[:at + size]
    assert args.whole == _reference(text) and args.text == text


def test_each_fragment_is_parsed_at_most_once(monkeypatch):
    parses = []
    monkeypatch.setattr(arguments_module, "_object", lambda text: parses.append(text) or {})
    args = Arguments()
    for fragment in ['{"content": "', *["a{b}c}"] * 5000, '"}']:  # every fragment ends in "}"
        args.add(fragment)
    assert args.whole and len(parses) == 1  # the brackets closed once: one parse, not one per fragment


def test_a_whole_object_is_kept_parsed_until_anything_follows_it():
    args = Arguments()
    args.add('{"command": ["ls"], ')
    assert args.object is None
    args.add('"n": 1}')
    assert args.whole and args.object == {"command": ["ls"], "n": 1}
    args.add(" ")
    assert args.whole and args.object is None and args.text.endswith("} ")  # the text is the truth again
