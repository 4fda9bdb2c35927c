"""An upstream that starts every answer and then says nothing more: one event, then silence.

Plain asyncio, no polling, so hundreds of open requests cost it nothing — the isolation test
needs the proxy, not the upstream, to be what is under load. Prints its open-connection count on
`GET /_open` (answered at once).

    python tests/silent_upstream.py --fd N
"""

from __future__ import annotations

import argparse
import asyncio
import socket

HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
FIRST = b'data: {"id":"s","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
OPEN = 0


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global OPEN
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"GET /_open"):
            body = str(OPEN).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            return
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        OPEN += 1
        try:
            writer.write(HEAD + b"%x\r\n" % len(FIRST) + FIRST + b"\r\n")
            await writer.drain()
            await reader.read()  # returns when the proxy closes the connection
        finally:
            OPEN -= 1
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(fd: int) -> None:
    server = await asyncio.start_server(serve, sock=socket.socket(fileno=fd), backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--fd", type=int, required=True)
    asyncio.run(main(parser.parse_args().fd))
