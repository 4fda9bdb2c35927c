"""What a real CLI client's own output says happened, and whether that was a real round trip.

Pure functions for tests/real_clients.py: reading the JSON event lines each pinned client prints
(`codex exec --json`, `gemini -o stream-json`, `claude -p --output-format stream-json`), reading
the network calls strace saw, and the pass/fail rule.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# ---- the clients' output ----------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """What the client's own JSON output says: the command it ran, what that printed, its answer."""

    command: str = ""
    output: str = ""
    answer: str = ""
    error: str = ""


def json_lines(stdout: str) -> list[dict]:
    events = []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def codex_outcome(stdout: str) -> Outcome:
    """`codex exec --json`: thread/turn/item events."""
    found: dict[str, str] = {}
    for event in json_lines(stdout):
        item = event.get("item") or {}
        if event.get("type") == "item.completed" and item.get("type") == "command_execution":
            found.update(command=item.get("command") or "", output=item.get("aggregated_output") or "")
        elif event.get("type") == "item.completed" and item.get("type") == "agent_message":
            found["answer"] = item.get("text") or ""
        elif event.get("type") in ("error", "turn.failed"):
            found["error"] = event.get("message") or (event.get("error") or {}).get("message") or ""
    return Outcome(**found)


def gemini_outcome(stdout: str) -> Outcome:
    """`gemini -o stream-json`: init, message, tool_use, tool_result and result events."""
    found: dict[str, str] = {"answer": ""}
    for event in json_lines(stdout):
        kind = event.get("type")
        if kind == "tool_use" and event.get("tool_name") == "run_shell_command":
            found["command"] = (event.get("parameters") or {}).get("command") or ""
        elif kind == "tool_result":
            found["output"] = str(event.get("output") or (event.get("error") or {}).get("message") or "")
        elif kind == "message" and event.get("role") == "assistant":
            found["answer"] += event.get("content") or ""
        elif kind == "error" or (kind == "result" and event.get("status") != "success"):
            found["error"] = json.dumps(event.get("error") or event.get("message") or event)
    return Outcome(**found)


def claude_outcome(stdout: str) -> Outcome:
    """`claude -p --output-format stream-json --verbose`: the conversation's messages, then a result."""
    found: dict[str, str] = {}
    for event in json_lines(stdout):
        content = (event.get("message") or {}).get("content")
        for block in content if isinstance(content, list) else []:
            if block.get("type") == "tool_use" and block.get("name") == "Bash":
                found["command"] = (block.get("input") or {}).get("command") or ""
            elif block.get("type") == "tool_result":
                result = block.get("content")
                found["output"] = result if isinstance(result, str) else json.dumps(result)
        if event.get("type") == "result":
            found["answer"] = event.get("result") or ""
            if event.get("is_error"):
                found["error"] = found["answer"] or event.get("subtype") or "error"
    return Outcome(**found)


# ---- the network -------------------------------------------------------------------------------

TRACE = ["strace", "-f", "-qq", "-xx", "-s", "512", "-e", "trace=connect,sendto,sendmmsg"]
_BUFFER = re.compile(r'"((?:\\x[0-9a-f]{2})+)"')
_ADDRESS = re.compile(r'sin6?_port=htons\((\d+)\).*?inet_(?:addr|pton)\((?:AF_INET6, )?"([^"]+)"')


def unhex(text: str) -> str:
    """A string strace printed with -xx (`\\x31\\x32...`), as text."""
    return bytes.fromhex(text.replace("\\x", "")).decode("latin-1") if text.startswith("\\x") else text


def dns_query_name(packet: bytes) -> str | None:
    """The name a DNS query packet asks for (one question, no answers), else None."""
    if len(packet) < 13 or packet[4:12] != b"\x00\x01" + b"\x00" * 6:
        return None
    labels, at = [], 12
    while at < len(packet) and packet[at]:
        labels.append(packet[at + 1:at + 1 + packet[at]].decode("ascii", "replace"))
        at += 1 + packet[at]
    return ".".join(labels) or None


def network_seen(trace: str) -> list[str]:
    """Names looked up and addresses reached other than loopback, from the lines `TRACE` writes."""
    seen = set()
    for line in trace.splitlines():
        for buffer in _BUFFER.findall(line):
            name = dns_query_name(unhex(buffer).encode("latin-1"))
            if name:
                seen.add(name)
        for port, address in _ADDRESS.findall(line):
            address = unhex(address)
            # A lookup's own packets name what was looked up; the resolver's address adds nothing.
            if port != "53" and not address.removeprefix("::ffff:").startswith("127.") and address != "::1":
                seen.add(f"{address}:{port}")
    return sorted(seen)


# ---- the rule ----------------------------------------------------------------------------------

def verdict(status: int | None, outcome: Outcome, marker: str, network: list[str] | None) -> str | None:
    """Why the run failed, or None when the round trip really happened end to end."""
    if status is None:
        return "timed out"
    if status != 0:
        return f"exit status {status}" + (f": {outcome.error}" if outcome.error else "")
    if f"echo {marker}" not in outcome.command:
        return "the client did not run the scripted shell command"
    if marker not in outcome.output:
        return "the tool's output lacks the marker"
    if not re.search(rf"(?<!echo ){re.escape(marker)}", outcome.answer):
        return "the final answer does not quote the tool's output"
    if network:
        return f"network beyond loopback: {', '.join(network)}"
    return None
