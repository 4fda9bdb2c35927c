"""The fake provider's prompt cache, as Anthropic's works: a prompt's prefix up to a block marked
`cache_control` is written to the cache; a later prompt that starts with a written prefix reads it
(looked up at its own breakpoints and up to 20 blocks before each). Tokens are ~4 bytes of JSON."""

from __future__ import annotations

import hashlib

import orjson

LOOKBACK = 20
_WRITTEN: dict[bytes, int] = {}  # prefix digest -> its tokens


def _blocks(body: dict) -> list[dict]:
    """The prompt in cache order: tools, system, then every message's blocks."""
    out = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    system = body.get("system")
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    out += [b for b in system or [] if isinstance(b, dict)]
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        out += [{**b, "_role": message.get("role")} for b in content or [] if isinstance(b, dict)]
    return out


def usage(body: dict) -> tuple[int, int, int] | None:
    """(uncached input, cache read, cache written) tokens; None when nothing is marked."""
    blocks = _blocks(body)
    marks = [i for i, b in enumerate(blocks) if b.get("cache_control")]
    if not marks:
        return None
    digests, sizes, state, total = [], [], hashlib.sha256(), 0
    for block in blocks:
        clean = {k: v for k, v in block.items() if k != "cache_control"}
        raw = orjson.dumps(clean, option=orjson.OPT_SORT_KEYS)
        state.update(raw)
        digests.append(state.copy().digest())
        total += max(1, len(raw) // 4)
        sizes.append(total)
    read = 0
    for mark in marks:
        for i in range(mark, max(mark - LOOKBACK, -1), -1):
            if digests[i] in _WRITTEN:
                read = max(read, sizes[i])
                break
    written = 0
    for mark in marks:
        if sizes[mark] > read and digests[mark] not in _WRITTEN:
            _WRITTEN[digests[mark]] = sizes[mark]
            written = max(written, sizes[mark] - read)
    return total - read - written, read, written
