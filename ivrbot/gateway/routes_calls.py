"""Calls: place, answer, end."""

from __future__ import annotations

from aiohttp import web

from ivrbot.gateway.http import ApiError, gw, json_body, own_call, own_session
from ivrbot.gateway.switch import CallStateError, Reason


async def post_call(request: web.Request) -> web.Response:
    session = own_session(request)
    body = await json_body(request)
    call = body.get("call")
    if not isinstance(call, dict):
        raise ApiError("SVC0002", "call")
    called, sdp = call.get("calledParty"), call.get("sdp")
    if not isinstance(called, str) or not called.startswith(("tel:+", "sip:")):
        raise ApiError("SVC0004", "calledParty (tel:+<digits> or sip:<user>@<domain>)")
    if not isinstance(sdp, str):
        raise ApiError("SVC0002", "sdp")
    leg = await gw(request).switch.place(session, called, sdp)
    return web.Response(
        status=201, headers={"Location": leg.resource_url, "x-state": "invitation-sent"}
    )


async def put_call(request: web.Request) -> web.Response:
    leg = own_call(request)
    action = request.headers.get("x-calls-action", "")
    body = await json_body(request)
    if action != "call-answer":
        raise ApiError("SVC0003", "x-calls-action", "call-answer")
    mods = body.get("callsMediaModifications")
    if not isinstance(mods, dict) or not isinstance(mods.get("sdp"), str):
        raise ApiError("SVC0002", "callsMediaModifications.sdp")
    if leg.side != "callee":
        raise CallStateError("call-answer", leg.call.state)
    await gw(request).switch.answer(leg, mods["sdp"])
    return web.Response(status=204)


DELETE_REASONS = {"terminate": Reason.HANGUP, "cancel": Reason.CANCELED, "reject": Reason.BUSY}


async def delete_call(request: web.Request) -> web.Response:
    leg = own_call(request)
    raw = request.headers.get("x-delete-reason", "terminate")
    if raw not in DELETE_REASONS:
        raise ApiError("SVC0003", "x-delete-reason", ", ".join(DELETE_REASONS))
    await gw(request).switch.end(leg, DELETE_REASONS[raw])
    return web.Response(status=204)


def add_routes(app: web.Application, rtc: str) -> None:
    app.router.add_post(rtc + "/sessions/{sid}/calls", post_call)
    app.router.add_put(rtc + "/sessions/{sid}/calls/{cid}", put_call)
    app.router.add_delete(rtc + "/sessions/{sid}/calls/{cid}", delete_call)
