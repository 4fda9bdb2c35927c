"""Server-sent events: bytes in, events out, and back to bytes.

Providers end lines with LF (OpenAI, Anthropic) or CRLF (Gemini); the decoder accepts both and
splits on the blank line before anything is decoded, so a UTF-8 character or a JSON object cut
between two network chunks is only read once it is whole.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Event:
    event: str | None
    data: str


# No real event comes near this (a streamed image is a few MB): an upstream that never ends its
# event is cut off instead of filling memory.
MAX_EVENT_BYTES = 32 * 1024 * 1024


class Decoder:
    """Turns a stream of byte chunks into complete event blocks (each ending in a blank line)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    @property
    def pending(self) -> bool:
        """Whether part of an event is waiting for the rest."""
        return bool(self._buf)

    def feed(self, chunk: bytes) -> list[bytes]:
        if not self._buf and chunk.endswith(b"\n\n") and b"\r" not in chunk:
            if chunk.find(b"\n\n") == len(chunk) - 2:
                return [chunk]  # one whole event, as upstreams mostly send them: nothing to split
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            # A CR at the very end may be the first half of a CRLF: keep it for the next chunk.
            tail = b"\r" if buf.endswith(b"\r") else b""
            if tail:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + tail
        blocks = []
        start = 0
        while (end := buf.find(b"\n\n", start)) != -1:
            blocks.append(buf[start : end + 2])
            start = end + 2
        self._buf = buf[start:] if start else buf
        if len(self._buf) > MAX_EVENT_BYTES:
            raise ValueError(f"an event of more than {MAX_EVENT_BYTES} bytes")
        return blocks

    def flush(self) -> list[bytes]:
        """What is left when the stream ends: a last event sent without its blank line."""
        rest, self._buf = self._buf.rstrip(b"\r\n"), b""
        return [rest + b"\n\n"] if rest.strip() else []


def parse(block: bytes) -> Event | None:
    """One block as `Decoder.feed` returns it; None when it holds only comments (`: ping`)."""
    event = None
    data: list[str] = []
    for line in block.decode("utf-8", "replace").split("\n"):
        if not line or line[0] == ":":
            continue
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if event is None and not data:
        return None
    return Event(event, "\n".join(data))


def data_of(block: bytes) -> bytes | None:
    """The data of a block as `Decoder.feed` returns it, or None when it holds none: an event of
    one `data:` line (with or without an `event:` line before it, as providers send them) is
    cut out of the bytes as they are; anything else goes through `parse`."""
    end = len(block) - 2
    if block.startswith(b"data: ") and block.find(b"\n", 6) == end:
        return block[6:end] or None
    if block.startswith(b"event:"):
        line = block.find(b"\n")
        if block.startswith(b"data: ", line + 1) and block.find(b"\n", line + 7) == end:
            return block[line + 7:end] or None
    event = parse(block)
    return event.data.encode() if event is not None and event.data else None


def encode(data: bytes, event: str | None = None) -> bytes:
    if event is None:
        return b"data: %s\n\n" % data
    return b"event: %s\ndata: %s\n\n" % (event.encode(), data)


PING = b": ping\n\n"
