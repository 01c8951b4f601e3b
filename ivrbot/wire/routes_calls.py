"""Calls: place, answer, hold, resume, move, transfer, modify, merge, end."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ivrbot.core.actions import CallAction
from ivrbot.core.call_state import Reason
from ivrbot.core.handle import CallHandle
from ivrbot.core.merge import MERGE_MODES
from ivrbot.wire.http import ApiError, gw, json_body, own_call, own_session


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
    gateway = gw(request)
    worker = gateway.workers.route(session, called) if gateway.workers else None
    if worker is not None:  # the flow answering it runs on a media worker
        leg: CallHandle = await worker.place(session, called, sdp)
    else:
        leg = await gateway.switch.place(session, called, sdp)
    return web.Response(
        status=201, headers={"Location": leg.resource_url, "x-state": "invitation-sent"}
    )


def _sdp(body: dict[str, Any], required: bool) -> str | None:
    mods = body.get("callsMediaModifications")
    sdp = mods.get("sdp") if isinstance(mods, dict) else None
    if required and not isinstance(sdp, str):
        raise ApiError("SVC0002", "callsMediaModifications.sdp")
    return sdp if isinstance(sdp, str) else None


ACTIONS = (
    "call-answer", "initiate-call-hold", "initiate-call-resume", "initiate-call-move",
    "initiate-call-transfer", "initiate-call-mod", "accept-call-mod", "reject-call-mod",
    "initiate-call-merge",
)  # fmt: skip


def read_action(request: web.Request, body: dict[str, Any]) -> CallAction:
    """The request's action with what it needs; 400 naming what is missing or wrong."""
    name = request.headers.get("x-calls-action", "")
    headers = request.headers
    if name not in ACTIONS:
        raise ApiError("SVC0003", "x-calls-action", ", ".join(ACTIONS))
    if name == "call-answer":
        return CallAction(name, sdp=_sdp(body, required=True))
    if name == "initiate-call-transfer":
        target = headers.get("x-transferTargetCallId")
        if not target:
            raise ApiError("SVC0002", "x-transferTargetCallId")
        return CallAction(name, target=target)
    if name == "initiate-call-merge":
        conference_id = headers.get("x-conferenceId")
        if not conference_id:
            raise ApiError("SVC0002", "x-conferenceId")
        mode = headers.get("x-merge-mode", "leave")
        if mode not in MERGE_MODES:
            raise ApiError("SVC0003", "x-merge-mode", ", ".join(MERGE_MODES))
        return CallAction(name, conference_id=conference_id, stay=mode == "stay")
    if name == "initiate-call-mod":
        mods = body.get("callsMediaModifications")
        kind = mods.get("type") if isinstance(mods, dict) else None
        if kind not in ("upgrade", "downgrade"):
            raise ApiError("SVC0003", "callsMediaModifications.type", "upgrade, downgrade")
        media = "video" if kind == "upgrade" else "audio"
        return CallAction(name, sdp=_sdp(body, required=False), media=media)
    if name in ("accept-call-mod", "reject-call-mod"):
        settled = headers.get("x-modId")
        if not settled:
            raise ApiError("SVC0002", "x-modId")
        return CallAction(name, sdp=_sdp(body, required=False), mod_id=settled)
    return CallAction(name, sdp=_sdp(body, required=False))


async def put_call(request: web.Request) -> web.Response:
    """``x-calls-action`` says what to do. Hold, resume and a media change may carry the
    client's new offer (``callsMediaModifications.sdp``): the gateway answers it in
    ``mod-terminated`` (with the ``x-modId`` of the response). Media is anchored in the
    gateway, so move and transfer need no new SDP (one sent is ignored: that leg ends)."""
    leg = own_call(request)
    mod_id = await leg.act(read_action(request, await json_body(request)))
    if mod_id is not None:
        return web.Response(status=204, headers={"x-modId": mod_id})
    return web.Response(status=204)


DELETE_REASONS = {"terminate": Reason.HANGUP, "cancel": Reason.CANCELED, "reject": Reason.BUSY}


async def delete_call(request: web.Request) -> web.Response:
    leg = own_call(request)
    raw = request.headers.get("x-delete-reason", "terminate")
    if raw not in DELETE_REASONS:
        raise ApiError("SVC0003", "x-delete-reason", ", ".join(DELETE_REASONS))
    await leg.end(DELETE_REASONS[raw])
    return web.Response(status=204)


def add_routes(app: web.Application, rtc: str) -> None:
    app.router.add_post(rtc + "/sessions/{sid}/calls", post_call)
    app.router.add_put(rtc + "/sessions/{sid}/calls/{cid}", put_call)
    app.router.add_delete(rtc + "/sessions/{sid}/calls/{cid}", delete_call)
