"""CPU per `Fleet.admit` in this process: the memory store against Redis.

    .venv/bin/python bench/state_admit.py                  # starts its own redis-server
    .venv/bin/python bench/state_admit.py --url redis://127.0.0.1:6379 --calls 20000 --concurrency 50

Each admission is a token with rpm, tpm and a balance (the most work the admit script does);
calls run `--concurrency` at a time on uvloop. Prints µs of this process's CPU per call, and the
calls per second, for each store.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.state import Ask, open_store  # noqa: E402
from relay.state.fleet import Fleet  # noqa: E402


async def measure(url: str, calls: int, concurrency: int) -> tuple[float, float]:
    store = open_store(url, prefix=f"bench{time.monotonic_ns()}:") if url != "memory://" else open_store(url)
    fleet = Fleet(store, timeout_ms=1000)  # a busy machine must not turn a slow call into an outage
    await fleet.start()
    ids = itertools.count()
    tokens = [f"token-{i}" for i in range(20)]

    async def worker() -> None:
        while (n := next(ids)) < calls:
            ask = Ask(f"r{n}", tokens[n % len(tokens)], rpm=10**9, tpm=10**12, tokens=100, usd=1e-6,
                      opening_usd=10**6)
            admission = await fleet.admit(ask)
            assert admission.ok, admission

    await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm up: connections, scripts
    ids = itertools.count()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert fleet.healthy and fleet.store_errors == 0, "the store failed during the run"
    await fleet.aclose()
    return cpu / calls * 1e6, calls / wall


def redis_server(directory: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", directory], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a Redis to use (default: start a redis-server)")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        proc = None
        url = args.url
        if url is None:
            proc, url = redis_server(directory)
        try:
            for name, store_url in (("memory", "memory://"), ("redis", url)):
                us, rate = uvloop.run(measure(store_url, args.calls, args.concurrency))
                print(f"{name:6} {us:6.1f} µs CPU per admit  {rate:8.0f} admits/s  "
                      f"({args.calls} calls, {args.concurrency} concurrent)")
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)


if __name__ == "__main__":
    main()
