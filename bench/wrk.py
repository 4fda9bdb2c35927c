"""Non-stream load with wrk (Debian/Ubuntu: `apt-get install -y wrk`), checked by a Lua script.

The script sends the scenario's POST and compares every answer with the expected bytes:
a non-2xx status or a different body is counted (wrk's own summary counts socket errors and
timeouts). One wrk thread; the caller pins it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from loadgen import Result

WRK = shutil.which("wrk")

_SCRIPT = r"""
local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

wrk.method = "POST"
wrk.body = slurp(%(body)s)
%(headers)s
expected = slurp(%(expected)s)
ok, non2xx, wrong = 0, 0, 0
first_bad = nil

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad == nil then first_bad = "status " .. status .. "\n" .. string.sub(body, 1, 4096) end
  elseif body ~= expected then
    wrong = wrong + 1
    if first_bad == nil then first_bad = "status " .. status .. "\n" .. string.sub(body, 1, 4096) end
  else
    ok = ok + 1
  end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local function q(s)
  if s == nil then return "null" end
  return string.format("%%q", s):gsub("\\\n", "\\n")
end

function done(summary, latency, requests)
  local o, n, w, bad = 0, 0, 0, nil
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    n = n + t:get("non2xx")
    w = w + t:get("wrong")
    bad = bad or t:get("first_bad")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %%d, "duration_us": %%d, "ok": %%d, "non_2xx": %%d, "wrong_body": %%d, ' ..
    '"socket_errors": %%d, "p50_us": %%d, "p99_us": %%d}\n',
    summary.requests, summary.duration, o, n, w,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
  if bad ~= nil then io.write("BENCH_BAD " .. q(bad) .. "\n") end
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for these values


def script(work: Path, name: str, body: bytes, expected: bytes, headers: dict[str, str]) -> Path:
    body_path = work / f"{name}.body"
    expected_path = work / f"{name}.expected"
    body_path.write_bytes(body)
    expected_path.write_bytes(expected)
    lines = "\n".join(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
    path = work / f"{name}.lua"
    path.write_text(_SCRIPT % {"body": _lua_string(str(body_path)), "expected": _lua_string(str(expected_path)),
                              "headers": lines})
    return path


def run(url: str, lua: Path, *, connections: int, duration: float) -> Result:
    argv = [WRK, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
            "--latency", "-s", str(lua), url]
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=duration + 60)
    found = [line for line in proc.stdout.splitlines() if line.startswith("BENCH_JSON ")]
    if not found:
        raise RuntimeError(f"wrk gave no result (exit {proc.returncode}): {proc.stdout[-1000:]} {proc.stderr[-1000:]}")
    data = json.loads(found[0][len("BENCH_JSON "):])
    res = Result(tool="wrk", requests=data["requests"], ok=data["ok"], non_2xx=data["non_2xx"],
                 wrong_body=data["wrong_body"], socket_errors=data["socket_errors"],
                 elapsed=data["duration_us"] / 1e6)
    res.latency_p50 = data["p50_us"] / 1e6
    res.latency_p99 = data["p99_us"] / 1e6
    bad = [line for line in proc.stdout.splitlines() if line.startswith("BENCH_BAD ")]
    if bad:
        res.first_bad = bad[0][len("BENCH_BAD "):].encode()
    return res
