"""Real servers for end-to-end tests: the fake upstream and the proxy, each a uvicorn process.

Each server gets a socket the test bound (a free port, no race) and listens on it from the start,
so the first request simply waits in the backlog until the app is up. Servers are stopped by
their PID, with a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


class Server:
    """`argv` runs the server; `--fd N` (the bound socket) is appended."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, log_dir: Path | None = None,
                 name: str = "server") -> None:
        self.sock = socket.socket()
        # uvicorn takes an inherited fd for a Unix socket and so never sets TCP_NODELAY on the
        # connections; set on the listener, Linux passes it on to every accepted socket.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        out_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
        self.stdout_path = out_dir / f"{name}-{self.port}.out"
        self.stderr_path = out_dir / f"{name}-{self.port}.err"
        self._stdout = open(self.stdout_path, "wb")
        self._stderr = open(self.stderr_path, "wb")
        fd = self.sock.fileno()
        self.proc = subprocess.Popen(
            [*argv, "--fd", str(fd)],
            cwd=ROOT, pass_fds=(fd,), stdout=self._stdout, stderr=self._stderr,
            env={**os.environ, **(env or {})},
        )
        self.sock.close()  # the server owns the socket now: when it stops listening, connects fail

    def wait_ready(self, path: str = "/healthz", timeout: float = 20.0) -> None:
        try:
            httpx.get(self.url + path, timeout=timeout).raise_for_status()
        except Exception:
            self.stop()
            raise RuntimeError(f"server did not start: {self.stderr()}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self._stdout.close()
        self._stderr.close()
        return self.proc.returncode

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


UVICORN = [sys.executable, "-m", "uvicorn"]


def fake_upstream(log_dir: Path | None = None) -> Server:
    server = Server([*UVICORN, "--app-dir", "tests", "fake_upstream:app", "--no-access-log", "--log-level", "warning"],
                    log_dir=log_dir, name="upstream")
    server.wait_ready("/_received")
    return server


@contextlib.contextmanager
def fleet(config_text: str, tmp_path_factory, count: int = 2, name: str = "replica"):
    """`count` proxies on one config, as replicas of a fleet. Each one started is stopped however
    the block ends (one that fails to start stops those before it); then none may have logged a
    traceback."""
    started: list[Server] = []
    try:
        for i in range(count):
            started.append(proxy(config_text, tmp_path_factory.mktemp(f"{name}{i}")))
        yield started
    finally:
        for server in started:
            server.stop()
    for server in started:
        assert "Traceback" not in server.stderr(), server.stderr()[-3000:]


def proxy(config_text: str, tmp_path: Path, env: dict[str, str] | None = None, ready: bool = True,
          access_log: bool = False, http: str = "httptools") -> Server:
    config = tmp_path / f"upstreams-{time.monotonic_ns()}.toml"
    config.write_text(config_text)
    args = [*UVICORN, "app:app", "--loop", "uvloop", "--http", http, "--log-level", "info"]
    if not access_log:
        args.append("--no-access-log")
    server = Server(args, env={"AURAX_CONFIG": str(config), **(env or {})}, log_dir=tmp_path, name="proxy")
    if ready:
        server.wait_ready()
    return server


def silent_upstream(log_dir: Path | None = None) -> Server:
    server = Server([sys.executable, str(ROOT / "tests" / "silent_upstream.py")], log_dir=log_dir, name="silent")
    server.wait_ready("/_open")
    return server


def until(found, timeout: float, failure):
    """Polls `found()` (another process's state or output files: there is no event to await)
    until it gives something truthy, then returns that; past `timeout`, fails with `failure()`."""
    deadline = time.monotonic() + timeout
    while not (result := found()):
        if time.monotonic() > deadline:
            raise AssertionError(failure())
        time.sleep(0.02)
    return result


def _records(server: Server) -> list[dict]:
    return [json.loads(line) for line in server.stdout().splitlines() if line.startswith("{")]


def usage_records(server: Server, request_id: str | None = None, timeout: float = 5.0) -> list[dict]:
    """The proxy's usage lines; with `request_id`, waits until that request's line is written."""
    if request_id is None:
        return _records(server)

    def found():
        records = _records(server)
        return records if any(r["request_id"] == request_id for r in records) else None

    return until(found, timeout, lambda: f"no usage record for {request_id}")


def wait_records(server: Server, match, count: int, timeout: float = 5.0) -> list[dict]:
    """The proxy's usage lines that `match`, once there are `count` of them."""

    def found():
        matching = [r for r in _records(server) if match(r)]
        return matching if len(matching) >= count else None

    return until(found, timeout, lambda: f"{len([r for r in _records(server) if match(r)])} matching usage "
                                          f"records, expected {count}")


def usage_record(server: Server, request_id: str, timeout: float = 5.0) -> dict:
    return next(r for r in usage_records(server, request_id, timeout) if r["request_id"] == request_id)


def wait_stdout(server: Server, needle: str, timeout: float = 5.0) -> str:
    """The server's stdout once it holds `needle` (the proxy writes its lines in batches)."""

    def found():
        out = server.stdout()
        return out if needle in out else None

    return until(found, timeout, lambda: f"{needle!r} not in the server's output:\n{server.stdout()[-2000:]}")
