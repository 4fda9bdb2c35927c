"""Compressed answers decoded a bounded piece at a time; headers that would lie are dropped."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import httpx
import pytest

from relay.inflate import MAX_PIECE, decoded


class Source:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    async def read(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


def response(headers: dict, chunks: list[bytes]) -> httpx.Response | None:
    raw = httpx.Response(200, headers=headers, request=httpx.Request("POST", "https://up.test/"))
    return decoded(raw, lambda _: Source(chunks))


async def read_all(body) -> list[bytes]:
    pieces = []
    while piece := await body.read():
        pieces.append(piece)
    return pieces


def test_a_bomb_comes_out_in_bounded_pieces():
    bomb = gzip.compress(b"\0" * (20 * MAX_PIECE))
    assert len(bomb) < 64 * 1024
    answer = response({"content-type": "application/json", "content-encoding": "gzip",
                       "content-length": str(len(bomb))}, [bomb])
    assert "content-encoding" not in answer.headers and "content-length" not in answer.headers
    pieces = asyncio.run(read_all(answer.extensions["chunks"]))
    assert max(map(len, pieces)) <= MAX_PIECE and sum(map(len, pieces)) == 20 * MAX_PIECE


def test_several_gzip_members_and_byte_by_byte_chunks():
    data = gzip.compress(b"data: a\n\n") + gzip.compress(b"data: b\n\n")
    answer = response({"content-type": "text/event-stream", "content-encoding": "x-gzip"},
                      [data[i:i + 1] for i in range(len(data))])
    assert b"".join(asyncio.run(read_all(answer.extensions["chunks"]))) == b"data: a\n\ndata: b\n\n"


@pytest.mark.parametrize("headers", [
    {"content-type": "audio/mpeg", "content-encoding": "gzip"},
    {"content-type": "application/json", "content-encoding": "br"},  # not ours to decode: passed on as is
    {"content-type": "application/json"},
    {"content-encoding": "gzip"},
])
def test_what_is_left_alone(headers):
    assert response(headers, [b"x"]) is None


def test_an_empty_compressed_body_is_empty():
    answer = response({"content-type": "application/json", "content-encoding": "gzip"}, [])
    assert asyncio.run(read_all(answer.extensions["chunks"])) == []


def test_raw_deflate_sent_as_deflate():
    packer = zlib.compressobj(wbits=-15)
    data = packer.compress(b'{"ok": true}') + packer.flush()
    answer = response({"content-type": "application/json", "content-encoding": "deflate"}, [data[:1], data[1:]])
    assert b"".join(asyncio.run(read_all(answer.extensions["chunks"]))) == b'{"ok": true}'
