"""What a token holder's apps read to show a balance: OpenAI's old billing endpoints (SPEC §7).

    GET /v1/dashboard/billing/subscription
    GET /v1/dashboard/billing/usage?start_date=YYYY-MM-DD&end_date=YYYY-MM-DD

(also without `/v1`, and doubled: the edge maps every spelling here), with the user's proxy token
as `Authorization: Bearer`. The shapes are one-api's and new-api's, which NextChat reads: it
shows "used `total_usage` / 100 of `hard_limit_usd`" for the month.

- `hard_limit_usd` (= `soft_limit_usd` = `system_hard_limit_usd`) is the token's credit: what is
  left plus all it has spent, so that used ≤ credit and credit − used is the balance. A token
  without a balance gets `UNLIMITED_USD`, as one-api gives. `access_until` is its expiry in Unix
  seconds, 0 when it has none.
- `total_usage` is the USD billed in [start_date, end_date) — UTC days, the end excluded, as
  OpenAI counts — in cents; `daily_costs` has one entry a day for apps that draw a chart.
  Without dates (NextChat's server-side forwarder drops the query string) the range is the
  current UTC month up to and including today.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.admission import refusal
from relay.auth import find_key
from relay.dialects import OPENAI
from relay.edge import header_map
from relay.errors import ProxyError
from relay.runtime import Runtime
from relay.state import NANO, Account, Admission, StoreUnavailable, to_nano, utc_today

from .table import BILLING_PATHS

UNLIMITED_USD = 100_000_000  # one-api's and new-api's figure for a token without a limit
MAX_RANGE_DAYS = 100  # OpenAI's own limit for one usage query
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_CENTS_PER_NANO = 100 / NANO
_REVOKED = Admission(False, "revoked")


def parse_day(value: str, param: str) -> date:
    """A YYYY-MM-DD date, exactly (`date.fromisoformat` takes other ISO spellings too)."""
    try:
        if _DAY.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise ProxyError(400, f"'{param}' must be a date as YYYY-MM-DD, not {value!r}", code="invalid_date",
                     param=param)


def usage_range(start: str | None, end: str | None, today: date) -> tuple[date, date]:
    """[first day, end day): the days asked, each defaulting to the current month's first day
    and tomorrow. Refused when the end comes first or the range is over MAX_RANGE_DAYS."""
    first = parse_day(start, "start_date") if start is not None else today.replace(day=1)
    last = parse_day(end, "end_date") if end is not None else today + timedelta(days=1)
    if last < first:
        raise ProxyError(400, f"'end_date' ({last}) is before 'start_date' ({first})", code="invalid_date",
                         param="end_date")
    if (last - first).days > MAX_RANGE_DAYS:
        raise ProxyError(400, f"The usage range is {(last - first).days} days: at most {MAX_RANGE_DAYS} may be "
                              "asked at once", code="invalid_date", param="end_date")
    return first, last


def subscription(credit_usd: float | None, expires: float | None) -> dict:
    limit = UNLIMITED_USD if credit_usd is None else credit_usd
    return {"object": "billing_subscription", "has_payment_method": True, "soft_limit_usd": limit,
            "hard_limit_usd": limit, "system_hard_limit_usd": limit,
            "access_until": int(expires) if expires is not None else 0}


def usage(spend: dict[str, float], first: date, end: date) -> dict:
    """`spend`: USD by UTC day (YYYY-MM-DD); days missing from it spent nothing."""
    daily, total = [], 0
    for offset in range((end - first).days):
        day = first + timedelta(days=offset)
        nano = to_nano(spend.get(day.isoformat(), 0.0))
        total += nano
        midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        daily.append({"timestamp": int(midnight.timestamp()),
                      "line_items": [{"name": "All models", "cost": nano * _CENTS_PER_NANO}]})
    return {"object": "list", "total_usage": total * _CENTS_PER_NANO, "daily_costs": daily}


def credit_of(account: Account | None, opening_usd: float | None) -> float | None:
    """What the token was given in all: its balance plus what it spent. Before its first request
    the store holds no balance yet: its opening credit (config or signed claim) is it."""
    balance = account.balance_usd if account is not None and account.balance_usd is not None else opening_usd
    if balance is None:
        return None
    spent = account.spent_usd if account is not None else 0.0
    return (to_nano(balance) + to_nano(spent)) / NANO


def billing_routes(rt: Runtime, route: type[Route] = Route) -> list[Route]:
    """The two billing endpoints; `route` is the route class (its 405s in the client's dialect)."""
    auth, fleet = rt.auth, rt.fleet

    async def caller_account(request: Request):
        """The caller's token and the store's account for it; refusals in OpenAI's shape."""
        key = find_key(header_map(request.scope["headers"]), request.scope["query_string"])
        caller = auth.identify(key, OPENAI.family)
        if caller.passthrough:
            raise ProxyError(401, "The billing endpoints need a proxy token: a provider key's balance is "
                                  "shown by its provider", code="invalid_api_key")
        if not rt.started:
            await rt.start()  # a host that sends no lifespan events
        account = await fleet.account(caller.token.name, utc_today().isoformat())
        if account is not None and account.revoked:
            raise refusal(_REVOKED, caller.token, OPENAI)
        return caller.token, account

    def answering(build):
        async def endpoint(request: Request) -> Response:
            try:
                status, body = 200, orjson.dumps(await build(request))
            except ProxyError as err:
                status, body = err.status, OPENAI.render_error(err)
            except StoreUnavailable:
                status, body = 503, OPENAI.render_error(
                    ProxyError(503, "The balance cannot be read right now: retry shortly", code="state_unavailable"))
            # A balance is one user's and changes with every request: no cache may keep it.
            return Response(body, status, media_type="application/json", headers={"cache-control": "no-store"})

        return endpoint

    async def subscription_of(request: Request) -> dict:
        token, account = await caller_account(request)
        return subscription(credit_of(account, token.balance_usd), token.expires)

    async def usage_of(request: Request) -> dict:
        token, _ = await caller_account(request)
        params = request.query_params
        first, end = usage_range(params.get("start_date"), params.get("end_date"), utc_today())
        spent = {}
        if end > first:
            spent = dict(await fleet.spend(token.name, first.isoformat(), (end - timedelta(days=1)).isoformat()))
        return usage(spent, first, end)

    return [route(path, answering(build), methods=["GET"])
            for path, build in zip(BILLING_PATHS, (subscription_of, usage_of))]
