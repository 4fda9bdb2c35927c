"""What can be tested of the deployment without a Docker engine: the image's start command and
environment, fly.toml, the README's two commands, hosts that send no lifespan events."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx

import servers

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dockerfile() -> tuple[dict[str, str], list[str], list[str], str]:
    """ENV, CMD, HEALTHCHECK CMD and EXPOSE of the Dockerfile."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    env: dict[str, str] = {}
    cmd = health = None
    expose = ""
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(dict(pair.split("=", 1) for pair in shlex.split(line[4:])))
        elif line.startswith("CMD "):
            cmd = json.loads(line[4:])
        elif line.startswith("HEALTHCHECK "):
            health = json.loads(line.split(" CMD ", 1)[1])
        elif line.startswith("EXPOSE "):
            expose = line.split()[1]
    return env, cmd, health, expose


def wait_http(url: str, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_image_start_command_serves_the_app_and_drains_on_sigterm(tmp_path):
    env, cmd, health, _ = dockerfile()
    port = free_port()
    env = {**os.environ, **env, "PORT": str(port),
           "AURAX_CONFIG": env["AURAX_CONFIG"].replace("/app/", f"{ROOT}/"),  # /app is the checkout
           # in the image, pip installed uvicorn on PATH; here it is this interpreter's
           "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    out = open(tmp_path / "out", "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        try:
            first = wait_http(f"http://127.0.0.1:{port}/healthz", 20)
        except httpx.TransportError:
            raise AssertionError((tmp_path / "out").read_text()) from None
        assert first.json() == {"status": "ok"}
        probe = subprocess.run(health, env=env, timeout=20)
        assert probe.returncode == 0  # the HEALTHCHECK passes
        response = httpx.get(f"http://127.0.0.1:{port}/v1/models?key=AIzaVisibleKey", timeout=5)
        assert response.status_code in (401, 502)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (tmp_path / "out").read_text()
    assert "GET /healthz" in log and "AIzaVisibleKey" not in log and "key=[redacted]" in log


def test_fly_toml_matches_the_image_and_the_app():
    fly = tomllib.loads((ROOT / "fly.toml").read_text())
    env, _, _, expose = dockerfile()
    service = fly["http_service"]
    assert service["internal_port"] == int(env["PORT"]) == int(fly["env"]["PORT"]) == int(expose)
    assert service["auto_stop_machines"] == "stop" and service["auto_start_machines"] is True
    assert service["concurrency"]["type"] == "requests"
    assert service["concurrency"]["soft_limit"] < service["concurrency"]["hard_limit"]
    checks = service["checks"]
    assert [c["path"] for c in checks] == ["/healthz"]
    from relay.config import Proxy

    assert int(fly["kill_timeout"].rstrip("s")) > Proxy().drain_s  # streams drain before a kill
    assert fly["kill_signal"] == "SIGTERM"


def readme_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [b.strip() for b in blocks[:2]]


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    run, test = readme_commands()
    assert "uvicorn app:app" in run and "pip install" in run
    assert "pytest" in test
    assert test in (ROOT / ".ci" / "run").read_text()
    assert (ROOT / "README.md").read_text().index("```sh") < 400  # it opens with them


def test_readme_run_command_in_a_clean_venv(tmp_path):
    """The first command, as written (on a free port), in a fresh copy of the project."""
    run, _ = readme_commands()
    port = free_port()
    assert "--port 8000" in run
    command = run.replace("--port 8000", f"--port {port}")
    work = tmp_path / "checkout"
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info",
                                                              ".pytest_cache", "bench"))
    out = open(tmp_path / "out", "wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)
    proc = subprocess.Popen(["bash", "-c", command], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        health = wait_http(f"http://127.0.0.1:{port}/healthz", 300)
        assert health.status_code == 200
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()
        assert ready["passthrough"] == ["anthropic", "gemini", "openai"] and ready["channels"] == 0
        response = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={"model": "gpt-4o"}, timeout=5)
        assert response.status_code == 401 and response.json()["error"]["message"].startswith("Missing API key")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "left out" in (tmp_path / "out").read_text()  # one warning per unset channel


def test_host_without_lifespan_events(upstream, tmp_path):
    config = tmp_path / "u.toml"
    config.write_text(f"""
[groups.default]
multiplier = 1
[[tokens]]
name = "t"
key = "sk-ax-t"
group = "default"
[[channels]]
name = "c"
type = "openai"
base_url = "{upstream.url}/v1"
keys = ["k"]
models = ["gpt-4o"]
""")
    server = servers.Server([*servers.UVICORN, "app:app", "--lifespan", "off", "--log-level", "warning"],
                            env={"AURAX_CONFIG": str(config)}, log_dir=tmp_path, name="nolifespan")
    server.wait_ready()
    response = httpx.post(f"{server.url}/v1/chat/completions", headers={"authorization": "Bearer sk-ax-t"},
                          json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, timeout=10)
    assert response.json()["choices"][0]["message"]["content"] == "echo: hi"
    server.stop(signal.SIGINT)  # the pool is closed at exit even though no lifespan ended
    assert "Unclosed" not in server.stderr() and "Traceback" not in server.stderr()


def test_aiohttp_verifies_tls_as_python_does_after_the_app_imports_it():
    # A fresh interpreter, where the app's transport is the first to import aiohttp.
    # (Where the machine has no CA bundle, every count is 0 and the comparisons still hold.)
    probe = """
import json, ssl, sys, threading
sys.path.insert(0, sys.argv[1])
seen_by_others, importing = [], True
def other_thread():  # a thread making TLS contexts while the app imports aiohttp
    while importing:
        seen_by_others.append(ssl.create_default_context().cert_store_stats()["x509_ca"])
thread = threading.Thread(target=other_thread)
thread.start()
import relay.transport
importing = False
thread.join()
import aiohttp.connector as c
default = ssl.create_default_context()
verified, unverified = c._SSL_CONTEXT_VERIFIED, c._SSL_CONTEXT_UNVERIFIED
print(json.dumps({
    "verified": verified.cert_store_stats(), "default": default.cert_store_stats(),
    "ca_names": sorted(str(x["subject"]) for x in verified.get_ca_certs())
                == sorted(str(x["subject"]) for x in default.get_ca_certs()),
    "verify": [verified.verify_mode == ssl.CERT_REQUIRED, verified.check_hostname],
    "unverified": [unverified.verify_mode == ssl.CERT_NONE, unverified.cert_store_stats()["x509_ca"]],
    "others": sorted(set(seen_by_others)) == [default.cert_store_stats()["x509_ca"]],
    "restored": "set_default_verify_paths" not in vars(ssl.SSLContext),
}))
"""
    out = subprocess.run([sys.executable, "-c", probe, str(ROOT)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["verified"] == seen["default"] and seen["ca_names"]
    assert seen["verify"] == [True, True] and seen["restored"]
    assert seen["unverified"] == [True, 0]  # the bundle is not read for it: the start-up time saved
    assert seen["others"]  # other threads' contexts meanwhile were whole
