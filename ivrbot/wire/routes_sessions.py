"""Sessions and their event channel (WebSocket and long-poll)."""

from __future__ import annotations

import asyncio
import secrets

from aiohttp import WSMsgType, web

from ivrbot.endpoints.local.local_link import PROCESS_KEY, SESSION_HEADER
from ivrbot.media.hold import HOLD_AUDIO, HOLD_AUDIO_HEADER
from ivrbot.wire.e911 import e911_for_session
from ivrbot.wire.http import ApiError, bearer, gw, json_body, limit, own_session
from ivrbot.wire.serialise import envelope


async def post_session(request: web.Request) -> web.Response:
    limit(request, "session")
    digest, token = bearer(request)
    body = await json_body(request)
    if not isinstance(body.get("session"), dict):
        raise ApiError("SVC0002", "session")
    if token.user_id is None:
        raise ApiError("SVC8512", "PUT /RTC/v1/userIds/{userId} first")
    gateway = gw(request)
    refusal = gateway.access.refusal(token, token.user_id, associating=False)
    if refusal is not None:  # e.g. associated before the number was reserved for a bot
        raise ApiError("POL1009", refusal)
    e911_id = await e911_for_session(gateway, token, request.headers.get("x-e911Id"))
    # a Phone in the gateway's own process proves it with the process key: local media
    local = request.headers.get(SESSION_HEADER) == PROCESS_KEY
    hold_audio = request.headers.get(HOLD_AUDIO_HEADER)  # ivrbot's: a bot says 'silence'
    if hold_audio is not None and hold_audio not in HOLD_AUDIO:
        raise ApiError("SVC0002", f"{HOLD_AUDIO_HEADER} (one of: {', '.join(HOLD_AUDIO)})")
    session = gateway.sessions.create(token.user_id, digest, e911_id, local)
    session.hold_audio = hold_audio
    return web.Response(
        status=201,
        headers={"Location": session.path, "x-expires": str(gateway.settings.session_ttl_s)},
    )


async def put_session(request: web.Request) -> web.Response:
    """Refresh the session; ``{e911Association: {e911Id}}`` also re-associates its address."""
    session = own_session(request)
    _, token = bearer(request)
    gateway = gw(request)
    body = await json_body(request)
    if "e911Association" in body:
        association = body["e911Association"]
        e911_id = association.get("e911Id") if isinstance(association, dict) else None
        if not isinstance(e911_id, str) or not e911_id:
            raise ApiError("SVC0002", "e911Association.e911Id (a non-empty string)")
        new_id = await e911_for_session(gateway, token, e911_id)
        if new_id is not None:
            session.e911_id = new_id
    session.expires_at = gateway.clock.time() + gateway.settings.session_ttl_s
    return web.Response(status=204, headers={"x-expires": str(gateway.settings.session_ttl_s)})


async def delete_session(request: web.Request) -> web.Response:
    session = own_session(request)
    await gw(request).end_session(session)
    return web.Response(status=204)


# event channel ----------------------------------------------------------------------------
async def post_websocket(request: web.Request) -> web.Response:
    session = own_session(request)
    return web.Response(
        status=201, headers={"Location": f"{session.path}/websockets/{secrets.token_hex(4)}"}
    )


async def get_websocket(request: web.Request) -> web.WebSocketResponse:
    session = own_session(request)
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    gateway = gw(request)
    gateway.websockets.add(ws)
    reader = asyncio.ensure_future(ws.receive())
    try:
        while not ws.closed:
            batch_task = asyncio.ensure_future(session.channel.next_batch(None))
            done, _ = await asyncio.wait({batch_task, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                batch_task.cancel()
                msg = reader.result()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                reader = asyncio.ensure_future(ws.receive())
                continue
            batch = batch_task.result()
            if batch is None:
                break
            await ws.send_json(envelope(batch))
    finally:
        reader.cancel()
        gateway.websockets.discard(ws)
        await ws.close()
    return ws


async def get_events(request: web.Request) -> web.Response:
    session = own_session(request)
    batch = await session.channel.next_batch(gw(request).settings.long_poll_s)
    if not batch:
        return web.Response(status=204)
    return web.json_response(envelope(batch))


def add_routes(app: web.Application, rtc: str) -> None:
    app.router.add_post(rtc + "/sessions", post_session)
    app.router.add_put(rtc + "/sessions/{sid}", put_session)
    app.router.add_delete(rtc + "/sessions/{sid}", delete_session)
    app.router.add_post(rtc + "/sessions/{sid}/websockets", post_websocket)
    app.router.add_get(rtc + "/sessions/{sid}/websockets/{wid}", get_websocket)
    app.router.add_get(rtc + "/sessions/{sid}/events", get_events)
