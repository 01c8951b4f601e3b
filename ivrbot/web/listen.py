"""Listening in from the dashboard (the operator's token only).

- ``POST /ivrbot/calls/{id}/listen`` with ``{"sdp": OFFER}`` (the page's receive-only
  offer, ICE gathered): 201 ``{"listener": ID, "sdp": ANSWER}``; the gateway's answer sends
  the call's two parties, mixed (:mod:`ivrbot.endpoints.webrtc.listen`); 404 for no such live call,
  400 for an offer it cannot use;
- ``DELETE /ivrbot/listeners/{id}``: stop listening (204; 404 when it has ended already).
"""

from __future__ import annotations

from aiohttp import web

from ivrbot.core.endpoints import SdpError
from ivrbot.endpoints.webrtc.listen import ListenError, Listeners
from ivrbot.web.dashboard import LISTEN_PATHS, operator_only
from ivrbot.wire.http import GATEWAY

LISTENERS = web.AppKey("listeners", Listeners)
LISTEN_PATH, LISTENER_PATH = LISTEN_PATHS


@operator_only
async def listen(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    offer = body.get("sdp") if isinstance(body, dict) else None
    if not isinstance(offer, str):
        return web.json_response({"error": 'send {"sdp": "<the page\'s offer>"}'}, status=400)
    try:
        listener, answer = await request.app[LISTENERS].start(request.match_info["id"], offer)
    except ListenError as exc:
        return web.json_response({"error": str(exc)}, status=404)
    except SdpError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"listener": listener.id, "sdp": answer}, status=201)


@operator_only
async def stop(request: web.Request) -> web.Response:
    if not await request.app[LISTENERS].stop(request.match_info["id"]):
        return web.json_response({"error": "no such listener (it has ended)"}, status=404)
    return web.Response(status=204)


async def _close(app: web.Application) -> None:
    await app[LISTENERS].close()


def add_routes(app: web.Application) -> None:
    app[LISTENERS] = Listeners(app[GATEWAY].switch)
    app.router.add_post(LISTEN_PATH, listen)
    app.router.add_delete(LISTENER_PATH, stop)
    app.on_shutdown.append(_close)
