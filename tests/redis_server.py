"""A real redis-server for the state tests: started on a free port, stopped by its PID.

Without redis-server installed the tests that need it fail, saying so: CI installs it (.ci/run).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """`persist`: an append-only file synced at every write, so data outlives a SIGKILL."""

    def __init__(self, directory: Path, port: int | None = None, persist: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server; .ci/run does it)")
        self.directory = directory
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory)]
        argv += ["--appendonly", "yes", "--appendfsync", "always"] if persist else ["--appendonly", "no"]
        self._log = open(directory / f"redis-{self.port}.log", "ab")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not answers_ping(self.port):  # no event to await: redis-server says nothing else
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server did not start: {(directory / f'redis-{self.port}.log').read_text()}")
            time.sleep(0.02)

    def kill(self) -> None:
        """Dies at once, as in a crash."""
        self.stop(signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


def fresh_prefix() -> str:
    """Keys of their own for each test on the shared server."""
    return f"t{uuid.uuid4().hex[:10]}:"
