"""The fake upstream's OpenAI Responses answers: a message (after a reasoning summary when one is
asked for), or function calls, whole or as events.

Pure functions over the request body; shapes follow `openai.types.responses` (Response,
ResponseOutputMessage, ResponseFunctionToolCall and the stream events). A request whose input ends
with `function_call_output` items (after the last user message) is answered with text quoting
them; otherwise offered function tools are called as `fake_script.tool_calls` decides.
"""

from __future__ import annotations

import orjson

from fake_script import tool_calls
from fake_wire import CREATED, echo, fragments, json_text, pieces, text_of


def _output_text(output: object) -> str:
    # A function_call_output's `output` is a string or a list of input_text (and image/file) items.
    return output if isinstance(output, str) else text_of(output, ("input_text", "output_text", "text"))


def tool_outputs(items: object) -> list[str]:
    """The function_call_output texts sent since the last user message."""
    if not isinstance(items, list):
        return []
    out: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("role") == "user":
            out = []
        elif item.get("type") == "function_call_output":
            out.append(_output_text(item.get("output")))
    return out


def answer_text(body: dict) -> str:
    """What the fake says: the tool outputs it received, JSON for a `text.format` schema, or an
    echo of the last user message."""
    items = body.get("input")
    outputs = tool_outputs(items)
    if outputs:
        return "tool result: " + " ".join(outputs)
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        return json_text(fmt.get("schema") or {})
    if isinstance(items, str):
        return echo(items)
    user = next((m for m in reversed(items or []) if isinstance(m, dict) and m.get("role") == "user"), {})
    return echo(text_of(user.get("content"), ("input_text", "text")))


def reasoning_item(body: dict, rid: str, text: str) -> list[dict]:
    """The reasoning item a reasoning summary was asked for (`reasoning.summary`), else none."""
    if not (body.get("reasoning") or {}).get("summary"):
        return []
    return [{"id": f"rs_{rid}", "type": "reasoning", "status": "completed",
             "summary": [{"type": "summary_text", "text": f"thinking: {text}"}]}]


def function_calls(body: dict, model: str, n: int) -> list[dict]:
    """function_call output items for the offered function tools (none once results came back)."""
    tools = [(t.get("name"), t.get("parameters")) for t in body.get("tools") or []
             if isinstance(t, dict) and t.get("type") == "function"]
    choice = body.get("tool_choice")
    if not tools or choice == "none" or tool_outputs(body.get("input")):
        return []
    chosen = choice.get("name") if isinstance(choice, dict) else None
    return [{"id": f"fc_{n}_{i}", "type": "function_call", "status": "completed", "call_id": f"call_{n}_{i}",
             "name": name, "arguments": orjson.dumps(args).decode()}
            for i, (name, args) in enumerate(tool_calls(tools, chosen, model))]


def response_object(body: dict, model: str, rid: str, status: str, output: list, usage: dict | None,
                    finish: str | None) -> dict:
    """The Response object in state `status` (in_progress, completed or incomplete)."""
    return {"id": rid, "object": "response", "created_at": CREATED, "status": status, "background": False,
            "error": None, "incomplete_details": {"reason": finish} if status == "incomplete" else None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": model, "output": output, "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
            "store": body.get("store", True), "temperature": 1.0, "text": {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [], "top_p": 1.0,
            "truncation": "disabled", "usage": usage, "user": None, "metadata": {}}


def message_item(mid: str, text: str, status: str) -> dict:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"id": mid, "type": "message", "status": status, "role": "assistant", "content": [part]}


def _message_events(index: int, item: dict, chunks: int) -> list[tuple[str, dict]]:
    part = item["content"][0]
    where = {"item_id": item["id"], "output_index": index, "content_index": 0}
    return [
        ("response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress",
                                                                        "content": []}}),
        ("response.content_part.added", {**where, "part": {**part, "text": ""}}),
        *[("response.output_text.delta", {**where, "delta": p, "logprobs": []}) for p in pieces(part["text"], chunks)],
        ("response.output_text.done", {**where, "text": part["text"], "logprobs": []}),
        ("response.content_part.done", {**where, "part": part}),
        ("response.output_item.done", {"output_index": index, "item": item}),
    ]


def _call_events(index: int, item: dict) -> list[tuple[str, dict]]:
    where = {"item_id": item["id"], "output_index": index}
    return [
        ("response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress",
                                                                        "arguments": ""}}),
        *[("response.function_call_arguments.delta", {**where, "delta": p}) for p in fragments(item["arguments"])],
        ("response.function_call_arguments.done", {**where, "arguments": item["arguments"]}),
        ("response.output_item.done", {"output_index": index, "item": item}),
    ]


def _reasoning_events(index: int, item: dict, chunks: int) -> list[tuple[str, dict]]:
    part = item["summary"][0]
    where = {"item_id": item["id"], "output_index": index, "summary_index": 0}
    return [
        ("response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress",
                                                                        "summary": []}}),
        ("response.reasoning_summary_part.added", {**where, "part": {**part, "text": ""}}),
        *[("response.reasoning_summary_text.delta", {**where, "delta": p}) for p in pieces(part["text"], chunks)],
        ("response.reasoning_summary_text.done", {**where, "text": part["text"]}),
        ("response.reasoning_summary_part.done", {**where, "part": part}),
        ("response.output_item.done", {"output_index": index, "item": item}),
    ]


_ITEM_EVENTS = {"function_call": lambda index, item, chunks: _call_events(index, item),
                "reasoning": _reasoning_events, "message": _message_events}


def stream_events(started: dict, final: dict, chunks: int) -> list[tuple[str, dict]]:
    """The (event type, data) sequence from response.created to the final state, without sequence numbers."""
    events = [("response.created", {"response": started}), ("response.in_progress", {"response": started})]
    for index, item in enumerate(final["output"]):
        events += _ITEM_EVENTS[item["type"]](index, item, chunks)
    return events + [(f"response.{final['status']}", {"response": final})]
