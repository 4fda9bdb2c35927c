"""Shared fixtures: one fake upstream per test session, proxies built from config text."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `relay`, `routes` and `app` from the checkout

import servers  # noqa: E402

# Property tests (the fuzz): the same examples on every run, no example database, no deadline
# (a busy CI machine is slow, not wrong). `HYPOTHESIS_PROFILE=deep` runs twenty times as many.
_FUZZ = dict(deadline=None, derandomize=True, database=None, print_blob=False,
             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=50, **_FUZZ)
settings.register_profile("deep", max_examples=1000, **_FUZZ)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def upstream(tmp_path_factory):
    server = servers.fake_upstream(tmp_path_factory.mktemp("upstream"))
    yield server
    server.stop()


class Received:
    """What the fake upstream received, for assertions on the proxy's outgoing requests."""

    def __init__(self, url: str, http: httpx.Client) -> None:
        self.url = url
        self._http = http

    def all(self) -> list[dict]:
        return self._http.get(f"{self.url}/_received").json()

    def last(self) -> dict:
        records = self.all()
        assert records, "the upstream received nothing"
        return records[-1]

    def events(self) -> list[dict]:
        return self._http.get(f"{self.url}/_events").json()

    def wait_event(self, kind: str, timeout: float = 5.0) -> dict:
        """The first upstream event of `kind` ("disconnected", "completed"), waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events() if e["kind"] == kind]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"the upstream saw no {kind!r} event within {timeout} s")
            time.sleep(0.02)

    def clear(self) -> None:
        self._http.delete(f"{self.url}/_received").raise_for_status()


@pytest.fixture(scope="session")
def control():
    """One client for the fake upstream's control endpoints (a client per call costs ~50 ms)."""
    with httpx.Client(timeout=10) as http:
        yield http


@pytest.fixture()
def received(upstream, control) -> Received:
    recorder = Received(upstream.url, control)
    recorder.clear()
    return recorder
