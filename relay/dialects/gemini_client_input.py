"""Gemini `contents` (and systemInstruction) -> chat-completions messages.

A model content becomes one assistant message: text, `thought` parts as reasoning_content, and
functionCalls as tool calls, with the ids and signatures described in `gemini_client.py`. A user
content becomes tool messages for its functionResponses, then one user message with the rest
(text, images, audio, documents), since chat tool messages hold text only.
"""

from __future__ import annotations

import functools
import re

from .common import CANNOT, as_list, as_str, dumps, give_reasoning, parse_data_url, refuse, unpack_thinking
from .gemini_channel import SKIP_SIGNATURE

_AUDIO = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mp3": "mp3", "audio/mpeg": "mp3"}
_GOOGLE_FILES = re.compile(r"^(gs://|https://generativelanguage\.googleapis\.com/)")


@functools.lru_cache(maxsize=256)
def _snake(camel: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", camel).lower()


def get(obj: object, camel: str) -> object:
    """A field of a Gemini object by its camelCase name, spelled either way."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(camel)
    return obj.get(_snake(camel)) if value is None else value


def text_of(content: object) -> str:
    """systemInstruction (a Content, or a plain string) -> its text."""
    if isinstance(content, str):
        return content
    parts = get(content, "parts")
    texts = [p.get("text") for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)] if isinstance(parts, list) else []
    return "\n\n".join(text for text in texts if text)


def messages(contents: object, model: str) -> list[dict]:
    """Gemini contents -> chat messages for `model` (lower case)."""
    if not isinstance(contents, list) or not contents:
        raise refuse("contents", "at least one content is required")
    out: list[dict] = []
    open_calls: list[tuple[str, str]] = []  # (chat call id, name) of the last model turn, unanswered
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        parts = get(content, "parts")
        if not isinstance(parts, list):
            raise refuse(f"{where}.parts", "must be a list of parts")
        role = get(content, "role") or "user"
        if role == "model":
            if message := _model_turn(parts, i, model):
                open_calls = [(call["id"], call["function"]["name"]) for call in message.get("tool_calls") or []]
                out.append(message)
        elif role in ("user", "function"):
            out += _user_turn(parts, where, open_calls)
        else:
            raise refuse(f"{where}.role", f"{role!r} is not a content role (user or model)")
    return out


def _model_turn(parts: list, i: int, model: str) -> dict | None:
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict] = []
    blocks: list[dict] = []
    for j, part in enumerate(parts):
        signature = get(part, "thoughtSignature")
        if (packed := unpack_thinking(signature)) is not None:
            blocks += packed
            signature = None
        call = get(part, "functionCall")
        if isinstance(call, dict):
            fn = {"name": as_str(call.get("name")), "arguments": dumps(call.get("args") or {})}
            chat_call: dict = {"id": as_str(call.get("id")) or f"call_{i}_{j}", "type": "function", "function": fn}
            if isinstance(signature, str) and signature and signature != SKIP_SIGNATURE:
                chat_call["extra_content"] = {"google": {"thought_signature": signature}}
            calls.append(chat_call)
        elif isinstance(get(part, "text"), str):
            (reasoning if get(part, "thought") else texts).append(get(part, "text"))  # type: ignore[arg-type]
        else:
            _refuse_code(part, f"contents[{i}].parts[{j}]")
    if not (texts or calls or reasoning or blocks):
        return None
    message: dict = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if blocks:
        message["thinking_blocks"] = blocks
    return give_reasoning(message, "".join(reasoning), model)


def _user_turn(parts: list, where: str, open_calls: list[tuple[str, str]]) -> list[dict]:
    """A user content -> tool messages for its functionResponses, then one user message."""
    tools: list[dict] = []
    content: list[dict] = []
    for j, part in enumerate(parts):
        here = f"{where}.parts[{j}]"
        answer = get(part, "functionResponse")
        if isinstance(answer, dict):
            text = _response_text(answer.get("response"))
            call_id = _match(open_calls, answer.get("id"), answer.get("name"))
            if call_id is None:
                content.append({"type": "text", "text": f"(result of {answer.get('name')}) {text}"})
            else:
                tools.append({"role": "tool", "tool_call_id": call_id, "content": text})
            content += [_media(inner, f"{here}.functionResponse.parts[{k}]") for k, inner in enumerate(as_list(answer.get("parts")))]
        elif get(part, "functionCall"):
            raise refuse(here, "a functionCall belongs in a model content")
        elif isinstance(get(part, "text"), str):
            if get(part, "text"):
                content.append({"type": "text", "text": get(part, "text")})
        elif get(part, "inlineData") or get(part, "fileData"):
            content.append(_media(part, here))
        else:
            _refuse_code(part, here)
    if not content:
        return tools
    if all(part["type"] == "text" for part in content):
        # Some upstreams (DeepSeek) take only string content.
        return tools + [{"role": "user", "content": "\n".join(part["text"] for part in content)}]
    return tools + [{"role": "user", "content": content}]


def _match(open_calls: list[tuple[str, str]], call_id: object, name: object) -> str | None:
    """The chat id of the unanswered call a functionResponse answers: by id, else by name."""
    for wanted, k in ((call_id, 0), (name, 1)):
        if not wanted:
            continue
        for position, call in enumerate(open_calls):
            if call[k] == wanted:
                return open_calls.pop(position)[0]
    return None


def _response_text(response: object) -> str:
    # A lone "output" string is the tool's text (as gemini_channel wraps one); anything else is JSON.
    if isinstance(response, dict) and len(response) == 1 and isinstance(response.get("output"), str):
        return response["output"]
    return dumps(response if response is not None else {})


def _media(part: object, where: str) -> dict:
    inline = get(part, "inlineData")
    if isinstance(inline, dict):
        mime, data = str(get(inline, "mimeType") or "application/octet-stream").lower(), inline.get("data")
        if mime.startswith("image/"):
            return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}
        if mime in _AUDIO:
            return {"type": "input_audio", "input_audio": {"data": data, "format": _AUDIO[mime]}}
        name = get(inline, "displayName") or "file." + mime.rsplit("/", 1)[-1]
        return {"type": "file", "file": {"filename": name, "file_data": f"data:{mime};base64,{data}"}}
    file = get(part, "fileData")
    uri = str(get(file, "fileUri") or "")
    mime = str(get(file, "mimeType") or "")
    if data := parse_data_url(uri):
        return _media({"inlineData": {"mimeType": data[0], "data": data[1]}}, where)
    if _GOOGLE_FILES.match(uri):
        raise refuse(where, f"a file stored at Google {CANNOT}; send it inline")
    if uri.startswith(("https://", "http://")) and (mime.startswith("image/") or not mime):
        return {"type": "image_url", "image_url": {"url": uri}}
    raise refuse(where, f"a {mime or 'file'} by URL {CANNOT}; send it inline")


def _refuse_code(part: object, where: str) -> None:
    for key in ("executableCode", "codeExecutionResult", "toolCall", "toolResponse"):
        if get(part, key):
            raise refuse(where, f"{key} parts {CANNOT}")
