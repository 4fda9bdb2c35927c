"""`GET /v1/responses/{id}`: a kept Responses API answer (SPEC §6), scoped to the caller's token.

With a provider's own key (passthrough) the official API answers.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from relay import stored
from relay.auth import Caller
from relay.errors import ProxyError

from .answer import JSON, Answer
from .models import Models


class KeptResponses(Models):
    async def serve(self, scope, headers, caller: Caller, body: bytes, answer: Answer) -> None:
        dialect = self.row.dialect
        response_id = scope["path_params"]["response_id"]
        if caller.passthrough:
            await self.passthrough_get(scope, dialect, f"/responses/{quote(response_id, safe='')}", answer)
            return
        await self.admit(answer.call, caller, dialect, None, None)
        kept = stored.load(await self.rt.fleet.get_response(caller.token.name, response_id))
        if kept is None:
            raise ProxyError(404, f"No response found with id '{response_id}'.", code="response_not_found")
        await answer.whole(200, list(JSON), orjson.dumps(kept["response"]))
