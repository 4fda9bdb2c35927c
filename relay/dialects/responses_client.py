"""OpenAI Responses client (Codex CLI, `client.responses`) -> a chat-completions request, and a
chat.completion answer -> a Responses `response` object. The streamed answer is in
`responses_client_stream.py`.

Chat completions is the internal form: the chat request made here goes to an OpenAI-style chat
upstream as it is, or on through `anthropic_channel` / `gemini_channel`, and their answers come
back here as chat answers. So this module knows nothing about the channel behind it.

Tools. `function` tools keep their names; functions inside a `namespace` are named
`<namespace>__<name>`. A `custom` tool (free-form input, e.g. Codex's apply_patch) becomes a
function taking one string, `{"input": "..."}`, with its grammar (if any) in the description, and
its calls come back as `custom_tool_call` items. Codex's `local_shell` becomes the function
`local_shell` whose arguments are the exec action, and comes back as `local_shell_call` items.
Every tool the chat upstream cannot run (web search, file search, computer use, code
interpreter, image generation, MCP, hosted shell, apply_patch...) is a 400 naming it.

State. This proxy keeps no items: `item_reference` is a 400, and `previous_response_id` must be
expanded into `input` before `request` is called (it is only echoed). Reasoning items give their
summary text to the next assistant turn as `reasoning_content`; another vendor's
`encrypted_content` is dropped, while the one this proxy wrote (signed Claude thinking, see
`common.pack_thinking`) comes back as `thinking_blocks`, so Claude keeps thinking across a tool
loop. Not sent upstream: metadata, store, include, truncation, service_tier, prompt_cache_key,
text.verbosity, max_tool_calls, context_management, stream_options. Refused: background mode,
`conversation`, stored `prompt`s, `top_logprobs` (answers carry no log probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.usage import Usage, read_openai, responses_usage

from .common import (
    CANNOT,
    NO_EFFORT,
    REASONING_MODEL,
    as_dict,
    as_list,
    as_str,
    chat_message,
    new_id,
    now,
    pack_thinking,
    parse_arguments,
    refuse,
)
from .responses_client_input import CUSTOM_INPUT, LOCAL_SHELL, arguments, chat_name, messages

_CUSTOM_PARAMETERS = {
    "type": "object",
    "properties": {CUSTOM_INPUT: {"type": "string", "description": "The tool's whole input, as free-form text."}},
    "required": [CUSTOM_INPUT],
    "additionalProperties": False,
}
_LOCAL_SHELL_FUNCTION = {
    "name": LOCAL_SHELL,
    "description": "Runs a command on the user's machine and returns its output.",
    "parameters": {
        "type": "object",
        "properties": {
            "command": {"type": "array", "items": {"type": "string"}, "description": "The program and its arguments."},
            "working_directory": {"type": "string", "description": "The directory to run it in."},
            "timeout_ms": {"type": "integer", "description": "How long it may run, in milliseconds."},
        },
        "required": ["command"],
    },
}


@dataclass(frozen=True, slots=True)
class ClientTool:
    """What a chat function stands for on the client's side."""

    kind: str  # "function" | "custom" | "local_shell"
    name: str
    namespace: str | None = None


_LOCAL_SHELL_TOOL = ClientTool(LOCAL_SHELL, LOCAL_SHELL)


def request(body: dict, model: str) -> dict:
    """A Responses request -> a chat-completions request for `model`."""
    name = model.lower()
    for field, what in (("background", "background mode"), ("conversation", "stored conversations"),
                        ("prompt", "stored prompts")):
        if body.get(field):
            raise refuse(field, f"{what} {CANNOT}")
    if isinstance(body.get("top_logprobs"), int) and body["top_logprobs"] > 0:
        raise refuse("top_logprobs", f"log probabilities {CANNOT}")
    out: dict = {"model": model, "messages": messages(body, name)}

    limit = body.get("max_output_tokens")
    if isinstance(limit, int):
        out["max_completion_tokens" if REASONING_MODEL.search(name) else "max_tokens"] = limit
    if not REASONING_MODEL.search(name):
        for key in ("temperature", "top_p"):
            if isinstance(body.get(key), (int, float)):
                out[key] = body[key]
    effort = as_dict(body.get("reasoning")).get("effort")
    if isinstance(effort, str) and not NO_EFFORT.search(name):
        out["reasoning_effort"] = effort
    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str) and user:
        out["user"] = user
    if fmt := _response_format(as_dict(body.get("text")).get("format")):
        out["response_format"] = fmt
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # response.completed carries usage

    tools = _tools(body.get("tools"))
    choice, allowed = _tool_choice(body.get("tool_choice"), tools)
    if allowed is not None:
        tools = [tool for tool in tools if tool[0] in allowed]
    if tools:
        out["tools"] = [chat_tool for _, _, chat_tool in tools]
        if choice is not None:
            out["tool_choice"] = choice
        if isinstance(body.get("parallel_tool_calls"), bool):
            out["parallel_tool_calls"] = body["parallel_tool_calls"]
    return out


def tool_map(body: dict) -> dict[str, ClientTool]:
    """Chat function name -> the client's tool, for reading the calls in an answer (the names
    only: `request` has checked the tools and built their chat forms already)."""
    out: dict[str, ClientTool] = {}
    tools = body.get("tools")
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        if isinstance(tool, dict) and tool.get("type") == "namespace":
            for j, inner in enumerate(as_list(tool.get("tools"))):
                function, client = _named(inner, f"tools[{i}].tools[{j}]", tool.get("name"))
                out[function] = client
        else:
            function, client = _named(tool, f"tools[{i}]", None)
            out[function] = client
    return out


def _tools(tools: object) -> list[tuple[str, ClientTool, dict]]:
    """The client's tools as (chat function name, client tool, chat tool)."""
    out: list[tuple[str, ClientTool, dict]] = []
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        if isinstance(tool, dict) and tool.get("type") == "namespace":
            for j, inner in enumerate(as_list(tool.get("tools"))):
                out.append(_tool(inner, f"tools[{i}].tools[{j}]", tool.get("name")))
        else:
            out.append(_tool(tool, f"tools[{i}]", None))
    names = [name for name, _, _ in out]
    if len(set(names)) < len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise refuse("tools", f"two tools are named {twice!r}")
    return out


def _named(tool: object, where: str, namespace: object) -> tuple[str, ClientTool]:
    """A client tool's chat function name and what it stands for; a 400 for one no chat channel runs."""
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind == LOCAL_SHELL and namespace is None:
        return LOCAL_SHELL, _LOCAL_SHELL_TOOL
    if kind not in ("function", "custom"):
        raise refuse(f"{where}.type", f"the {kind!r} tool runs only at OpenAI and {CANNOT}")
    name = tool.get("name")  # type: ignore[union-attr]
    if not isinstance(name, str) or not name:
        raise refuse(f"{where}.name", "a tool needs a name")
    ns = namespace if isinstance(namespace, str) and namespace else None
    return chat_name(ns, name), ClientTool(kind, name, ns)


def _tool(tool: object, where: str, namespace: object) -> tuple[str, ClientTool, dict]:
    function, client = _named(tool, where, namespace)
    if client is _LOCAL_SHELL_TOOL:
        return function, client, {"type": "function", "function": _LOCAL_SHELL_FUNCTION}
    kind = client.kind
    description = as_str(tool.get("description"))  # type: ignore[union-attr]
    if kind == "custom":
        fmt = as_dict(tool.get("format"))  # type: ignore[union-attr]
        if fmt.get("type") == "grammar":
            description += f"\n\nThe input must follow this {fmt.get('syntax')} grammar:\n{fmt.get('definition')}"
        fn: dict = {"name": function, "parameters": _CUSTOM_PARAMETERS}
    else:
        fn = {"name": function, "parameters": as_dict(tool.get("parameters")) or {"type": "object", "properties": {}}}  # type: ignore[union-attr]
        if isinstance(tool.get("strict"), bool):  # type: ignore[union-attr]
            fn["strict"] = tool["strict"]  # type: ignore[index]
    if description.strip():
        fn["description"] = description.strip()
    return function, client, {"type": "function", "function": fn}


def _tool_choice(choice: object, tools: list) -> tuple[object, set[str] | None]:
    """(chat tool_choice, the chat names an allowed_tools choice keeps, or None for all)."""
    if choice is None or choice in ("auto", "none", "required"):
        return choice, None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("function", "custom"):
        if not as_str(choice.get("name")):  # type: ignore[union-attr]
            raise refuse("tool_choice", f"a {kind} tool_choice needs a name")
        wanted = {(kind, choice["name"])}  # type: ignore[index]
    elif kind == "allowed_tools":
        # Cut the tool list down rather than send chat's allowed_tools, which few upstreams take.
        wanted = {(as_str(t.get("type")), as_str(t.get("name")) or None)  # type: ignore[union-attr]
                  for t in as_list(choice.get("tools")) if isinstance(t, dict)}  # type: ignore[union-attr]
    else:
        raise refuse("tool_choice", f"{kind!r} {CANNOT}")
    # An entry names a tool by its name or its chat name; a nameless one (local_shell) by its type.
    names = {name for name, tool, _ in tools if {(tool.kind, tool.name), (tool.kind, name), (tool.kind, None)} & wanted}
    if not names:
        raise refuse("tool_choice", "names no tool in `tools`")
    if kind == "allowed_tools":
        mode = choice.get("mode")  # type: ignore[union-attr]
        return ("required" if mode == "required" else "auto"), names
    return {"type": "function", "function": {"name": min(names)}}, None  # one, unless namespaces share a name


def _response_format(fmt: object) -> dict | None:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        return None
    schema: dict = {"name": fmt.get("name") or "output", "schema": fmt.get("schema") or {}}  # type: ignore[union-attr]
    for key in ("description", "strict"):
        if fmt.get(key) is not None:  # type: ignore[union-attr]
            schema[key] = fmt[key]  # type: ignore[index]
    return {"type": "json_schema", "json_schema": schema}


# ---- the answer ---------------------------------------------------------------------------

def response(answer: dict, model: str, body: dict) -> dict:
    """A chat.completion answer -> a Responses `response`; echoed fields come from `body`."""
    choice, message, reasoning, content = chat_message(answer)
    status, incomplete = outcome(choice.get("finish_reason"))
    output: list[dict] = []
    packed = pack_thinking(message.get("thinking_blocks"))
    if reasoning or packed:
        output.append(reasoning_item(new_id("rs_"), reasoning, packed))
    parts = [output_text(content)] if content else []
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        output.append(message_item(new_id("msg_"), parts, "incomplete" if incomplete else "completed"))
    names = tool_map(body)
    for call in as_list(message.get("tool_calls")):
        fn = as_dict(as_dict(call).get("function"))
        call_id = as_str(as_dict(call).get("id")) or new_id("call_")
        output.append(call_item(call_id, as_str(fn.get("name")), arguments(fn.get("arguments")), names))
    created = answer.get("created") if isinstance(answer.get("created"), int) else now()
    return envelope(new_id("resp_"), created, model, body, output, status, usage(answer.get("usage")), incomplete)


def outcome(finish_reason: object) -> tuple[str, dict | None]:
    """(status, incomplete_details) for a chat finish_reason."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def usage(chat: dict | None) -> dict:
    """Chat usage -> Responses usage (through the one normaliser: relay.usage)."""
    return responses_usage(read_openai(as_dict(chat)) or Usage())


def output_text(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def reasoning_item(item_id: str, text: str, packed: str | None) -> dict:
    item: dict = {"id": item_id, "type": "reasoning", "summary": []}
    if text:
        item["summary"] = [{"type": "summary_text", "text": text}]
    if packed:
        item["encrypted_content"] = packed
    return item


def message_item(item_id: str, parts: list[dict], status: str) -> dict:
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": parts}


def call_item(call_id: str, function: str, args: str, names: dict[str, ClientTool], status: str = "completed",
              item_id: str | None = None, value: dict | None = None) -> dict:
    """The output item for one chat tool call to `function` (a new item id unless given);
    `value`: `args` already parsed, where the caller has it."""
    tool = names.get(function) or ClientTool("function", function)
    if tool.kind == "custom":
        item = {"id": item_id or new_id("ctc_"), "type": "custom_tool_call", "call_id": call_id, "name": tool.name,
                "input": custom_input(args, value)}
    elif tool.kind == LOCAL_SHELL:
        return {"id": item_id or new_id("lsh_"), "type": "local_shell_call", "call_id": call_id, "status": status,
                "action": shell_action(args, value)}
    else:
        item = {"id": item_id or new_id("fc_"), "type": "function_call", "call_id": call_id, "name": tool.name,
                "arguments": args, "status": status}
    if tool.namespace:
        item["namespace"] = tool.namespace
    return item


def custom_input(args: str, value: dict | None = None) -> str:
    """The free-form input inside a custom tool's `{"input": ...}` arguments; the raw text when the
    model wrote something else, so the tool sees what the model meant."""
    value = parse_arguments(args) if value is None else value
    if not value:
        return ""
    strings = [v for v in value.values() if isinstance(v, str)]
    if isinstance(value.get(CUSTOM_INPUT), str):
        return value[CUSTOM_INPUT]
    return strings[0] if len(value) == 1 and strings else args


def shell_action(arguments_text: str, value: dict | None = None) -> dict:
    args = parse_arguments(arguments_text) if value is None else value
    command = args.get("command")
    if isinstance(command, str):
        command = ["bash", "-lc", command]  # a model that wrote one command line, as Codex runs them
    action: dict = {"type": "exec", "command": [str(c) for c in command] if isinstance(command, list) else [], "env": {}}
    if isinstance(args.get("working_directory"), str):
        action["working_directory"] = args["working_directory"]
    if isinstance(args.get("timeout_ms"), int):
        action["timeout_ms"] = args["timeout_ms"]
    return action


def envelope(response_id: str, created: int, model: str, body: dict, output: list[dict], status: str,
             usage: dict | None = None, incomplete: dict | None = None) -> dict:
    """A `response` object: what the answer made, and what the client asked for, echoed."""
    text = body.get("text") if isinstance(body.get("text"), dict) else {}
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
    tools = [_echo_tool(tool) for tool in as_list(body.get("tools")) if isinstance(tool, dict)]
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "metadata": body.get("metadata") or {},
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": body.get("service_tier") or "default",
        "store": body.get("store") is not False,
        "temperature": body.get("temperature"),
        "text": {**text, "format": text.get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": tools,
        "top_logprobs": body.get("top_logprobs") or 0,
        "top_p": body.get("top_p"),
        "truncation": body.get("truncation") or "disabled",
        "usage": usage,
        "user": body.get("user"),
    }


def _echo_tool(tool: dict) -> dict:
    if tool.get("type") == "function":
        return {"parameters": None, "strict": None, **tool}
    return tool
