"""Real CLI clients through the proxy: Codex CLI, Gemini CLI and Claude Code, each with a tool round trip.

Run by hand from the repository root with the test venv (this is not a pytest file):

    npm install --prefix tests/clients --no-package-lock --no-audit --no-fund   # once: tests/clients/package.json
    .venv/bin/python tests/real_clients.py
    .venv/bin/python tests/real_clients.py --codex-channel anthropic --gemini-channel openai --claude-channel gemini
    .venv/bin/python tests/real_clients.py --clients codex --codex-channel chat --trace-network

It starts the fake upstream (tests/fake_upstream.py) and, for each run, a proxy with one channel of
the asked type and one token, then runs the client non-interactively in a temporary HOME. The model
is `<family>-cli-<nonce>`: the fake plays its scripted round trip (tests/fake_script.py), calling the
client's shell tool with `echo aurax-tool-<nonce>` and then answering with text that quotes the
tool's output. A run passes when the client exits 0, its own JSON output shows it ran that command
and got the marker back, and its final answer quotes the marker as output (not as the command).

Channel types: `openai` (an OpenAI channel that serves /v1/responses itself), `chat` (an
OpenAI-compatible, chat-completions-only channel, `responses = false`, as DeepSeek), `anthropic`,
`gemini`. The clients stay off the network: base URLs on 127.0.0.1, a clean environment (no
inherited keys or proxy variables), telemetry, update checks, plugins and IDE integration off.
`--trace-network` runs each client under strace and fails the run on any address but loopback.
Exits non-zero when any run fails.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx

import servers
from real_client_output import TRACE, Outcome, claude_outcome, codex_outcome, gemini_outcome, network_seen, verdict

CLIENTS_DIR = servers.ROOT / "tests" / "clients"
TOKEN = "sk-ax-real-clients"
PROMPT = "Run the shell command you are asked for with your shell tool, then report its output."
CHANNELS = {  # type -> (the channel's TOML lines, the model family it serves)
    "openai": ('type = "openai"\nbase_url = "{up}/v1"\nresponses = true', "gpt-5"),
    "chat": ('type = "openai"\nbase_url = "{up}/v1"\nresponses = false', "deepseek-chat"),
    "anthropic": ('type = "anthropic"\nbase_url = "{up}"', "claude-sonnet"),
    "gemini": ('type = "gemini"\nbase_url = "{up}"', "gemini-2.5-flash"),
}


def proxy_config(channel: str, upstream: str) -> str:
    lines, family = CHANNELS[channel]
    return f"""
[groups.default]
multiplier = 1
[[tokens]]
name = "real-clients"
key = "{TOKEN}"
group = "default"
[[channels]]
name = "{channel}"
{lines.format(up=upstream)}
keys = ["sk-fake-upstream"]
models = ["{family}-*"]
"""


# ---- how each client is set up -----------------------------------------------------------------

def client_bin(name: str) -> Path:
    return CLIENTS_DIR / "node_modules" / ".bin" / name


def codex_setup(home: Path, proxy: str, model: str) -> tuple[list[str], dict[str, str]]:
    (home / ".codex").mkdir()
    # Codex speaks only the Responses API. `plugins` syncs a curated marketplace from GitHub and
    # ChatGPT at start-up; web_search is a built-in tool that only OpenAI's own API runs.
    (home / ".codex" / "config.toml").write_text(f"""
model = "{model}"
model_provider = "aurax"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false
web_search = "disabled"

[analytics]
enabled = false

[features]
plugins = false

[model_providers.aurax]
name = "AuraX proxy"
base_url = "{proxy}/v1"
wire_api = "responses"
env_key = "AURAX_API_KEY"
request_max_retries = 0
stream_max_retries = 0
""")
    argv = [str(client_bin("codex")), "exec", "--json", "--skip-git-repo-check", PROMPT]
    return argv, {"CODEX_HOME": str(home / ".codex"), "AURAX_API_KEY": TOKEN}


def gemini_setup(home: Path, proxy: str, model: str) -> tuple[list[str], dict[str, str]]:
    (home / ".gemini").mkdir()
    settings = {"general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
                "privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False},
                "ide": {"enabled": False}, "security": {"auth": {"selectedType": "gemini-api-key"}}}
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings, indent=2))
    argv = [str(client_bin("gemini")), "-m", model, "--approval-mode", "yolo", "-o", "stream-json", "-p", PROMPT]
    # A folder that is not trusted turns yolo back into asking, which a headless run cannot answer.
    return argv, {"GEMINI_API_KEY": TOKEN, "GOOGLE_GEMINI_BASE_URL": proxy, "GEMINI_CLI_TRUST_WORKSPACE": "true"}


def claude_setup(home: Path, proxy: str, model: str) -> tuple[list[str], dict[str, str]]:
    # --dangerously-skip-permissions is refused as root: allowing Bash alone is what the run needs.
    argv = [str(client_bin("claude")), "-p", "--model", model, "--allowedTools", "Bash", "--output-format",
            "stream-json", "--verbose", "--strict-mcp-config", "--", PROMPT]
    return argv, {"ANTHROPIC_BASE_URL": proxy, "ANTHROPIC_AUTH_TOKEN": TOKEN, "DISABLE_TELEMETRY": "1",
                  "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}


@dataclass(frozen=True)
class Client:
    name: str
    channel: str  # the channel of its own dialect
    setup: Callable[[Path, str, str], tuple[list[str], dict[str, str]]]
    outcome: Callable[[str], Outcome]


CLIENTS = {c.name: c for c in (Client("codex", "openai", codex_setup, codex_outcome),
                               Client("gemini", "gemini", gemini_setup, gemini_outcome),
                               Client("claude", "anthropic", claude_setup, claude_outcome))}


# ---- running one client ------------------------------------------------------------------------

def run_process(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> tuple[int | None, str, str]:
    """Exit status (None on timeout), stdout and stderr; the whole process group is stopped by its PID."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            out, err = proc.communicate(timeout=5)
            return None, out, err
        except subprocess.TimeoutExpired:
            continue
    raise RuntimeError(f"{argv[0]} (pid {proc.pid}) survived SIGKILL")


@dataclass(frozen=True)
class Run:
    client: str
    channel: str
    model: str
    status: int | None
    outcome: Outcome
    proxy: list[str]
    upstream: list[str]
    network: list[str] | None
    failure: str | None
    stderr: str


_ACCESS = re.compile(r'"([A-Z]+ \S+) HTTP/[\d.]+" (\d+)')


def counted(items: list[str]) -> list[str]:
    return [f"{n} x {item}" for item, n in collections.Counter(items).items()]


def answered(proxy: servers.Server) -> list[str]:
    """The requests the proxy answered, with their status, from its access log."""
    return counted([f"{request} -> {status}" for request, status in _ACCESS.findall(proxy.stdout())
                    if request != "GET /healthz"])  # the script's own readiness check


def received(upstream: servers.Server) -> list[str]:
    records = httpx.get(f"{upstream.url}/_received", timeout=30).json()
    return counted([f"{r['method']} {r['path']}" for r in records])


def run_client(client: Client, channel: str, upstream: servers.Server, work: Path, timeout: float,
               trace: bool) -> Run:
    nonce = secrets.token_hex(4)
    model = f"{CHANNELS[channel][1]}-cli-{nonce}"
    home, cwd = work / "home", work / "work"
    home.mkdir()
    cwd.mkdir()
    httpx.delete(f"{upstream.url}/_received", timeout=10).raise_for_status()
    try:
        proxy = servers.proxy(proxy_config(channel, upstream.url), work, access_log=True)
    except RuntimeError as exc:
        return Run(client.name, channel, model, None, Outcome(), [], [], None, "the proxy did not start", str(exc))
    try:
        argv, extra = client.setup(home, proxy.url, model)
        env = {"PATH": os.environ["PATH"], "HOME": str(home), "TMPDIR": str(work), "LANG": "C.UTF-8",
               "TERM": "dumb", "NO_COLOR": "1", **extra}
        trace_file = work / "network.trace"
        if trace:
            argv = [*TRACE, "-o", str(trace_file), *argv]
        status, stdout, stderr = run_process(argv, env, cwd, timeout)
    finally:
        proxy.stop()
    (work / "client.out").write_text(stdout)
    (work / "client.err").write_text(stderr)
    outcome = client.outcome(stdout)
    network = network_seen(trace_file.read_text(errors="replace")) if trace else None
    failure = verdict(status, outcome, f"aurax-tool-{nonce}", network)
    if failure is None and "Traceback" in proxy.stderr():
        failure = "the proxy logged a traceback"
    # The proxy's own warnings and errors; its INFO lines only say it started and stopped.
    problems = [line for line in proxy.stderr().splitlines() if line.strip() and not line.startswith("INFO:")]
    return Run(client.name, channel, model, status, outcome, answered(proxy), received(upstream), network, failure,
               "\n".join([*stderr.splitlines(), *problems]))


def one_line(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def report(run: Run) -> None:
    print(f"== {run.client} on channel type {run.channel} (model {run.model})")
    print(f"   exit status:  {'-' if run.status is None else run.status}")
    print(f"   tool command: {one_line(run.outcome.command) or '-'}")
    print(f"   tool output:  {one_line(run.outcome.output) or '-'}")
    print(f"   final answer: {one_line(run.outcome.answer) or '-'}")
    if run.outcome.error:
        print(f"   client error: {one_line(run.outcome.error, 600)}")
    print(f"   proxy saw:    {', '.join(run.proxy) or 'nothing'}")
    print(f"   upstream saw: {', '.join(run.upstream) or 'nothing'}")
    if run.network is not None:
        print(f"   network:      {', '.join(run.network) or 'loopback only'}")
    tail = [line for line in run.stderr.splitlines() if line.strip()][-8:]
    if run.failure and tail:
        print("   stderr tail:  " + "\n                 ".join(one_line(line) for line in tail))
    print(f"   {'FAIL: ' + run.failure if run.failure else 'PASS'}")


def main(argv: list[str] | None = None) -> int:
    """Run the asked clients on the asked channel types; 0 when every round trip passed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated: codex, gemini, claude")
    for client in CLIENTS.values():
        parser.add_argument(f"--{client.name}-channel", choices=sorted(CHANNELS), default=client.channel)
    parser.add_argument("--timeout", type=float, default=180, help="seconds each client may take")
    parser.add_argument("--trace-network", action="store_true", help="fail a run that reaches beyond loopback")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (logs, HOMEs)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.clients.split(",") if n.strip()]
    unknown = [n for n in names if n not in CLIENTS]
    if unknown:
        parser.error(f"unknown client(s): {', '.join(unknown)}")
    missing = [n for n in names if not client_bin(n).exists()]
    if missing:
        print(f"not installed: {', '.join(missing)}; run: npm install --prefix tests/clients --no-package-lock")
        return 2
    if args.trace_network and not shutil.which("strace"):
        print("--trace-network needs strace")
        return 2
    root = Path(tempfile.mkdtemp(prefix="aurax-real-clients-"))
    runs: list[Run] = []
    try:
        upstream = servers.fake_upstream(root)
        try:
            for name in names:
                work = root / name
                work.mkdir()
                run = run_client(CLIENTS[name], getattr(args, f"{name}_channel"), upstream, work, args.timeout,
                                 args.trace_network)
                report(run)
                runs.append(run)
        finally:
            upstream.stop()
    finally:
        if args.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    failed = [r for r in runs if r.failure]
    print(f"{len(runs) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
