"""The integrators' HTTP API (README: Starting calls over HTTP, and webhooks).

- ``POST /ivrbot/calls`` ``{"flow", "to", "vars"?, "webhook"?, "webhook_steps"?,
  "ring_timeout_s"?}`` places one outbound call: 201 with the call (its ``id``, ``state``)
  and ``Location: /ivrbot/calls/{id}``;
- ``GET /ivrbot/calls/{id}``: its state (dialing, ringing, answered, completed), outcome,
  times and duration; any flow record's id works (calls of earlier runs: from the store);
- ``GET /ivrbot/webhooks``: deliveries so far (delivered, failed, retried, pending) and the
  latest failures (the dashboard's webhooks panel).

Only the operator: an ``X-API-Key`` (one of ``IVRBOT_API_KEYS``), HTTP Basic with the OAuth
client's id and secret, or a bearer token issued to them (the dashboard's). Errors are the
gateway's RequestError JSON, one line: 400 SVC0002 naming the field, 401 / 403 POL0001, 404
SVC0404 (unknown flow or call), 409 SVC8520 (the flow is not served), 429 SVC8520 (the flow
is at capacity).
"""

from __future__ import annotations

from aiohttp import web

from ivrbot.integrations.calls import CallRefused, OutboundCalls, parse_request, stored_call
from ivrbot.integrations.delivery import WebhookSender
from ivrbot.wire.http import ApiError, check_operator, gw, json_body

CALLS = web.AppKey("ivrbot.calls", OutboundCalls)  # set by the composition root
SENDER = web.AppKey("ivrbot.webhooks", WebhookSender)
BASE = "/ivrbot/calls"
STATUS = "/ivrbot/webhooks"
NO_FLOWS = "this gateway serves no flows: start it with ivrbot run"


def refused(exc: CallRefused) -> ApiError:
    if exc.status == 400:
        return ApiError("SVC0002", str(exc))
    if exc.status == 404:
        return ApiError("SVC0404", str(exc))
    return ApiError("SVC8520", str(exc), status=exc.status)


async def post_call(request: web.Request) -> web.Response:
    await check_operator(request)
    body = await json_body(request)  # 400 SVC0002 naming what is wrong with the JSON
    if not body:
        raise ApiError("SVC0002", 'body (send a JSON object: {"flow": ..., "to": ...})')
    calls = request.app.get(CALLS)
    try:
        wanted = parse_request(body)
        if calls is None:
            raise CallRefused(409, NO_FLOWS)
        placed = await calls.place(wanted)
    except CallRefused as exc:
        raise refused(exc) from None
    shown = placed.to_dict()
    location = f"{BASE}/{shown['id']}"
    return web.json_response(shown, status=201, headers={"Location": location})


async def get_call(request: web.Request) -> web.Response:
    await check_operator(request)
    call_id = request.match_info["id"]
    calls = request.app.get(CALLS)
    placed = calls.get(call_id) if calls is not None else None
    if placed is not None:
        return web.json_response(placed.to_dict())
    record = await gw(request).store.flow_call(call_id) if call_id.isalnum() else None
    if record is None or record.get("id") != call_id:
        raise ApiError("SVC0404", f"call {call_id} (no call or flow record has that id)")
    return web.json_response(stored_call(record))


async def webhook_status(request: web.Request) -> web.Response:
    await check_operator(request)
    sender = request.app.get(SENDER)
    if sender is None:
        sender = WebhookSender(gw(request).settings.webhook_secret)  # nothing sent here
    return web.json_response(sender.status())


def add_routes(app: web.Application, rtc: str = "") -> None:
    app.router.add_post(BASE, post_call)
    app.router.add_get(BASE + "/{id}", get_call)
    app.router.add_get(STATUS, webhook_status)
