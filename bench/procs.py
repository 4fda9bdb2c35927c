"""Processes under test: spawning pinned to a CPU, their CPU time and memory from /proc; a
redis-server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
TASKSET = shutil.which("taskset")
REDIS_SERVER = shutil.which("redis-server")


def cpu_plan() -> tuple[int | None, int | None]:
    """(the proxy's CPU, the load generator's and upstream's CPU), or (None, None) when this
    machine has fewer than two CPUs to give us."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


def pin_self(cpu: int | None) -> None:
    """Pin this process (and so every child that is not re-pinned) to `cpu`."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process, optionally pinned to one CPU with `taskset -c` (it execs, so the PID is
    the program's own)."""

    def __init__(self, name: str, argv: list[str], *, cpu: int | None, cwd: Path | None = None,
                 env: dict[str, str] | None = None, stdout: Path | None = None, stderr: Path | None = None,
                 pass_fds: tuple[int, ...] = ()) -> None:
        self.name = name
        if cpu is not None:
            if TASKSET:
                argv = [TASKSET, "-c", str(cpu), *argv]
                preexec = None
            else:
                def preexec() -> None:
                    os.sched_setaffinity(0, {cpu})
        else:
            preexec = None
        # Open for the child's whole life; closed by stop().
        self._out = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
        self._err = open(stderr, "wb") if stderr else subprocess.DEVNULL  # noqa: SIM115
        self.stderr_path = stderr
        self.popen = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self._out, stderr=self._err,
                                      pass_fds=pass_fds, preexec_fn=preexec)  # noqa: PLW1509 - no threads here
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process (all its threads) so far."""
        with open(f"/proc/{self.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def memory_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM): resident now and at its peak, in MB."""
        rss = hwm = 0.0
        with open(f"/proc/{self.pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
        return rss, hwm

    def stderr_text(self) -> str:
        if self.stderr_path and self.stderr_path.exists():
            return self.stderr_path.read_text(errors="replace")[-2000:]
        return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=timeout)
        for f in (self._out, self._err):
            if f is not subprocess.DEVNULL:
                f.close()


def redis_server(work: Path, cpu: int | None) -> tuple[Proc, str]:
    """A redis-server on a free port, pinned to `cpu`, persistence off (nothing written to disk
    during a run), and its URL, once it answers PING. The caller stops it (by its PID)."""
    port = free_port()
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(work)]
    proc = Proc("redis-server", argv, cpu=cpu, stdout=work / "redis-server.log", stderr=work / "redis-server.err")
    deadline = time.monotonic() + 20
    while not _answers_ping(port):  # it prints nothing else to wait for
        if time.monotonic() > deadline or not proc.alive():
            proc.stop()
            raise RuntimeError(f"redis-server did not start: {(work / 'redis-server.log').read_text()}")
        time.sleep(0.02)
    return proc, f"redis://127.0.0.1:{port}"


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False
