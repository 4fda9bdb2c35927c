"""Portkey's AI gateway (Node), the issue's reference, on this machine: an optional column.

Install it next to the bench with npm (Node 18+): `npm install --prefix bench
@portkey-ai/gateway@1.15.2` (or point `PORTKEY_GATEWAY` at its `build/start-server.js`). It runs
as one Node process, told per request which provider to call and where (`x-portkey-provider`,
`x-portkey-custom-host`): the fake upstream, with the channel's own key, like direct and nginx.

Only the non-stream scenarios run through it. Its streams fail here: version 1.15.2 on Node 20
answers every OpenAI and Anthropic stream from the fake upstream with a 500 ("TypeError:
immutable" when it adds its headers to the upstream's response).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from scenarios import Scenario

BENCH = Path(__file__).resolve().parent
NODE = shutil.which("node")
_INSTALLED = BENCH / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
GATEWAY = os.environ.get("PORTKEY_GATEWAY") or (str(_INSTALLED) if _INSTALLED.exists() else None)
AVAILABLE = bool(NODE and GATEWAY and Path(GATEWAY).exists())
SCENARIOS = frozenset({"chat", "chat_100k"})


def argv(port: int) -> list[str]:
    return [NODE, GATEWAY, f"--port={port}", "--headless"]


def env() -> dict[str, str]:
    return {**os.environ, "NODE_ENV": "production"}  # no log UI, no start-up banner


def headers(sc: Scenario, upstream_port: int) -> dict[str, str]:
    """What Portkey needs on top of the client's own headers to reach the fake upstream."""
    return {"x-portkey-provider": "anthropic" if sc.dialect == "anthropic" else "openai",
            "x-portkey-custom-host": f"http://127.0.0.1:{upstream_port}/v1"}


def version() -> str | None:
    if not AVAILABLE:
        return None
    package = Path(GATEWAY).parent.parent / "package.json"
    try:
        return json.loads(package.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "?"
