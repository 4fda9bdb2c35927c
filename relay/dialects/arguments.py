"""A streamed tool call's arguments: JSON text that arrives fragment by fragment.

Stream translators must know when a call's arguments have become one whole JSON object (nothing
valid can follow that): Anthropic and Responses clients get the call's block or item closed
then, Gemini clients get the call, which Gemini sends whole. Parsing everything received so far
at each fragment costs the argument's length squared, and arguments can be long: a file a model
writes is easily 100 KB in 25,000 fragments. So brackets and quotes are counted as fragments
come, each fragment scanned once, and the text is parsed once, when its brackets close.
"""

from __future__ import annotations

import re

import orjson

_MARKS = re.compile(r'["\\{}\[\]]')  # what changes the nesting outside a string
_STRING_MARKS = re.compile(r'["\\]')  # what can end a string, or escape its next character

_OPENING, _INSIDE, _WHOLE, _NOT_OBJECT = range(4)


class Arguments:
    """The arguments received so far (`text`), and whether they are one whole object (`whole`);
    that object itself (`object`) while nothing came after it, so it is parsed once."""

    __slots__ = ("_pieces", "_depth", "_in_string", "_escaped", "_state", "object")

    def __init__(self) -> None:
        self._pieces: list[str] = []  # `+=` on a held string copies all of it every time
        self._depth = 0
        self._in_string = self._escaped = False
        self._state = _OPENING
        self.object: dict | None = None

    def add(self, fragment: str) -> None:
        if not fragment:
            return
        self._pieces.append(fragment)
        self.object = None  # (whatever follows a whole object, the text is what counts)
        if self._state <= _INSIDE:
            self._scan(fragment)

    @property
    def text(self) -> str:
        if len(self._pieces) > 1:
            self._pieces[:] = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    @property
    def whole(self) -> bool:
        return self._state == _WHOLE

    def _scan(self, text: str) -> None:
        at, end = 0, len(text)
        if self._state == _OPENING:
            start = len(text) - len(text.lstrip())
            if start == end:
                return  # whitespace so far
            if text[start] != "{":
                self._state = _NOT_OBJECT  # an array or a scalar is never an object, however it ends
                return
            self._state, self._depth, at = _INSIDE, 1, start + 1
        while at < end:
            if self._escaped:  # the character after a backslash, maybe the first of this fragment
                self._escaped = False
                at += 1
                continue
            mark = (_STRING_MARKS if self._in_string else _MARKS).search(text, at)
            if mark is None:
                return
            at, char = mark.end(), mark.group()
            if char == "\\":
                self._escaped = self._in_string  # outside a string it is invalid: the parse says so
            elif char == '"':
                self._in_string = not self._in_string
            elif char in "{[":
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 0:
                    self.object = _object(self.text)
                    self._state = _WHOLE if self.object is not None else _NOT_OBJECT
                    return


def _object(text: str) -> dict | None:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
