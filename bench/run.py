"""The relay's price, measured: one command, one table.

    .venv/bin/python bench/run.py            # full run, about 10 minutes
    .venv/bin/python bench/run.py --quick    # a tiny load, seconds: checks the benchmark works

Loads the fake upstream directly, through the proxy (every feature on; with and without
the access log), through the design's ceiling (bench/ceiling.py: Starlette + aiohttp and
nothing else), through lean (bench/lean.py: Starlette, and the proxy's httpx client and
transport used through client.send), through nginx and Portkey when installed; prints a markdown table
of the scenarios with ratios to direct, to the ceiling, to lean and to Portkey, and the targets
of issue #6. The proxy is pinned to one CPU; the fake upstream and the load generator (wrk,
else the asyncio client) share the other. Every run counts non-2xx answers and wrong bodies; an
errored run is never a pass. See bench/README.md.
"""

from __future__ import annotations

import argparse
import compileall
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import loadgen
import nginx
import portkey
import procs
import wrk
from loadgen import Result
from report import machine, report
from scenarios import (
    ANTHROPIC_KEY,
    CONFIG,
    FULL,
    OPENAI_KEYS,
    QUICK,
    TOKEN,
    Profile,
    Scenario,
    request_headers,
    scenarios,
)

try:
    import uvloop
    _run_async = uvloop.run
except ImportError:  # pragma: no cover
    import asyncio
    _run_async = asyncio.run


@dataclass
class Target:
    name: str
    title: str
    port: int
    proc: procs.Proc  # whose CPU time and memory are measured
    key_kind: str  # "upstream": the channel's own keys (direct, nginx); "token": the proxy token
    ok_answers: int = 0  # 2xx answers it gave, warm-ups and cold starts included
    cold_start_s: float | None = None
    cold_start_error: str | None = None
    cold_start_samples: list[float] = field(default_factory=list)
    idle_rss: float | None = None
    peak_rss: float | None = None
    metrics: str | None = None  # what GET /metrics said about the requests it served
    headers_for: Callable[[Scenario], dict[str, str]] | None = None  # extra request headers (Portkey's)
    only: frozenset[str] | None = None  # the scenarios it runs (None: all)

    def headers(self, sc: Scenario) -> dict[str, str]:
        return client_headers(sc, self.key_kind, self.headers_for)


def client_headers(sc: Scenario, key_kind: str, headers_for=None) -> dict[str, str]:
    """The SDK-like headers of a request to a target, plus any it needs of its own."""
    headers = request_headers(sc, key_kind)
    return {**headers, **headers_for(sc)} if headers_for else headers


@dataclass
class Run:
    target: str
    scenario: str
    result: Result
    cpu_s: float
    upstream_cpu_s: float
    chunks_per_stream: int = 0
    round: int = 1

    @property
    def errors(self) -> int:
        return self.result.errors

    @property
    def rate(self) -> float:
        return self.result.rate

    @property
    def cpu_ms_per_req(self) -> float | None:
        return self.cpu_s * 1000 / self.result.ok if self.result.ok else None

    @property
    def busy(self) -> float | None:
        return self.cpu_s / self.result.elapsed if self.result.elapsed else None

    @property
    def chunks(self) -> int:
        return self.result.ok * self.chunks_per_stream

    @property
    def cpu_s_per_1k_chunks(self) -> float | None:
        return self.cpu_s / (self.chunks / 1000) if self.chunks else None

    @property
    def ttfc_p50_ms(self) -> float | None:
        v = loadgen.percentile(self.result.ttfc, 50)
        return None if v is None else v * 1000


# ---- driving load --------------------------------------------------------------------------------

class Bench:
    def __init__(self, profile: Profile, work: Path, client: str, with_nginx: bool, with_ceiling: bool = True,
                 with_portkey: bool = True, with_lean: bool = True) -> None:
        self.p = profile
        self.work = work
        self.client = client
        self.with_nginx = with_nginx
        self.with_ceiling = with_ceiling
        self.with_lean = with_lean
        self.with_portkey = with_portkey
        self.proxy_cpu, self.load_cpu = procs.cpu_plan()
        self.runs: list[Run] = []
        self.targets: dict[str, Target] = {}
        self.notes: list[str] = []
        self.cleanup: list[procs.Proc] = []
        self.upstream: procs.Proc | None = None
        self.upstream_port = 0

    # -- processes ------------------------------------------------------------------------------

    def start_upstream(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(4096)
        self.upstream_port = sock.getsockname()[1]
        argv = [sys.executable, str(BENCH / "fake_upstream.py"), "--fd", str(sock.fileno()),
                *[a for k in OPENAI_KEYS for a in ("--openai-key", k)], "--anthropic-key", ANTHROPIC_KEY]
        self.upstream = procs.Proc("fake-upstream", argv, cpu=self.load_cpu, pass_fds=(sock.fileno(),),
                                   stderr=self.work / "fake-upstream.err")
        sock.close()
        self.cleanup.append(self.upstream)
        deadline = time.monotonic() + 20
        while True:
            try:
                status, _ = _run_async(loadgen.get("127.0.0.1", self.upstream_port, "/healthz"))
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or not self.upstream.alive():
                raise RuntimeError(f"the fake upstream did not start: {self.upstream.stderr_text()}")
            time.sleep(0.02)
        self.targets["direct"] = Target("direct", "direct", self.upstream_port, self.upstream, "upstream")

    def write_config(self) -> Path:
        path = self.work / "bench-upstreams.toml"
        path.write_text(CONFIG.format(token=TOKEN, port=self.upstream_port, k1=OPENAI_KEYS[0], k2=OPENAI_KEYS[1],
                                      k3=OPENAI_KEYS[2], ak=ANTHROPIC_KEY))
        return path

    def proxy_argv(self, port: int, access_log: bool) -> list[str]:
        # As the Dockerfile's CMD runs it (with its PYTHONUNBUFFERED=1, see start_proxy).
        argv = [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port),
                "--loop", "uvloop", "--http", "relay.protocol:HttpToolsWithDeadlines", "--no-proxy-headers",
                "--no-server-header", "--timeout-keep-alive", "75", "--limit-concurrency", "2048",
                "--backlog", "2048"]
        return argv if access_log else argv + ["--no-access-log"]

    def cold_start(self, name: str, title: str, argv_for_port, env=None, key_kind="token",
                   stdout: Path | None = None, keep: bool = True, headers_for=None) -> Target:
        """Spawn, then poll with real requests until the first 200: that time is the cold start."""
        sc = scenarios(self.p)[0]
        port = procs.free_port()
        headers = client_headers(sc, key_kind, headers_for)
        t0 = time.perf_counter()
        proc = procs.Proc(name, argv_for_port(port), cpu=self.proxy_cpu, cwd=ROOT, env=env, stdout=stdout,
                          stderr=self.work / f"{name}.err")
        self.cleanup.append(proc)
        error = None
        while True:
            if not proc.alive():
                raise RuntimeError(f"{title} exited during start-up: {proc.stderr_text()}")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("POST", sc.path, body=sc.body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (ConnectionRefusedError, ConnectionResetError):
                if time.perf_counter() - t0 > 60:
                    raise RuntimeError(f"{title} did not answer within 60 s: {proc.stderr_text()}") from None
                time.sleep(0.001)
                continue
            finally:
                conn.close()
            elapsed = time.perf_counter() - t0
            if resp.status != 200 or data != sc.expected:
                error = f"first answer was {resp.status}: {data[:300]!r}"
            break
        target = Target(name, title, port, proc, key_kind, cold_start_s=elapsed, cold_start_error=error,
                        headers_for=headers_for)
        target.ok_answers += error is None
        if not keep:
            proc.stop()
        return target

    def start_proxy(self, name: str, title: str, access_log: bool) -> Target:
        # Bytecode compiled beforehand, as the Dockerfile does (its PYTHONDONTWRITEBYTECODE=1
        # would otherwise make every start compile the app anew).
        for source in ("app.py", "relay", "routes"):
            (compileall.compile_dir if (ROOT / source).is_dir() else compileall.compile_file)(
                str(ROOT / source), quiet=1)
        config = self.write_config()
        env = {**os.environ, "AURAX_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
        return self.started(name, title, lambda port: self.proxy_argv(port, access_log), env=env,
                            stdout=self.work / f"{name}.stdout")

    def started(self, name: str, title: str, argv_for_port, *, stdout: Path | None = None, **kwargs) -> Target:
        """`cold_starts` cold starts (the last process stays up): their median is the target's
        cold start. Then its idle memory, and it joins the targets."""
        samples = []
        for i in range(self.p.cold_starts):
            last = i == self.p.cold_starts - 1
            out = stdout if last or stdout is None else stdout.with_name(f"{name}-cold{i}.stdout")
            samples.append(self.cold_start(name, title, argv_for_port, stdout=out, keep=last, **kwargs))
        target = samples[-1]
        target.cold_start_samples = [t.cold_start_s for t in samples]  # (before the last one becomes the median)
        target.cold_start_s = statistics.median(target.cold_start_samples)
        errors = [t.cold_start_error for t in samples if t.cold_start_error]
        target.cold_start_error = errors[0] if errors else None
        time.sleep(self.p.idle_wait)
        target.idle_rss = target.proc.memory_mb()[0]
        self.targets[name] = target
        return target

    def start_nginx(self) -> Target | None:
        if not (self.with_nginx and nginx.NGINX):
            return None
        work = self.work / "nginx"
        holder: dict[str, Path] = {}

        def argv(port: int) -> list[str]:
            holder["conf"] = nginx.config(work, port, self.upstream_port)
            return nginx.argv(work, holder["conf"])

        return self.started("nginx", "nginx", argv, key_kind="upstream")

    def start_portkey(self) -> Target | None:
        """Portkey's gateway (bench/portkey.py), when installed: non-stream scenarios only."""
        if not (self.with_portkey and portkey.AVAILABLE):
            return None
        upstream_port = self.upstream_port
        target = self.started("portkey", "Portkey gateway (Node)", portkey.argv, env=portkey.env(),
                              key_kind="upstream", stdout=self.work / "portkey.stdout",
                              headers_for=lambda sc: portkey.headers(sc, upstream_port))
        target.only = portkey.SCENARIOS
        return target

    def start_ceiling(self) -> Target | None:
        """bench/ceiling.py: Starlette + aiohttp and nothing else, served as the proxy is."""
        if not self.with_ceiling:
            return None
        return self.start_reference("ceiling", "ceiling (Starlette + aiohttp)")

    def start_lean(self) -> Target | None:
        """bench/lean.py: Starlette + httpx over the proxy's transport, without its features."""
        if not self.with_lean:
            return None
        return self.start_reference("lean", "lean (Starlette + httpx)")

    def start_reference(self, module: str, title: str) -> Target:
        """A featureless reference app of bench/ (`module:app`), served as the proxy is."""
        env = {**os.environ, "BENCH_UPSTREAM": f"http://127.0.0.1:{self.upstream_port}"}

        def argv(port: int) -> list[str]:
            return [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH), f"{module}:app", "--host", "127.0.0.1",
                    "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-proxy-headers",
                    "--no-server-header", "--timeout-keep-alive", "75", "--no-access-log"]

        return self.started(module, title, argv, env=env, key_kind="upstream")

    # -- runs -----------------------------------------------------------------------------------

    def drive(self, target: Target, sc: Scenario, *, duration: float | None, count: int | None = None) -> Result:
        """One load run: for `duration` seconds, or `count` answers (the asyncio client only)."""
        headers = target.headers(sc)
        if not sc.stream and self.client == "wrk":
            lua = wrk.script(self.work, f"{target.name}-{sc.key}", sc.body, sc.expected, headers)
            return wrk.run(f"http://127.0.0.1:{target.port}{sc.path}", lua, connections=self.p.connections,
                           duration=duration)
        request = loadgen.build_request("POST", sc.path, f"127.0.0.1:{target.port}", headers, sc.body)
        connections = self.p.stream_concurrency if sc.stream else self.p.connections
        # Streams start spread over one stream's length, as independent clients' would: started
        # together, they would also end and start again together, a herd every half second.
        spread = sc.chunks * sc.gap_ms / 1000 if sc.stream else 0.0
        return _run_async(loadgen.drive("127.0.0.1", target.port, request, sc.expected, connections=connections,
                                        duration=None if count else duration, count=count, stream=sc.stream,
                                        spread=spread))

    def timed(self, sc: Scenario) -> tuple[float | None, int | None]:
        if sc.stream:
            return self.p.stream_duration, self.p.stream_count
        if self.client == "wrk" or self.p.count is None:
            return self.p.duration, None
        return None, self.p.count

    def measure(self, target: Target, sc: Scenario, round_: int = 1) -> Run:
        if self.p.warmup and round_ == 1:
            warm = self.drive(target, sc, duration=self.p.warmup)
            target.ok_answers += warm.ok
        duration, count = self.timed(sc)
        cpu0, up0 = target.proc.cpu_seconds(), self.upstream.cpu_seconds()
        result = self.drive(target, sc, duration=duration, count=count)
        cpu1, up1 = target.proc.cpu_seconds(), self.upstream.cpu_seconds()
        target.ok_answers += result.ok
        run = Run(target.name, sc.key, result, cpu1 - cpu0, up1 - up0, sc.chunks, round_)
        self.runs.append(run)
        if result.first_bad:
            bad = self.work / f"bad-{target.name}-{sc.key}-{round_}.txt"
            bad.write_bytes(result.first_bad)
        return run

    def measure_rounds(self) -> None:
        """Every scenario on every target, `rounds` times; within a round the targets take turns
        at each scenario, so the runs compared in a ratio are seconds apart (this VM's speed
        drifts by a third over minutes)."""
        for round_ in range(1, self.p.rounds + 1):
            for sc in scenarios(self.p):
                for target in self.targets.values():
                    if target.only is not None and sc.key not in target.only:
                        continue
                    run = self.measure(target, sc, round_)
                    print(f"  {round_}  {target.title:<24} {sc.title:<24} {_brief(run)}", file=sys.stderr,
                          flush=True)
        for target in self.targets.values():
            target.peak_rss = target.proc.memory_mb()[1]
            if target.key_kind == "token":
                target.metrics = scrape_metrics(target.port)

    def profile(self, target: Target, seconds: float) -> dict[str, Path]:
        """py-spy stacks of the proxy under the non-stream and stream loads (separate runs)."""
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(spy).exists():
            self.notes.append("--profile: py-spy not found (pip install py-spy)")
            return {}
        out = {}
        for sc in scenarios(self.p):
            if sc.key not in ("chat", "stream"):
                continue
            path = self.work / f"profile-{sc.key}.txt"
            with open(self.work / f"py-spy-{sc.key}.err", "wb") as err:
                spy_proc = subprocess.Popen([spy, "record", "--pid", str(target.proc.pid), "--format", "raw",
                                             "--rate", "250", "--duration", str(round(seconds)),
                                             "--output", str(path)], stdout=subprocess.DEVNULL, stderr=err)
                time.sleep(1.0)
                result = self.drive(target, sc, duration=seconds - 2)
                target.ok_answers += result.ok
                spy_proc.wait(timeout=seconds + 60)
            if path.exists():
                out[sc.key] = path
            else:
                self.notes.append(f"--profile: py-spy recorded nothing, see {self.work / f'py-spy-{sc.key}.err'}")
        return out

    def stop_all(self) -> None:
        for proc in reversed(self.cleanup):
            try:
                proc.stop()
            except Exception as exc:  # noqa: BLE001 - cleaning up; keep stopping the others
                print(f"could not stop {proc.name} (pid {proc.pid}): {exc}", file=sys.stderr)


def _brief(run: Run) -> str:
    r = run.result
    text = f"{r.ok} ok, {r.errors} errors, {r.rate:,.0f}/s, cpu {run.cpu_s:.2f}s"
    if r.ttfc:
        text += f", ttfc p50 {run.ttfc_p50_ms:.2f} ms"
    return text


def scrape_metrics(port: int) -> str:
    """GET /metrics, and the finished 2xx requests it counted (proof that metrics ran)."""
    try:
        status, body = _run_async(loadgen.get("127.0.0.1", port, "/metrics"))
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return f"error {exc}"
    if status != 200:
        return f"{status}" + (" (not implemented)" if status == 404 else "")
    ok = 0.0
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith("aurax_requests_total{") and 'status="2' in line:
            ok += float(line.rsplit(" ", 1)[1])
    return f"200, aurax_requests_total 2xx = {ok:,.0f}"


# ---- usage records ------------------------------------------------------------------------------

def usage_check(path: Path) -> dict:
    """What the proxy's usage lines say: one per request, billed, with usage from the upstream."""
    counts = {"records": 0, "ok_records": 0, "billed": 0, "estimated": 0, "other_status": {}}
    if not path.exists():
        return counts
    for line in path.read_bytes().splitlines():
        if not line.startswith(b"{"):
            continue
        rec = json.loads(line)
        counts["records"] += 1
        status = rec.get("status")
        if status == 200:
            counts["ok_records"] += 1
            if rec.get("billed_usd") is not None and rec.get("usage"):
                counts["billed"] += 1
            if rec.get("estimated"):
                counts["estimated"] += 1
        else:
            counts["other_status"][str(status)] = counts["other_status"].get(str(status), 0) + 1
    return counts


# ---- main ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark the proxy against a fake upstream: direct, and next to the "
                                             "ceiling, lean, nginx and Portkey.")
    ap.add_argument("--quick", action="store_true", help="a tiny load (seconds): checks the benchmark works")
    ap.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                    help="non-stream load generator (auto: wrk when installed)")
    ap.add_argument("--no-nginx", action="store_true", help="skip the nginx column")
    ap.add_argument("--no-portkey", action="store_true",
                    help="skip the Portkey column (bench/portkey.py; only when its gateway is installed)")
    ap.add_argument("--no-ceiling", action="store_true",
                    help="skip the ceiling column (bench/ceiling.py: Starlette + aiohttp, nothing else)")
    ap.add_argument("--no-lean", action="store_true",
                    help="skip the lean column (bench/lean.py: Starlette + httpx over the proxy's transport, "
                         "no features)")
    ap.add_argument("--no-access-log-run", choices=("auto", "yes", "no"), default="auto",
                    help="also run a proxy with --no-access-log (auto: in full runs)")
    ap.add_argument("--duration", type=float, help="seconds per timed run (overrides the profile)")
    ap.add_argument("--profile", action="store_true",
                    help="afterwards, record the proxy with py-spy under the non-stream and stream loads")
    ap.add_argument("--out", type=Path, help="directory for logs and results (default bench/results/<time>)")
    args = ap.parse_args(argv)

    profile = QUICK if args.quick else FULL
    if args.duration:
        profile = Profile(**{**profile.__dict__, "duration": args.duration,
                             "stream_duration": args.duration if profile.stream_duration else None})
    client = args.client
    if client == "auto":
        client = "wrk" if wrk.WRK else "python"
    if client == "wrk" and not wrk.WRK:
        ap.error("wrk is not installed (apt-get install -y wrk)")
    work = args.out or BENCH / "results" / time.strftime("%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    nolog = args.no_access_log_run == "yes" or (args.no_access_log_run == "auto" and not args.quick)

    bench = Bench(profile, work, client, with_nginx=not args.no_nginx, with_ceiling=not args.no_ceiling,
                  with_portkey=not args.no_portkey, with_lean=not args.no_lean)
    procs.pin_self(bench.load_cpu)
    info = machine()
    usage: dict[str, dict] = {}
    metrics_status = None
    profiles: dict[str, Path] = {}
    try:
        bench.start_upstream()
        print(f"fake upstream on :{bench.upstream_port}; results in {work}", file=sys.stderr, flush=True)
        # Every target is started first (each start is a cold start, measured while the
        # others idle), then they take turns under load.
        proxy = bench.start_proxy("proxy", "proxy", access_log=True)
        if nolog:
            bench.start_proxy("proxy_nolog", "proxy, no access log", access_log=False)
        bench.start_ceiling()
        bench.start_lean()
        if not args.no_nginx and not nginx.NGINX:
            bench.notes.append("nginx not installed: its column is n/a (apt-get install -y nginx-light)")
        bench.start_nginx()
        if not args.no_portkey and not portkey.AVAILABLE:
            bench.notes.append("Portkey's gateway not installed: its column is n/a "
                               "(npm install --no-save --prefix bench @portkey-ai/gateway@1.15.2)")
        bench.start_portkey()
        bench.measure_rounds()
        metrics_status = proxy.metrics
        if args.profile:
            profiles = bench.profile(proxy, 12 if not args.quick else 4)
        for name, target in bench.targets.items():
            if name == "direct":
                continue  # (the fake upstream: stopped last, by stop_all)
            target.proc.stop()
            if target.key_kind == "token":  # the proxies: their usage lines
                usage[name] = usage_check(work / f"{name}.stdout")
        (work / "nginx" / "nginx-access.log").unlink(missing_ok=True)  # ~40 MB a full run, never read
    finally:
        bench.stop_all()

    text = report(bench, info, usage, metrics_status)
    print(text)
    (work / "table.md").write_text(text + "\n")
    (work / "results.json").write_text(json.dumps({
        "machine": info, "profile": profile.__dict__, "client": client,
        "runs": [{"target": r.target, "scenario": r.scenario, "tool": r.result.tool, "elapsed": r.result.elapsed,
                  "round": r.round, "requests": r.result.requests, "ok": r.result.ok, "non_2xx": r.result.non_2xx,
                  "wrong_body": r.result.wrong_body, "socket_errors": r.result.socket_errors,
                  "rate": r.rate, "cpu_s": r.cpu_s, "upstream_cpu_s": r.upstream_cpu_s,
                  "cpu_ms_per_req": r.cpu_ms_per_req, "ttfc_p50_ms": r.ttfc_p50_ms,
                  "cpu_s_per_1k_chunks": r.cpu_s_per_1k_chunks} for r in bench.runs],
        "targets": {k: {"cold_start_s": t.cold_start_s, "cold_start_error": t.cold_start_error,
                        "idle_rss_mb": t.idle_rss, "peak_rss_mb": t.peak_rss} for k, t in bench.targets.items()},
        "usage": usage,
    }, indent=2))
    if profiles:
        import profile_summary
        for key, path in profiles.items():
            print(f"\n## py-spy profile of the proxy, {key} load ({path})\n")
            print(profile_summary.summary(path))
    failed = sum(r.errors for r in bench.runs) + sum(1 for t in bench.targets.values() if t.cold_start_error)
    missing = any(c["billed"] < bench.targets[n].ok_answers for n, c in usage.items())
    return 1 if failed or missing else 0


if __name__ == "__main__":
    sys.exit(main())
