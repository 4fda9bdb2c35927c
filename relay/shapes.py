"""Declarative JSON type checks for request bodies: which JSON types each field may hold.

A converter reads a client's request assuming types (`messages` is a list of objects, a part's
`text` a string). Checking them first against one table per dialect (`relay.dialects.fields`)
turns a wrong type into a 400 naming the field's path (`messages[2].content[0].type`), as the
providers' own APIs answer, instead of an exception deep inside a converter.

A shape names only the fields the proxy reads: the others pass unchecked, for the upstream to
judge, and so do fields newer than the table. `null` is accepted for any field (every reader
takes it as absent); an item of a list is never null.
"""

from __future__ import annotations

from .errors import ProxyError

_KIND_TYPES = {
    "string": (str,),
    "integer": (int,),  # type(True) is bool, not int: booleans are not numbers here
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}
_WANTED = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
           "array": "an array", "object": "an object"}
_GOT = {str: "a string", int: "an integer", float: "a decimal number", bool: "a boolean", list: "an array",
        dict: "an object", type(None): "null"}


class Shape:
    """The JSON kinds a value may be; for an object its known fields, for a list its items.

    Shapes may refer to themselves (a content block holds content blocks): build the shape,
    then put it into its own `fields`.
    """

    __slots__ = ("kinds", "types", "fields", "items", "expected")

    def __init__(self, kinds: frozenset[str], fields: dict[str, Shape] | None = None, items: Shape | None = None) -> None:
        self.kinds = kinds
        self.types = frozenset(t for kind in kinds for t in _KIND_TYPES[kind])
        self.fields = fields
        self.items = items
        words = [word for kind, word in _WANTED.items() if kind in kinds and not (kind == "integer" and "number" in kinds)]
        self.expected = words[0] if len(words) == 1 else "one of " + " or ".join(words)

    def __repr__(self) -> str:
        return f"<shape {self.expected}>"


def kind(name: str) -> Shape:
    return Shape(frozenset({name}))


STRING, INTEGER, NUMBER, BOOLEAN = kind("string"), kind("integer"), kind("number"), kind("boolean")
ANY_OBJECT, ANY_ARRAY = kind("object"), kind("array")


def obj(**fields: Shape) -> Shape:
    """An object whose named fields have these shapes."""
    return Shape(frozenset({"object"}), dict(fields))


def array(items: Shape) -> Shape:
    """A list of items of one shape."""
    return Shape(frozenset({"array"}), items=items)


def either(*shapes: Shape) -> Shape:
    """A value of any of these shapes (at most one object shape and one list shape among them)."""
    fields = next((s.fields for s in shapes if s.fields is not None), None)
    items = next((s.items for s in shapes if s.items is not None), None)
    return Shape(frozenset().union(*(s.kinds for s in shapes)), fields, items)


def check(shape: Shape, value: object, path: str = "") -> None:
    """Raise a 400 naming the first field of `value` whose JSON type `shape` does not allow."""
    if not _fits(shape, value):
        raise _first_wrong(shape, value, path)


def _fits(shape: Shape, value: object) -> bool:
    # The walk every translated request takes (a Claude Code turn: ~500 KB, ~1 ms): it builds no
    # paths and calls itself only for containers; `_first_wrong` finds the path when it fails.
    if type(value) not in shape.types:
        return False
    if shape.fields is not None and type(value) is dict:
        fields = shape.fields
        for name, field in value.items():
            inner = fields.get(name)
            if inner is None or field is None:
                continue
            if type(field) not in inner.types or (inner.fields or inner.items is not None) and not _fits(inner, field):
                return False
    elif shape.items is not None and type(value) is list:
        items = shape.items
        leaf = not items.fields and items.items is None
        for item in value:
            if type(item) not in items.types or not leaf and not _fits(items, item):
                return False
    return True


def _first_wrong(shape: Shape, value: object, path: str) -> ProxyError | None:
    if type(value) not in shape.types:
        return _wrong(shape, value, path)
    inside: list[tuple[Shape, object, str]] = []
    if shape.fields is not None and type(value) is dict:
        inside = [(shape.fields[name], field, f"{path}.{name}" if path else name)
                  for name, field in value.items() if name in shape.fields and field is not None]
    elif shape.items is not None and type(value) is list:
        inside = [(shape.items, item, f"{path}[{i}]") for i, item in enumerate(value)]
    for inner, field, where in inside:
        if (err := _first_wrong(inner, field, where)) is not None:
            return err
    return None


def _wrong(shape: Shape, value: object, path: str) -> ProxyError:
    got = _GOT.get(type(value), "a value")
    return ProxyError(400, f"Invalid type for '{path}': expected {shape.expected}, but got {got} instead.",
                      code="invalid_type", param=path)
