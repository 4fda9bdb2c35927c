"""Every field of a JSON document with every wrong type in its place: for tests that no input, of
whatever types, makes a translation raise anything but ProxyError (which becomes a 4xx/5xx in the
client's dialect; anything else would be a 500)."""

from __future__ import annotations

import copy
from collections.abc import Iterator

WRONG = (None, 1, 2.5, True, "", "x", [], [1], ["x"], {}, {"a": 1})


def _paths(value: object, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield from _paths(inner, (*prefix, key))


def variants(document: object, depth: int = 1) -> Iterator[tuple[tuple, object]]:
    """(path, a copy of `document` with a wrong type at path), for every path at least `depth` deep."""
    for path in _paths(document):
        if len(path) < depth:
            continue
        for wrong in WRONG:
            changed = copy.deepcopy(document)
            target = changed
            for key in path[:-1]:
                target = target[key]  # type: ignore[index]
            target[path[-1]] = copy.deepcopy(wrong)  # type: ignore[index]
            yield path, changed
