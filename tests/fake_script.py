"""Which tool calls the fake upstream answers with, and the scripted round trip real CLI clients play.

A model named `<anything>-cli-<nonce>` (lower-case letters and digits) turns on the scripted mode
that `tests/real_clients.py` relies on, in every dialect the fake speaks:

- turn 1: the request offers the client's shell tool (Codex `shell` / `shell_command` /
  `exec_command` / `local_shell`, Claude Code `Bash`, Gemini CLI `run_shell_command`); the fake
  calls it with `echo aurax-tool-<nonce>`, the arguments shaped by the tool's JSON schema;
- turn 2: the request carries the tool's result; the fake's usual answer to a tool result quotes it.

A scripted request that offers no shell tool (a client's side call: a title, a summary) gets the
usual text answer. Other models keep the fake's general behaviour: call the first (or the chosen)
tool with arguments filled from its schema, or every tool for a `*parallel*` model.
"""

from __future__ import annotations

import re

from fake_wire import fill_schema, pick_calls

SCRIPTED = re.compile(r".+-cli-([a-z0-9]+)")
SHELL_TOOLS = ("shell", "shell_command", "exec_command", "local_shell", "Bash", "run_shell_command")
# Names the shell tools give their command: a string, or an argv array.
COMMAND_FIELDS = ("command", "cmd")


def scripted_command(model: str | None) -> str | None:
    """The shell command a scripted model runs, or None when the model is not scripted."""
    match = SCRIPTED.fullmatch(model or "")
    return f"echo aurax-tool-{match.group(1)}" if match else None


def shell_arguments(schema: object, command: str) -> dict | None:
    """Arguments for a shell tool: its required fields filled, `command` as a string or an argv."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    field = next((f for f in COMMAND_FIELDS if isinstance(properties, dict) and f in properties), None)
    if field is None:
        return None
    args = fill_schema(schema)
    kind = properties[field].get("type") if isinstance(properties[field], dict) else None
    args[field] = ["bash", "-lc", command] if str(kind).lower() == "array" else command
    return args


def tool_calls(tools: list[tuple[str, object]], chosen: str | None, model: str) -> list[tuple[str, dict]]:
    """(name, arguments) of the calls to make for the offered (name, JSON schema) tools."""
    command = scripted_command(model)
    if command is None:
        return [(name, fill_schema(schema or {"type": "object"}))
                for name, schema in pick_calls(tools, chosen, "parallel" in model)]
    for name, schema in tools:
        if name in SHELL_TOOLS:
            args = shell_arguments(schema, command)
            if args is not None:
                return [(name, args)]
    return []
