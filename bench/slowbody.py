"""What one replica holds against slow bodies and idle connections (issue #16, item 2).

Starts the fake upstream and the proxy (uvicorn with the Dockerfile's flags, or `--flags`), then
for `--seconds` keeps up a flood that needs no key at all (any key is a passthrough key):

- `--slow` connections that each send the head of a POST with a `--body-mb` body, send all of
  it but its last byte at full speed, then hold; when the proxy closes one, it reconnects;
- `--idle` connections that connect and send nothing (reconnected likewise);

and every `--probe-s` a normal request with a proxy token, which must answer 200. It prints the
proxy's RSS over time and a summary line:

    .venv/bin/python bench/slowbody.py                       # this checkout
    .venv/bin/python bench/slowbody.py --root /tmp/main      # another checkout (before/after)
    .venv/bin/python bench/slowbody.py --chunked             # bodies without a Content-Length
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import socket
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import procs  # noqa: E402
from scenarios import OPENAI_KEYS, SDK_HEADERS, TOKEN  # noqa: E402

DOCKER_FLAGS = ("--loop uvloop --http relay.protocol:HttpToolsWithDeadlines --no-proxy-headers --no-server-header "
                "--timeout-keep-alive 75 --limit-concurrency 2048 --backlog 2048")  # the Dockerfile's CMD
CONFIG = """\
[passthrough]
openai = "http://127.0.0.1:{port}/v1"
[groups.default]
multiplier = 1
[[tokens]]
name = "bench"
key = "{token}"
[[channels]]
name = "openai"
type = "openai"
base_url = "http://127.0.0.1:{port}/v1"
keys = ["{key}"]
models = ["gpt-4o-mini"]
{extra}
"""
PROBE = (b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say this is a test!"}]}')


async def _first_bytes(reader: asyncio.StreamReader) -> bytes:
    """What the proxy sends first (b"" when it closes or resets without a word)."""
    try:
        return await reader.read(4096)
    except (ConnectionError, OSError):
        return b""


class Flood:
    def __init__(self, port: int, args: argparse.Namespace) -> None:
        self.port = port
        self.args = args
        self.size = int(args.body_mb * 1024 * 1024)
        self.outcomes: Counter[str] = Counter()
        self.open_slow = 0
        self.open_idle = 0
        self.sent_mb = 0.0
        self.stop = asyncio.Event()

    def head(self) -> bytes:
        length = b"transfer-encoding: chunked\r\n" if self.args.chunked else b"content-length: %d\r\n" % self.size
        return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer sk-anybody\r\n"
                b"content-type: application/json\r\n" + length + b"\r\n")

    async def slow(self) -> None:
        piece = b"x" * 65536
        while not self.stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.outcomes["connect failed"] += 1
                await asyncio.sleep(0.1)
                continue
            self.open_slow += 1
            try:
                writer.write(self.head())
                left = self.size - 1
                reading = asyncio.ensure_future(_first_bytes(reader))
                while left > 0 and not reading.done() and not self.stop.is_set():
                    n = min(left, len(piece))
                    data = piece[:n]
                    writer.write(b"%x\r\n%s\r\n" % (n, data) if self.args.chunked else data)
                    await writer.drain()
                    left -= n
                    self.sent_mb += n / 1024 / 1024
                # all but the last byte is sent: hold until the proxy answers or closes
                done, _ = await asyncio.wait([reading, asyncio.ensure_future(self.stop.wait())],
                                             return_when=asyncio.FIRST_COMPLETED)
                if reading in done:
                    answer = reading.result()
                    self.outcomes[answer.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"] += 1
                else:
                    reading.cancel()
            except (ConnectionError, OSError):
                self.outcomes["reset while sending"] += 1
            finally:
                self.open_slow -= 1
                writer.close()
            await asyncio.sleep(self.args.reconnect_s)

    async def idle(self) -> None:
        while not self.stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.outcomes["idle connect failed"] += 1
                await asyncio.sleep(0.1)
                continue
            self.open_idle += 1
            try:
                closed = asyncio.ensure_future(_first_bytes(reader))
                await asyncio.wait([closed, asyncio.ensure_future(self.stop.wait())],
                                   return_when=asyncio.FIRST_COMPLETED)
                if closed.done():
                    self.outcomes["idle closed by the proxy"] += 1
                else:
                    closed.cancel()
            except (ConnectionError, OSError):
                self.outcomes["idle reset"] += 1
            finally:
                self.open_idle -= 1
                writer.close()
            await asyncio.sleep(self.args.reconnect_s)


async def probe(port: int, results: list[tuple[int | str, float]]) -> None:
    headers = {**SDK_HEADERS, "authorization": f"Bearer {TOKEN}"}
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=PROBE, headers=headers)
        results.append((r.status_code, time.perf_counter() - started))
    except httpx.HTTPError as exc:
        results.append((type(exc).__name__, time.perf_counter() - started))


async def run(port: int, proxy: procs.Proc, args: argparse.Namespace) -> dict:
    flood = Flood(port, args)
    tasks = [asyncio.ensure_future(flood.slow()) for _ in range(args.slow)]
    tasks += [asyncio.ensure_future(flood.idle()) for _ in range(args.idle)]
    probes: list[tuple[int | str, float]] = []
    probing: list[asyncio.Task] = []
    samples = []
    t0 = time.monotonic()
    next_probe = t0 + 1
    while (now := time.monotonic()) - t0 < args.seconds:
        if now >= next_probe:
            probing.append(asyncio.ensure_future(probe(port, probes)))
            next_probe += args.probe_s
        rss = proxy.memory_mb()[0]
        samples.append((now - t0, rss, flood.open_slow, flood.open_idle))
        if len(samples) % args.print_every == 1:
            print(f"t={now - t0:5.1f}s rss={rss:7.1f} MB slow open={flood.open_slow:4d} idle open={flood.open_idle:5d} "
                  f"sent={flood.sent_mb:8.0f} MB", flush=True)
        await asyncio.sleep(args.sample_s)
    flood.stop.set()
    await asyncio.wait(tasks + probing, timeout=15)
    ok = [t for status, t in probes if status == 200]
    return {
        "max_rss_mb": max(s[1] for s in samples),
        "last_rss_mb": samples[-1][1],
        "probes": f"{len(ok)}/{len(probes)} ok",
        "probe_max_s": round(max((t for _, t in probes), default=0), 3),
        "probe_failures": Counter(str(s) for s, _ in probes if s != 200),
        "outcomes": dict(flood.outcomes),
        "max_idle_open": max(s[3] for s in samples),
        "idle_open_at_end": samples[-1][3],
    }


def start(args: argparse.Namespace, work: Path) -> tuple[procs.Proc, procs.Proc, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    upstream_port = sock.getsockname()[1]
    upstream = procs.Proc("fake-upstream", [sys.executable, str(BENCH / "fake_upstream.py"), "--fd",
                                            str(sock.fileno()), "--openai-key", OPENAI_KEYS[0]],
                          cpu=None, pass_fds=(sock.fileno(),), stderr=work / "upstream.err")
    sock.close()
    config = work / "slowbody.toml"
    config.write_text(CONFIG.format(port=upstream_port, token=TOKEN, key=OPENAI_KEYS[0], extra=args.config_extra))
    port = procs.free_port()
    argv = [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port),
            *shlex.split(args.flags)]
    env = {**os.environ, "AURAX_CONFIG": str(config), "PYTHONDONTWRITEBYTECODE": "1", **dict(args.env)}
    proxy = procs.Proc("proxy", argv, cpu=None, cwd=Path(args.root), env=env, stdout=work / "proxy.out",
                       stderr=work / "proxy.err")
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not proxy.alive():
            raise RuntimeError(f"the proxy did not start: {proxy.stderr_text()}")
        time.sleep(0.05)
    return upstream, proxy, port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(BENCH.parent), help="the checkout whose app:app is served")
    parser.add_argument("--flags", default=DOCKER_FLAGS, help="uvicorn's flags")
    parser.add_argument("--env", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--config-extra", default="", help="TOML appended to the proxy's config")
    parser.add_argument("--slow", type=int, default=20, help="slow-body connections")
    parser.add_argument("--body-mb", type=float, default=24, help="each one's body (all but a byte is sent)")
    parser.add_argument("--chunked", action="store_true", help="send bodies chunked, with no Content-Length")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections")
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--probe-s", type=float, default=2.0, help="a normal request this often")
    parser.add_argument("--reconnect-s", type=float, default=0.2, help="pause before a flood connection reconnects")
    parser.add_argument("--sample-s", type=float, default=1.0)
    parser.add_argument("--print-every", type=int, default=5, help="print every Nth RSS sample")
    parser.add_argument("--out", default=None, help="where the logs go (default: a temporary directory)")
    args = parser.parse_args(argv)
    import tempfile

    work = Path(args.out or tempfile.mkdtemp(prefix="slowbody-"))
    work.mkdir(parents=True, exist_ok=True)
    upstream, proxy, port = start(args, work)
    try:
        idle_rss = proxy.memory_mb()[0]
        print(f"proxy up on {port} (root {args.root}); idle RSS {idle_rss:.1f} MB; flags: {args.flags}", flush=True)
        summary = asyncio.run(run(port, proxy, args))
        summary["idle_rss_mb"] = idle_rss
        print("summary:", summary, flush=True)
    finally:
        proxy.stop()
        upstream.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
