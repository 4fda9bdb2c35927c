"""The benchmark runs and prints its table (bench/run.py --quick). No timing is asserted: machines
are noisy. What is asserted: every row is there, and no run saw a non-2xx answer, a wrong body,
a socket error or a missing usage line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

ROWS = (
    "non-stream req/s", "non-stream CPU ms/req", "non-stream CPU busy %", "100 KB body req/s",
    "100 KB body CPU ms/req", "stream TTFC p50 ms", "stream added TTFC p50 ms", "stream CPU s / 1k chunks",
    "Anthropic stream TTFC p50 ms", "Anthropic stream added TTFC p50 ms", "Anthropic stream CPU s / 1k chunks",
    "idle RSS MB", "peak RSS MB", "cold start to first 200 s",
)
SCENARIOS = ("chat", "chat_100k", "stream", "anthropic_stream")


def _table(text: str, first_column_header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_column_header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


@pytest.mark.timeout(150)
def test_quick_benchmark_prints_its_table_without_errors(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(tmp_path)],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]

    scenarios = _table(out, "scenario")
    labels = [row[0] for row in scenarios]
    for name in ROWS:
        assert any(label.startswith(name) for label in labels), f"row {name!r} missing from:\n{out}"
    for row in scenarios:
        assert len(row) == 10, row
        assert row[2] not in ("", "—", "skipped"), f"no proxy value in {row}"
        assert row[4] not in ("", "—", "skipped"), f"no ceiling value in {row}"

    runs = _table(out, "run")
    targets = {row[0].split(" / ")[0] for row in runs}
    assert {"direct", "proxy", "ceiling (Starlette + aiohttp)"} <= targets
    for target in ("direct", "proxy", "ceiling (Starlette + aiohttp)"):
        assert {row[0].split(" / ")[1] for row in runs if row[0].startswith(target + " /")} == set(SCENARIOS)
    for row in runs:
        answers, ok, non_2xx, wrong, socket_errors = row[3:8]
        assert int(answers) > 0 and int(ok) == int(answers), row
        assert (non_2xx, wrong, socket_errors) == ("0", "0", "0"), row

    assert "⚠" not in out
    assert "errors: 0 in timed runs" in out
    assert "machine:" in out and "packages:" in out
    assert (tmp_path / "table.md").exists() and (tmp_path / "results.json").exists()
