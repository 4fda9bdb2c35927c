"""Where the proxy's CPU goes: a summary of py-spy's raw (collapsed) stacks.

    py-spy record --pid PID --format raw --rate 200 --duration 12 -o stacks.txt
    python bench/profile_summary.py stacks.txt

Self time is charged to the innermost Python frame of each sample (time in C code — orjson,
uvloop, syscalls — counts for the Python function that called it). Modules are grouped as
starlette / httpx / aiohttp / uvicorn / relay / routes / asyncio / logging / other.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")
_GROUPS = {
    "starlette": "starlette", "httpx": "httpx", "httpcore": "httpx", "aiohttp": "aiohttp", "yarl": "aiohttp",
    "multidict": "aiohttp", "aiosignal": "aiohttp", "propcache": "aiohttp", "uvicorn": "uvicorn",
    "relay": "relay", "routes": "routes", "app.py": "routes", "asyncio": "asyncio", "uvloop": "asyncio",
    "logging": "logging",
}


def group_of(path: str) -> str:
    head = path.split("/", 1)[0]
    return _GROUPS.get(head, "other")


def parse(text: str) -> list[tuple[list[tuple[str, str, str]], int]]:
    samples = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for raw in stack.split(";"):
            m = _FRAME.match(raw)
            frames.append((m["func"], m["file"], m["line"] or "") if m else (raw, "?", ""))
        samples.append((frames, int(count)))
    return samples


def summary(path: Path, top: int = 15) -> str:
    samples = parse(Path(path).read_text(errors="replace"))
    total = sum(n for _, n in samples)
    if not total:
        return "(no samples)"
    self_fn: Counter[tuple[str, str]] = Counter()
    self_line: Counter[tuple[str, str, str]] = Counter()
    groups: Counter[str] = Counter()
    inclusive: Counter[tuple[str, str]] = Counter()
    for frames, n in samples:
        func, file, line = frames[-1]
        self_fn[(func, file)] += n
        self_line[(func, file, line)] += n
        groups[group_of(file)] += n
        for key in {(f, p) for f, p, _ in frames}:
            inclusive[key] += n

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    out = [f"{total} samples (py-spy, on-CPU Python stacks)", "", "self time by module group:", ""]
    out += ["| group | share |", "|---|---|"]
    out += [f"| {g} | {pct(n)} |" for g, n in groups.most_common()]
    out += ["", f"top {top} functions by self time:", "", "| share | group | function (file) |", "|---|---|---|"]
    out += [f"| {pct(n)} | {group_of(f)} | `{fn}` ({f}) |" for (fn, f), n in self_fn.most_common(top)]
    out += ["", f"top {top} lines by self time:", "", "| share | group | line |", "|---|---|---|"]
    out += [f"| {pct(n)} | {group_of(f)} | `{fn}` ({f}:{ln}) |" for (fn, f, ln), n in self_line.most_common(top)]
    out += ["", "inclusive time of the request path's own functions (relay, routes) and big callees:", "",
            "| share | group | function (file) |", "|---|---|---|"]
    interesting = [(k, n) for k, n in inclusive.most_common()
                   if group_of(k[1]) in ("relay", "routes", "logging", "httpx", "aiohttp", "starlette")
                   and n / total >= 0.01]
    out += [f"| {pct(n)} | {group_of(f)} | `{fn}` ({f}) |" for (fn, f), n in interesting[:25]]
    return "\n".join(out)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(f"## {arg}\n")
        print(summary(Path(arg)))
        print()
