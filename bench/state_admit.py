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
import sys
import tempfile
import time
from pathlib import Path

import uvloop

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from relay.state import Ask, open_store  # noqa: E402
from relay.state.fleet import Fleet  # noqa: E402

import procs  # noqa: E402


async def measure(url: str, calls: int, concurrency: int) -> tuple[float, float]:
    store = open_store(url, prefix=f"bench{time.monotonic_ns()}:")  # (memory:// has no use for one)
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
            proc, url = procs.redis_server(Path(directory), None)
        try:
            for name, store_url in (("memory", "memory://"), ("redis", url)):
                us, rate = uvloop.run(measure(store_url, args.calls, args.concurrency))
                print(f"{name:6} {us:6.1f} µs CPU per admit  {rate:8.0f} admits/s  "
                      f"({args.calls} calls, {args.concurrency} concurrent)")
        finally:
            if proc is not None:
                proc.stop()


if __name__ == "__main__":
    main()
