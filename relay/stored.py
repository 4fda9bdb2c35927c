"""Responses API answers kept for `previous_response_id` and `GET /v1/responses/{id}` (SPEC §6).

An answer whose request did not say `store: false` is kept in the fleet's state for
`[state] responses_ttl_h`, scoped to its token, with the input that led to it. A later request
naming it as `previous_response_id` is sent on with that conversation before its own input, so it
works on any channel (one that serves the Responses API itself, or one it is translated for) and
any replica.
"""

from __future__ import annotations

import orjson

from .errors import ProxyError


def items(value: object) -> list:
    """A Responses `input` as a list of items."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return value if isinstance(value, list) else []


def record(body: dict, response: dict, native: bool) -> bytes:
    """What is kept of one answer: the whole input it answered (earlier turns included) and the
    response itself; `native`: an upstream that serves the Responses API made it."""
    return orjson.dumps({"input": items(body.get("input")), "response": response, "native": native})


def continued(body: dict, kept: dict, native: bool) -> dict:
    """`body` with the kept conversation before its own input, for a channel that serves the
    Responses API itself (`native`) or not. Reasoning items that a translated answer carries hold
    this proxy's packing of another vendor's thinking: a native upstream would refuse them."""
    output = kept["response"].get("output")  # an upstream's, kept as it came: perhaps no list
    history = [*kept["input"], *(output if isinstance(output, list) else ())]
    if native and not kept.get("native"):
        history = [item for item in history if not (isinstance(item, dict) and item.get("type") == "reasoning")]
    out = {**body, "input": history + items(body.get("input"))}
    if native:
        del out["previous_response_id"]  # the upstream never saw that id (a translated answer echoes it)
    return out


def not_found(response_id: str) -> ProxyError:
    return ProxyError(404, f"Previous response with id '{response_id}' not found.", code="previous_response_not_found",
                      param="previous_response_id")


def load(data: bytes | None) -> dict | None:
    if data is None:
        return None
    kept = orjson.loads(data)
    return kept if isinstance(kept, dict) and isinstance(kept.get("response"), dict) else None
