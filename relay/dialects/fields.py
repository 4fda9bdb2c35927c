"""The JSON types of the request fields the proxy reads, one table per client dialect (see
`relay.shapes`), as the official SDKs' request types give them.

`*_REQUEST`: every field the client's converter (and, for OpenAI chat, the channels' converters)
reads; checked before a request is translated, so the converters can trust those types.
`*_READ`: the few fields the forwarder itself reads on every request, translated or not: where a
wrong type would make the proxy read the request otherwise than the upstream (a `stream` of
`"true"` is no stream to the proxy), it is refused.
"""

from __future__ import annotations

import re

from relay.shapes import ANY_OBJECT, BOOLEAN, INTEGER, NUMBER, STRING, Shape, array, either, obj

STRINGS = array(STRING)

# -- OpenAI chat completions --------------------------------------------------------------------

_CHAT_PART = obj(
    type=STRING, text=STRING, refusal=STRING, cache_control=ANY_OBJECT,
    image_url=either(STRING, obj(url=STRING, detail=STRING)),
    file=obj(file_data=STRING, filename=STRING, file_id=STRING),
    input_audio=obj(data=STRING, format=STRING),
)
_CHAT_CONTENT = either(STRING, array(_CHAT_PART))
_TOOL_CALL = obj(
    id=STRING, type=STRING,
    function=obj(name=STRING, arguments=either(STRING, ANY_OBJECT)),  # an object: lenient clients' habit
    extra_content=obj(google=obj(thought_signature=STRING)),
)
_CHAT_MESSAGE = obj(
    role=STRING, content=_CHAT_CONTENT, name=STRING, tool_call_id=STRING, tool_calls=array(_TOOL_CALL),
    reasoning_content=STRING,
    thinking_blocks=array(obj(type=STRING, thinking=STRING, signature=STRING, data=STRING)),
)
_NAMED_FUNCTION = obj(type=STRING, function=obj(name=STRING))

CHAT_READ = obj(stream=BOOLEAN, stream_options=obj(include_usage=BOOLEAN))

CHAT_REQUEST = obj(
    model=STRING, messages=array(_CHAT_MESSAGE), stream=BOOLEAN, stream_options=obj(include_usage=BOOLEAN),
    tools=array(obj(type=STRING, cache_control=ANY_OBJECT,
                    function=obj(name=STRING, description=STRING, parameters=ANY_OBJECT, strict=BOOLEAN))),
    tool_choice=either(STRING, obj(type=STRING, function=obj(name=STRING),
                                   allowed_tools=obj(mode=STRING, tools=array(_NAMED_FUNCTION)))),
    parallel_tool_calls=BOOLEAN, n=INTEGER, max_tokens=INTEGER, max_completion_tokens=INTEGER,
    temperature=NUMBER, top_p=NUMBER, seed=INTEGER, presence_penalty=NUMBER, frequency_penalty=NUMBER,
    stop=either(STRING, STRINGS), user=STRING, reasoning_effort=STRING,
    thinking=obj(type=STRING, budget_tokens=INTEGER),  # DeepSeek's and Anthropic's own spelling
    response_format=obj(type=STRING, json_schema=obj(name=STRING, schema=ANY_OBJECT, strict=BOOLEAN)),
)

# -- the Responses API ---------------------------------------------------------------------------

_INPUT_PART = obj(
    type=STRING, text=STRING, refusal=STRING, image_url=STRING, detail=STRING, file_id=STRING,
    file_data=STRING, filename=STRING, file_url=STRING, input_audio=obj(data=STRING, format=STRING),
)
_INPUT_CONTENT = either(STRING, array(_INPUT_PART))
_INPUT_ITEM = obj(
    type=STRING, role=STRING, id=STRING, status=STRING, content=_INPUT_CONTENT,
    summary=array(obj(type=STRING, text=STRING)), encrypted_content=STRING,
    call_id=STRING, name=STRING, namespace=STRING, arguments=STRING, input=STRING, output=_INPUT_CONTENT,
    action=obj(type=STRING, command=STRINGS, working_directory=STRING, timeout_ms=INTEGER, env=ANY_OBJECT),
)
_RESPONSES_TOOL = obj(
    type=STRING, name=STRING, description=STRING, parameters=ANY_OBJECT, strict=BOOLEAN,
    format=obj(type=STRING, syntax=STRING, definition=STRING),
)
_RESPONSES_TOOL.fields["tools"] = array(_RESPONSES_TOOL)  # a namespace's own tools

RESPONSES_READ = obj(stream=BOOLEAN)

RESPONSES_REQUEST = obj(
    model=STRING, instructions=STRING, input=either(STRING, array(_INPUT_ITEM)), stream=BOOLEAN,
    tools=array(_RESPONSES_TOOL),
    tool_choice=either(STRING, obj(type=STRING, name=STRING, mode=STRING, tools=array(obj(type=STRING, name=STRING)))),
    parallel_tool_calls=BOOLEAN, max_output_tokens=INTEGER, temperature=NUMBER, top_p=NUMBER,
    reasoning=obj(effort=STRING, summary=STRING), user=STRING, safety_identifier=STRING,
    text=obj(format=obj(type=STRING, name=STRING, schema=ANY_OBJECT, description=STRING, strict=BOOLEAN),
             verbosity=STRING),
    background=BOOLEAN, top_logprobs=INTEGER, metadata=ANY_OBJECT, store=BOOLEAN, previous_response_id=STRING,
    prompt_cache_key=STRING, service_tier=STRING, truncation=STRING, max_tool_calls=INTEGER, include=STRINGS,
)

# -- Anthropic messages --------------------------------------------------------------------------

_BLOCK = obj(
    type=STRING, text=STRING, title=STRING, tool_use_id=STRING, id=STRING, name=STRING, input=ANY_OBJECT,
    thinking=STRING, signature=STRING, data=STRING, is_error=BOOLEAN, cache_control=ANY_OBJECT,
)
_BLOCKS = either(STRING, array(_BLOCK))
# A search result names its source by a string; images and documents by an object.
_BLOCK.fields["source"] = either(STRING, obj(type=STRING, media_type=STRING, data=STRING, url=STRING, content=_BLOCKS))
_BLOCK.fields["content"] = _BLOCKS  # a tool result's or a search result's own blocks

MESSAGES_READ = obj(stream=BOOLEAN)

MESSAGES_REQUEST = obj(
    model=STRING, max_tokens=INTEGER, stream=BOOLEAN,
    system=either(STRING, array(obj(type=STRING, text=STRING, cache_control=ANY_OBJECT))),
    messages=array(obj(role=STRING, content=_BLOCKS)),
    tools=array(obj(type=STRING, name=STRING, description=STRING, input_schema=ANY_OBJECT)),
    tool_choice=obj(type=STRING, name=STRING, disable_parallel_tool_use=BOOLEAN),
    temperature=NUMBER, top_p=NUMBER, top_k=INTEGER, stop_sequences=STRINGS, metadata=obj(user_id=STRING),
    thinking=obj(type=STRING, budget_tokens=INTEGER),
    output_config=obj(effort=STRING, format=obj(type=STRING, schema=ANY_OBJECT)),
)

# -- Gemini generateContent ----------------------------------------------------------------------


def _both(**fields: Shape) -> Shape:
    """A Gemini object: its REST API takes every field in camelCase and snake_case alike."""
    spelled = dict(fields)
    for name, shape in fields.items():
        spelled.setdefault(re.sub(r"([A-Z])", r"_\1", name).lower(), shape)
    return obj(**spelled)


_BLOB = _both(mimeType=STRING, data=STRING, displayName=STRING)
_FILE = _both(mimeType=STRING, fileUri=STRING, displayName=STRING)
_PART = _both(
    text=STRING, thought=BOOLEAN, thoughtSignature=STRING, inlineData=_BLOB, fileData=_FILE,
    functionCall=_both(id=STRING, name=STRING, args=ANY_OBJECT),
    executableCode=ANY_OBJECT, codeExecutionResult=ANY_OBJECT,
)
_PART_RESPONSE = _both(id=STRING, name=STRING, response=ANY_OBJECT, parts=array(_PART))
_PART.fields["functionResponse"] = _PART.fields["function_response"] = _PART_RESPONSE
_CONTENT = _both(role=STRING, parts=array(_PART))

GENERATE_REQUEST = _both(
    model=STRING, contents=array(_CONTENT), systemInstruction=either(STRING, _CONTENT), cachedContent=STRING,
    tools=array(_both(functionDeclarations=array(_both(name=STRING, description=STRING, parameters=ANY_OBJECT)))),
    toolConfig=_both(functionCallingConfig=_both(mode=STRING, allowedFunctionNames=STRINGS)),
    generationConfig=_both(
        maxOutputTokens=INTEGER, temperature=NUMBER, topP=NUMBER, topK=NUMBER, seed=INTEGER, candidateCount=INTEGER,
        presencePenalty=NUMBER, frequencyPenalty=NUMBER, stopSequences=STRINGS, responseModalities=STRINGS,
        responseMimeType=STRING, responseSchema=ANY_OBJECT, responseLogprobs=BOOLEAN, logprobs=INTEGER,
        thinkingConfig=_both(includeThoughts=BOOLEAN, thinkingBudget=INTEGER, thinkingLevel=STRING),
    ),
    safetySettings=array(ANY_OBJECT),
)
GENERATE_REQUEST.fields["generateContentRequest"] = GENERATE_REQUEST  # countTokens wraps a whole request
