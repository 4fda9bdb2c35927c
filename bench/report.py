"""The printed result: the machine, the scenario table with ratios and targets, every run's counts."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import nginx
import portkey
import procs
import wrk

if TYPE_CHECKING:
    from run import Bench, Run

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in ("starlette", "httpx", "aiohttp", "uvicorn", "uvloop", "httptools", "orjson"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    tools = {}
    if wrk.WRK:
        tools["wrk"] = (subprocess.run([wrk.WRK, "-v"], check=False, capture_output=True, text=True).stdout.split("[")[0]
                        .replace("wrk", "").strip() or "?")
    if portkey.AVAILABLE:
        node = subprocess.run([portkey.NODE, "--version"], check=False, capture_output=True, text=True).stdout.strip()
        tools["Portkey gateway"] = f"{portkey.version()} (Node {node})"
    if nginx.NGINX:
        tools["nginx"] = subprocess.run([nginx.NGINX, "-v"], check=False, capture_output=True, text=True).stderr.strip().split("/")[-1]
    code = "unknown"
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], check=False, cwd=ROOT,
                               capture_output=True, text=True)
        if head.returncode == 0:
            changed = len(dirty.stdout.splitlines())
            code = head.stdout.strip() + (f" + {changed} modified files" if changed else "")
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "packages": versions, "tools": tools, "code": code}


def _num(v: float | None, digits: int = 2, comma: bool = False) -> str:
    if v is None:
        return "—"
    return f"{v:,.{digits}f}" if comma else f"{v:.{digits}f}"


class Table:
    COLUMNS = ("scenario", "direct", "proxy", "proxy/direct", "ceiling", "proxy/ceiling", "lean", "proxy/lean",
               "proxy, no access log", "nginx", "Portkey", "proxy/Portkey", "target", "proxy vs target")

    def __init__(self, bench: Bench) -> None:
        self.b = bench
        self.rows: list[list[str]] = []

    def runs(self, target: str, scenario: str) -> dict[int, Run]:
        """That target's runs of that scenario, by round."""
        return {r.round: r for r in self.b.runs if r.target == target and r.scenario == scenario}

    @staticmethod
    def median(values) -> float | None:
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    def value(self, target: str, scenario: str, value) -> float | None:
        """The median over the rounds."""
        return self.median(value(r) for r in self.runs(target, scenario).values())

    def errored(self, target: str, scenario: str) -> bool:
        return any(r.errors for r in self.runs(target, scenario).values())

    def cell(self, target: str, scenario: str, value, digits: int = 2, comma: bool = False) -> str:
        if target not in self.b.targets:
            return _absent(target)
        if not self.runs(target, scenario):
            return "—"
        text = _num(self.value(target, scenario, value), digits, comma)
        return text + " ⚠ERRORS" if self.errored(target, scenario) else text

    def ratio(self, target: str, base: str, scenario: str, value, base_scenario: str | None = None) -> float | None:
        """The median of the same round's ratios: each pair was measured seconds apart."""
        mine, theirs = self.runs(target, scenario), self.runs(base, base_scenario or scenario)
        pairs = [(value(mine[k]), value(theirs[k])) for k in mine.keys() & theirs.keys()]
        return self.median(a / b if a is not None and b else None for a, b in pairs)

    def verdict(self, ok: bool | None, errored: bool) -> str:
        if errored:
            return "**FAIL (errors)**"
        if ok is None:
            return "—"
        return "pass" if ok else "**FAIL**"

    def add(self, label, scenario, value, *, digits=2, comma=False, ratio=True, target_text="—",
            check=None, direct=True, who="proxy") -> None:
        """A row of one scenario: `who` (the proxy, or a variant of it) in the proxy column, its
        ratios to the others, and each other target's own value."""
        pv = self.value(who, scenario, value)

        def ratio_to(name: str) -> str:
            r = self.ratio(who, name, scenario, value) if ratio else None
            return "—" if r is None else f"{r:.2f}×"

        errored = not self.runs(who, scenario) or self.errored(who, scenario)
        self.rows.append([
            label,
            self.cell("direct", scenario, value, digits, comma) if direct else "—",
            self.cell(who, scenario, value, digits, comma),
            ratio_to("direct"),
            self.cell("ceiling", scenario, value, digits, comma),
            ratio_to("ceiling"),
            self.cell("lean", scenario, value, digits, comma),
            ratio_to("lean"),
            self.cell("proxy_nolog", scenario, value, digits, comma) if who == "proxy" else "—",
            self.cell("nginx", scenario, value, digits, comma),
            self.cell("portkey", scenario, value, digits, comma),
            ratio_to("portkey"),
            target_text,
            self.verdict(None if check is None or pv is None else check(pv), errored),
        ])

    def add_ratio(self, label: str, who: str, scenario: str, base: str, base_scenario: str, value, *,
                  target_text: str = "—", check=None, nolog: bool = False) -> None:
        """A row of one ratio: `who`'s value in `scenario` over `base`'s in `base_scenario`, the
        median of the same round's ratios. `nolog`: the proxy without access log's own ratio too."""
        def text(name: str, base_name: str) -> tuple[str, float | None, bool]:
            if name not in self.b.targets or base_name not in self.b.targets:
                return _absent(name if name not in self.b.targets else base_name), None, False
            r = self.ratio(name, base_name, scenario, value, base_scenario)
            errored = self.errored(name, scenario) or self.errored(base_name, base_scenario)
            shown = ("—" if r is None else f"{r:.2f}×") + (" ⚠ERRORS" if errored else "")
            return shown, r, errored or not self.runs(name, scenario)

        shown, r, errored = text(who, base)
        nolog_text = text("proxy_nolog", "proxy_nolog")[0] if nolog else "—"
        absent = who not in self.b.targets
        self.rows.append([label, "—", shown, "—", "—", "—", "—", "—", nolog_text, "—", "—", "—", target_text,
                          "—" if absent else self.verdict(None if check is None or r is None else check(r), errored)])

    def add_added_ttfc(self, label: str, scenario: str) -> None:
        direct = self.runs("direct", scenario)

        def added(name: str) -> tuple[str, float | None, bool]:
            if name not in self.b.targets:
                return _absent(name), None, False
            mine = self.runs(name, scenario)
            # the median of each round's difference to direct's run of that round
            v = self.median(mine[k].ttfc_p50_ms - direct[k].ttfc_p50_ms for k in mine.keys() & direct.keys()
                            if mine[k].ttfc_p50_ms is not None and direct[k].ttfc_p50_ms is not None)
            if v is None:
                return "—", None, True
            errored = self.errored(name, scenario) or self.errored("direct", scenario)
            return f"{v:+.2f}" + (" ⚠ERRORS" if errored else ""), v, errored

        proxy_text, pv, perr = added("proxy")
        self.rows.append([label, "0 (baseline)", proxy_text, "—", added("ceiling")[0], "—", added("lean")[0], "—",
                          added("proxy_nolog")[0], added("nginx")[0], added("portkey")[0], "—", "≤ 3",
                          self.verdict(None if pv is None else pv <= 3, perr)])

    def add_target_row(self, label: str, attr: str, digits: int, target_text: str, check) -> None:
        def get(name: str) -> str:
            t = self.b.targets.get(name)
            if t is None:
                return _absent(name)
            v = getattr(t, attr)
            text = _num(v, digits)
            if attr == "cold_start_s" and t.cold_start_error:
                text += " ⚠ERRORS"
            return text

        proxy = self.b.targets.get("proxy")
        pv = getattr(proxy, attr) if proxy else None
        errored = proxy is None or (attr == "cold_start_s" and proxy.cold_start_error is not None)
        portkey_value = getattr(self.b.targets["portkey"], attr) if "portkey" in self.b.targets else None
        ratio = f"{pv / portkey_value:.2f}×" if pv and portkey_value else "—"
        self.rows.append([label, "—", get("proxy"), "—", get("ceiling"), "—", get("lean"), "—",
                          get("proxy_nolog"), get("nginx"), get("portkey"), ratio, target_text,
                          self.verdict(None if pv is None else check(pv), errored)])

    def build(self) -> list[list[str]]:
        p = self.b.p
        shape = f"{p.stream_concurrency} × {p.stream_chunks} × {p.stream_gap_ms:g} ms"
        self.add(f"non-stream req/s ({p.connections} conns)", "chat", lambda r: r.rate, digits=0, comma=True,
                 target_text="≥ 4,000", check=lambda v: v >= 4000)
        self.add("non-stream CPU ms/req", "chat", lambda r: r.cpu_ms_per_req, digits=3,
                 target_text="≤ 0.25", check=lambda v: v <= 0.25)
        self.add("non-stream CPU busy %", "chat", lambda r: r.busy * 100 if r.busy is not None else None,
                 digits=0, ratio=False)
        self.add(f"100 KB body req/s ({p.connections} conns)", "chat_100k", lambda r: r.rate, digits=0, comma=True)
        self.add("100 KB body CPU ms/req", "chat_100k", lambda r: r.cpu_ms_per_req, digits=3)
        self.add(f"stream TTFC p50 ms ({shape})", "stream", lambda r: r.ttfc_p50_ms, digits=2)
        self.add_added_ttfc("stream added TTFC p50 ms", "stream")
        self.add("stream CPU s / 1k chunks", "stream", lambda r: r.cpu_s_per_1k_chunks, digits=4,
                 target_text="≤ 0.03", check=lambda v: v <= 0.03)
        self.add("Anthropic stream TTFC p50 ms", "anthropic_stream", lambda r: r.ttfc_p50_ms, digits=2)
        self.add_added_ttfc("Anthropic stream added TTFC p50 ms", "anthropic_stream")
        self.add("Anthropic stream CPU s / 1k chunks", "anthropic_stream", lambda r: r.cpu_s_per_1k_chunks,
                 digits=4, target_text="≤ 0.03", check=lambda v: v <= 0.03)
        # Translated streams against the stream the proxy passes through, issue #15's target.
        for key, name in (("anthropic_on_openai", "Anthropic-on-OpenAI"), ("responses_on_chat", "Responses-on-chat"),
                          ("gemini_on_openai", "Gemini-on-OpenAI")):
            self.add(f"{name} stream CPU s / 1k chunks", key, lambda r: r.cpu_s_per_1k_chunks, digits=4)
            self.add_ratio(f"{name} / pass-through stream, CPU per chunk", "proxy", key, "proxy", "stream",
                           lambda r: r.cpu_s_per_1k_chunks, target_text="≤ 1.3×", check=lambda v: v <= 1.3,
                           nolog=True)
        # The fleet state in Redis against memory://, issue #14's target.
        self.add(f"Redis store: non-stream req/s ({p.connections} conns)", "chat", lambda r: r.rate, digits=0,
                 comma=True, who="proxy_redis")
        self.add("Redis store: non-stream CPU ms/req", "chat", lambda r: r.cpu_ms_per_req, digits=3,
                 who="proxy_redis")
        self.add("Redis store: redis-server CPU ms/req", "chat", lambda r: r.store_cpu_ms_per_req, digits=3,
                 who="proxy_redis", ratio=False, direct=False)
        self.add_ratio("Redis / memory:// non-stream req/s", "proxy_redis", "chat", "proxy", "chat",
                       lambda r: r.rate, target_text="≥ 0.80×", check=lambda v: v >= 0.8)
        self.add_ratio("Redis / memory:// non-stream CPU per request", "proxy_redis", "chat", "proxy", "chat",
                       lambda r: r.cpu_ms_per_req)
        self.add_target_row("idle RSS MB", "idle_rss", 1, "≤ 50", lambda v: v <= 50)
        self.add_target_row("peak RSS MB", "peak_rss", 1, "≤ 80", lambda v: v <= 80)
        self.add_target_row("cold start to first 200 s", "cold_start_s", 3, "≤ 0.3", lambda v: v <= 0.3)
        return self.rows


def _absent(target: str) -> str:
    return "n/a" if target in ("nginx", "portkey", "proxy_redis") else "skipped"


def markdown(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def runs_table(bench: Bench) -> str:
    header = ("run", "tool", "seconds", "answers", "ok", "non-2xx", "wrong body", "socket errors",
              "latency p50 ms", "p99 ms", "CPU s (measured)", "upstream CPU s")
    rows = []
    for r in bench.runs:
        res = r.result
        label = f"{bench.targets[r.target].title} / {r.scenario}" + (f" #{r.round}" if bench.p.rounds > 1 else "")
        rows.append([label, res.tool, f"{res.elapsed:.2f}",
                     str(res.requests), str(res.ok), str(res.non_2xx), str(res.wrong_body), str(res.socket_errors),
                     _num(res.latency_p50 * 1000 if res.latency_p50 is not None else None, 2),
                     _num(res.latency_p99 * 1000 if res.latency_p99 is not None else None, 2),
                     f"{r.cpu_s:.2f}", f"{r.upstream_cpu_s:.2f}"])
    return markdown(header, rows)


def report(bench: Bench, info: dict, usage: dict[str, dict], metrics_status: str | None) -> str:
    p = bench.p
    lines = ["# AuraX Edge Proxy benchmark" + (" (--quick: a tiny load, numbers are not meaningful)" if p.quick else ""),
             "",
             f"machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, Python {info['python']}",
             "packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()),
             f"code: {info['code']}",
             "tools: " + (", ".join(f"{k} {v}" for k, v in info["tools"].items()) or "none (wrk, nginx not installed)"),
             ]
    if bench.proxy_cpu is None:
        lines.append("pinning: OFF (fewer than 2 CPUs available): numbers mix proxy and load CPU")
    else:
        how = "taskset" if procs.TASKSET else "sched_setaffinity"
        lines.append(f"pinning: proxy (and every target but direct) on CPU {bench.proxy_cpu}; fake upstream + "
                     f"load generator on CPU {bench.load_cpu} ({how}); one process each")
    nonstream_tool = "wrk (1 thread)" if bench.client == "wrk" else "asyncio client (bench/loadgen.py)"
    load = (f"non-stream: {nonstream_tool}, {p.connections} connections, "
            + (f"{p.count} requests" if bench.client != "wrk" and p.count else f"{p.duration:g} s")
            + (f" after {p.warmup:g} s warm-up" if p.warmup else "")
            + f"; streams: asyncio client, {p.stream_concurrency} concurrent × {p.stream_chunks} chunks × "
            + f"{p.stream_gap_ms:g} ms, " + (f"{p.stream_count} streams" if p.stream_count else f"{p.stream_duration:g} s")
            + f"; cold start: median of {p.cold_starts}"
            + (f"; {p.rounds} rounds, the targets taking turns at each scenario: medians, and for ratios "
               "the median of each round's ratio" if p.rounds > 1 else ""))
    lines.append("load: " + load)
    features = ("proxy features: token auth (allow-list, rpm/tpm limits and a balance: each request is admitted, "
                "reserves and settles), routing (2 priorities, sticky over 2 keys), usage accounting + priced "
                "billing, usage lines to stdout (a file)")
    features += ", access log on in 'proxy' (uvicorn's lines, written by the app; stdout), off in 'proxy, no access log' (--no-access-log)"
    features += f"; GET /metrics after the runs → {metrics_status or '?'}"
    lines.append(features)
    stores = [f"{t.title}: {'redis' if name == 'proxy_redis' else 'memory://'}, "
              + ("errors ?" if t.state_errors is None else f"{t.state_errors:,.0f} errors")
              + ("  ⚠ STATE ERRORS (admissions made on local counts)" if t.state_errors else "")
              for name, t in bench.targets.items() if t.key_kind == "token"]
    lines.append("fleet state (errors from /metrics): " + "; ".join(stores)
                 + ("; the redis-server is local, pinned with the fake upstream, persistence off"
                    if "proxy_redis" in bench.targets else ""))
    for name, counts in usage.items():
        t = bench.targets[name]
        lines.append(f"usage lines ({t.title}): {counts['records']} records, {counts['ok_records']} with status 200 "
                     f"({counts['billed']} billed, {counts['estimated']} estimated) for {t.ok_answers} 2xx answers "
                     f"the load generators read; other statuses: {counts['other_status'] or 'none'}"
                     + ("  ⚠ MISSING USAGE LINES" if counts["billed"] < t.ok_answers else ""))
    for t in bench.targets.values():
        if t.cold_start_samples:
            lines.append(f"cold starts of {t.title} (s): " + ", ".join(f"{s:.3f}" for s in t.cold_start_samples))
    lines += ["", markdown(Table.COLUMNS, Table(bench).build()), "",
              ("direct = load straight at the fake upstream; its CPU columns are the fake upstream's own CPU. "
               "ceiling = bench/ceiling.py, Starlette + aiohttp and nothing else (issue #6's ceiling for this design). "
               "lean = bench/lean.py, Starlette and the proxy's own httpx client and transport used through "
               "client.send, no features (issue #6's 'lean' row); the proxy skips client.send and httpx's stream "
               "wrapper, so proxy/lean is the price of its features net of what that saves. "
               "proxy/direct, proxy/ceiling, proxy/lean: ratios of the proxy's value to theirs. "
               "Added TTFC = that column's p50 − direct's p50. "
               "Portkey = Portkey's AI gateway (bench/portkey.py), non-stream scenarios only: its streams fail "
               "here (500, 'TypeError: immutable'). "
               "X-on-Y streams: a client of dialect X on the OpenAI chat channel, translated by the proxy (only "
               "the proxies run them); their ratio is to the proxy's own OpenAI stream, passed through, of the "
               "same round. 'Redis store' rows: in the proxy column, a second proxy with the same config but "
               "[state] url = redis://… (a local redis-server); its ratio to the proxy on memory:// is of the "
               "same round."),
              "", "## Runs (every timed run; errors make a run FAIL)", "", runs_table(bench)]
    total_errors = sum(r.errors for r in bench.runs)
    cold_errors = [t.title for t in bench.targets.values() if t.cold_start_error]
    state_errors = sum(t.state_errors or 0 for t in bench.targets.values())
    lines += ["", f"errors: {total_errors} in timed runs" + (f"; cold start errors: {', '.join(cold_errors)}" if cold_errors else "")
              + f"; state store errors: {state_errors:,.0f}"]
    lines += [f"note: {n}" for n in bench.notes]
    return "\n".join(lines)
