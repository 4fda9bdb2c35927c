"""Shared fixtures: one fake upstream per test session, proxies built from config text."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `relay`, `routes` and `app` from the checkout

import servers  # noqa: E402


@pytest.fixture(scope="session")
def upstream(tmp_path_factory):
    server = servers.fake_upstream(tmp_path_factory.mktemp("upstream"))
    yield server
    server.stop()


class Received:
    """What the fake upstream received, for assertions on the proxy's outgoing requests."""

    def __init__(self, url: str) -> None:
        self.url = url

    def all(self) -> list[dict]:
        return httpx.get(f"{self.url}/_received", timeout=10).json()

    def last(self) -> dict:
        records = self.all()
        assert records, "the upstream received nothing"
        return records[-1]

    def events(self) -> list[dict]:
        return httpx.get(f"{self.url}/_events", timeout=10).json()

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
        httpx.delete(f"{self.url}/_received", timeout=10).raise_for_status()


@pytest.fixture()
def received(upstream) -> Received:
    recorder = Received(upstream.url)
    recorder.clear()
    return recorder
