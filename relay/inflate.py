"""Answers compressed although the proxy asked for `accept-encoding: identity`.

The proxy reads event streams and JSON on their way through (usage, the end of a stream, error
messages), and a client must never get a `content-encoding: gzip` header over plain-text error
events. Such an answer is decoded on the fly, a bounded piece at a time, and goes on without
`content-encoding` and `content-length`. Other bodies (audio, images) pass through untouched,
header and all.
"""

from __future__ import annotations

import zlib

import httpx

from .transport import headers_from

# zlib's window bits: 47 takes a zlib or a gzip header; -15 is raw deflate, which some servers
# send as `deflate` (the HTTP name means zlib-wrapped).
_WBITS = {b"gzip": 47, b"x-gzip": 47, b"deflate": 47}
_RAW_DEFLATE = -15
_DECODED_TYPES = (b"text/", b"application/json")
_STALE = frozenset({b"content-encoding", b"content-length"})
MAX_PIECE = 256 * 1024  # decoded bytes handed on at once: a small body cannot make a huge chunk


def decoded(response: httpx.Response, reader) -> httpx.Response | None:
    """`response` with its body decoded, when it is compressed text or JSON; else None.

    `reader(response)` reads the answer's raw body (`upstream.reader`).
    """
    for _, name, value in response.headers._list:  # (every answer: one comparison a header)
        if name == b"content-encoding":
            encoding = value.strip().lower()
            break
    else:
        return None
    content_type = next((v.lower() for _, n, v in response.headers._list if n == b"content-type"), b"")
    wbits = _WBITS.get(encoding)
    if wbits is None or not content_type.startswith(_DECODED_TYPES):
        return None
    body = Inflating(reader(response), response, encoding.decode("latin-1"), wbits)
    headers = [(raw, value) for raw, name, value in response.headers._list if name not in _STALE]
    return httpx.Response(status_code=response.status_code, headers=headers_from(headers), stream=body,
                          request=response.request, extensions={**response.extensions, "chunks": body})


class Inflating(httpx.AsyncByteStream):
    """A compressed body, decoded as it arrives: `read()` gives at most `MAX_PIECE` bytes, and
    b"" at the end. A body that is not what its header says, or that stops before its end,
    raises httpx.DecodingError (the forwarder's error for a broken answer)."""

    def __init__(self, source, response: httpx.Response, encoding: str, wbits: int) -> None:
        self._source = source
        self._response = response
        self._encoding = encoding
        self._inflater = zlib.decompressobj(wbits)
        self._pending = b""  # compressed bytes not yet decoded (the rest of a big piece)
        # What `deflate` sent before anything decoded: it may turn out to be raw deflate.
        self._undecided: bytes | None = b"" if encoding == "deflate" else None
        self._received = False
        self._done = False

    async def read(self) -> bytes:
        while not self._done:
            if not self._pending:
                chunk = await self._source.read()
                if not chunk:
                    return self._end()
                self._received = True
                self._pending = chunk
            out = self._inflate()
            if out:
                return out
        return b""

    read_unmapped = read  # the source's errors are httpx's already

    def _inflate(self) -> bytes:
        data, self._pending = self._pending, b""
        try:
            out = self._inflater.decompress(data, MAX_PIECE)
        except zlib.error:
            if self._undecided is None:
                raise self._broken() from None
            # `deflate` sent without its zlib wrapper: start over as raw deflate
            data, self._undecided = self._undecided + data, None
            self._inflater = zlib.decompressobj(_RAW_DEFLATE)
            try:
                out = self._inflater.decompress(data, MAX_PIECE)
            except zlib.error:
                raise self._broken() from None
        if self._undecided is not None:
            self._undecided = None if out else self._undecided + data
        self._pending = self._inflater.unconsumed_tail
        if self._inflater.eof and self._inflater.unused_data:
            # another gzip member follows (a server may send a stream as several)
            self._pending = self._inflater.unused_data + self._pending
            self._inflater = zlib.decompressobj(_WBITS[b"gzip"])
        return out

    def _end(self) -> bytes:
        self._done = True
        if self._received and not self._inflater.eof:
            raise httpx.DecodingError(f"The upstream's {self._encoding} answer stopped before its end")
        return b""

    def _broken(self) -> httpx.DecodingError:
        self._done = True
        return httpx.DecodingError(f"The upstream's answer could not be decoded ({self._encoding})")

    async def __aiter__(self):
        while chunk := await self.read():
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()
