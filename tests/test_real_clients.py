"""tests/real_client_output.py (and real_clients.py's proxy config), on lines the pinned clients printed.

The script itself runs the clients by hand; these tests keep its reading of their output and its
pass/fail rule honest without installing them.
"""

from __future__ import annotations

import json
import tomllib

import pytest

from real_client_output import (
    Outcome, claude_outcome, codex_outcome, dns_query_name, gemini_outcome, network_seen, verdict,
)
from real_clients import CHANNELS, proxy_config

MARKER = "aurax-tool-abc123"
CODEX = "\n".join(json.dumps(e) for e in [
    {"type": "thread.started", "thread_id": "t1"},
    {"type": "item.completed", "item": {"id": "item_0", "type": "error",
                                        "message": "Model metadata for `gpt-5-cli-abc123` not found."}},
    {"type": "turn.started"},
    {"type": "item.started", "item": {"id": "item_1", "type": "command_execution", "command": "", "status": "x"}},
    {"type": "item.completed", "item": {"id": "item_1", "type": "command_execution",
                                        "command": f"/bin/bash -lc 'echo {MARKER}'",
                                        "aggregated_output": f"{MARKER}\n", "exit_code": 0, "status": "completed"}},
    {"type": "item.completed", "item": {"id": "item_2", "type": "agent_message",
                                        "text": f"tool result: Chunk ID: 5da52a\nOutput:\n{MARKER}\n"}},
    {"type": "turn.completed", "usage": {"input_tokens": 20}},
])
GEMINI = "\n".join(json.dumps(e) for e in [
    {"type": "init", "session_id": "s", "model": "gemini-2.5-cli-abc123"},
    {"type": "message", "role": "user", "content": "run the tool"},
    {"type": "tool_use", "tool_name": "run_shell_command", "tool_id": "t",
     "parameters": {"command": f"echo {MARKER}"}},
    {"type": "tool_result", "tool_id": "t", "status": "success", "output": MARKER},
    {"type": "message", "role": "assistant", "content": 'tool result: {"output":"Output: ', "delta": True},
    {"type": "message", "role": "assistant", "content": f'{MARKER}"}}', "delta": True},
    {"type": "result", "status": "success", "stats": {"tool_calls": 1}},
])
CLAUDE = "\n".join(json.dumps(e) for e in [
    {"type": "system", "subtype": "init", "tools": ["Task", "Bash"], "mcp_servers": []},
    {"type": "assistant", "message": {"content": [{"type": "thinking", "thinking": "hm", "signature": "s"}]}},
    {"type": "assistant", "message": {"content": [{"type": "tool_use", "id": "toolu_2", "name": "Bash",
                                                   "input": {"command": f"echo {MARKER}"}}]}},
    {"type": "user", "message": {"role": "user", "content": [
        {"tool_use_id": "toolu_2", "type": "tool_result", "content": MARKER, "is_error": False}]}},
    {"type": "assistant", "message": {"content": [{"type": "text", "text": f"tool result: {MARKER}"}]}},
    {"type": "result", "subtype": "success", "is_error": False, "result": f"tool result: {MARKER}"},
])


@pytest.mark.parametrize("read, stdout, answer", [
    (codex_outcome, CODEX, f"tool result: Chunk ID: 5da52a\nOutput:\n{MARKER}\n"),
    (gemini_outcome, GEMINI, f'tool result: {{"output":"Output: {MARKER}"}}'),
    (claude_outcome, CLAUDE, f"tool result: {MARKER}"),
])
def test_outcomes_read_the_round_trip(read, stdout, answer):
    outcome = read("a line that is not JSON\n" + stdout)
    assert f"echo {MARKER}" in outcome.command and MARKER in outcome.output
    assert outcome.answer == answer and outcome.error == ""
    assert verdict(0, outcome, MARKER, []) is None


def test_outcomes_read_errors():
    codex = codex_outcome(json.dumps({"type": "turn.failed", "error": {"message": "The model 'm' is not available"}}))
    gemini = gemini_outcome(json.dumps({"type": "result", "status": "error",
                                        "error": {"type": "unknown", "message": "[API Error: 404]"}}))
    claude = claude_outcome(json.dumps({"type": "result", "subtype": "success", "is_error": True,
                                        "result": "There's an issue with the selected model"}))
    assert codex.error == "The model 'm' is not available"
    assert json.loads(gemini.error) == {"type": "unknown", "message": "[API Error: 404]"}
    assert claude.error == "There's an issue with the selected model"
    assert verdict(1, codex, MARKER, None) == "exit status 1: The model 'm' is not available"


def test_verdict_needs_the_output_quoted_not_the_command():
    ran = Outcome(command=f"echo {MARKER}", output=MARKER, answer=f"I ran echo {MARKER}")
    assert verdict(0, ran, MARKER, None) == "the final answer does not quote the tool's output"
    assert verdict(None, ran, MARKER, None) == "timed out"
    assert verdict(0, Outcome(command="ls", output=MARKER, answer=MARKER), MARKER, None) == (
        "the client did not run the scripted shell command")
    assert verdict(0, Outcome(command=f"echo {MARKER}", output="", answer=MARKER), MARKER, None) == (
        "the tool's output lacks the marker")
    quoted = Outcome(command=f"echo {MARKER}", output=MARKER, answer=f"tool result: {MARKER}")
    assert verdict(0, quoted, MARKER, ["github.com"]) == "network beyond loopback: github.com"


def test_network_seen_from_strace_lines():
    query = b"\x15\xf2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03api\x06github\x03com\x00\x00\x01\x00\x01"
    hexed = "".join(f"\\x{b:02x}" for b in query)
    loopback = "".join(f"\\x{b:02x}" for b in b"127.0.0.1")
    trace = "\n".join([
        f'101 sendto(38, "{hexed}", 32, MSG_NOSIGNAL, {{sa_family=AF_INET, sin_port=htons(53), '
        f'sin_addr=inet_addr("\\x31\\x30\\x2e\\x30\\x2e\\x30\\x2e\\x35\\x33")}}, 16) = 32',
        f'102 connect(7, {{sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr("{loopback}")}}, 16) = 0',
        '103 connect(8, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "2606:4700::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 ENETUNREACH',
        '104 connect(9, {sa_family=AF_INET6, sin6_port=htons(8000), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0',
    ])
    assert network_seen(trace) == ["2606:4700::1:443", "api.github.com"]
    assert dns_query_name(b"POST /v1/responses HTTP/1.1\r\n") is None


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_proxy_config_has_one_channel_for_the_model_family(channel):
    config = tomllib.loads(proxy_config(channel, "http://127.0.0.1:9"))
    [entry] = config["channels"]
    assert entry["models"] == [f"{CHANNELS[channel][1]}-*"] and entry["base_url"].startswith("http://127.0.0.1:9")
    assert entry.get("responses", True) is (channel != "chat")
    assert config["tokens"][0]["key"].startswith("sk-ax-")
