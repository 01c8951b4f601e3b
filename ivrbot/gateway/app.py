"""The gateway's aiohttp application: the wire API of spec/rtc-api.md."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from ivrbot import __version__
from ivrbot.config import Settings
from ivrbot.errors import request_error
from ivrbot.gateway.auth import SCOPES, AppScope, AuthError, Token, TokenService
from ivrbot.gateway.channel import LONG_POLL_S, envelope
from ivrbot.gateway.leg import SdpError
from ivrbot.gateway.sessions import Session, SessionRegistry
from ivrbot.gateway.switch import CallLeg, CallStateError, Reason, Switch

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 256 * 1024


class Gateway:
    """Everything the routes share: settings, tokens, sessions, the call switch."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = TokenService(settings.token_ttl_s)
        self.sessions = SessionRegistry(settings.session_ttl_s)
        self.switch = Switch(self.sessions)
        self.websockets: set[web.WebSocketResponse] = set()

    async def close(self) -> None:
        await self.switch.close()
        for session in self.sessions:
            self.sessions.remove(session.id)
        for ws in list(self.websockets):
            await ws.close()


GATEWAY = web.AppKey("gateway", Gateway)


class ApiError(Exception):
    def __init__(self, message_id: str, *variables: str) -> None:
        super().__init__(message_id)
        self.message_id, self.variables = message_id, variables


def error_response(message_id: str, *variables: str) -> web.Response:
    status, body = request_error(message_id, *variables)
    return web.json_response(body, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.message_id, *exc.variables)
    except AuthError as exc:
        return error_response("POL0001", str(exc))
    except SdpError as exc:
        return error_response("SVC0002", f"sdp ({exc})")
    except CallStateError as exc:
        return error_response("SVC8501", exc.action)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response("SVC0001", "internal error (logged by the gateway)")


def gw(request: web.Request) -> Gateway:
    return request.app[GATEWAY]


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length and request.content_length > MAX_BODY:
        raise ApiError("SVC0002", f"body (larger than {MAX_BODY} bytes)")
    try:
        body = await request.json() if request.can_read_body else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError("SVC0002", f"body (not valid JSON: {exc})") from None
    if not isinstance(body, dict):
        raise ApiError("SVC0002", "body (a JSON object is required)")
    return body


def bearer(request: web.Request) -> tuple[str, Token]:
    header = request.headers.get("Authorization", "")
    access = header[7:].strip() if header.lower().startswith("bearer ") else None
    token = gw(request).tokens.check(access)
    return hashlib.sha256((access or "").encode()).hexdigest(), token


def own_session(request: web.Request) -> Session:
    """The session named in the path, if it belongs to the caller's token (else 404)."""
    digest, _ = bearer(request)
    session = gw(request).sessions.get(request.match_info["sid"])
    if session is None or session.token_digest != digest:
        raise ApiError("SVC8514", request.match_info["sid"])  # 404, like any unknown session
    return session


def own_call(request: web.Request) -> CallLeg:
    session = own_session(request)
    leg = session.legs.get(request.match_info["cid"])
    if leg is None:
        raise web.HTTPNotFound(text=f"no call {request.match_info['cid']} in this session")
    return leg


# app-server routes -------------------------------------------------------------------------
async def get_config(request: web.Request) -> web.Response:
    s = gw(request).settings
    return web.json_response(
        {
            "api_endpoint": s.base_url,
            "ewebrtc_uri": s.rtc_uri,
            "virtual_numbers_pool": s.virtual_numbers,
            "ewebrtc_domain": s.domain,
            "app_tokens_url": "/tokens",
            "app_e911ids_url": "/e911ids",
            "authorize_uri": "/oauth/v4/authorize",
            "info": {
                "name": "ivrbot",
                "version": __version__,
                "tokens": "/tokens",
                "e911ids": "/e911ids",
                "rtc": s.rtc_uri,
                "scope_map": {k.value: v[1] for k, v in SCOPES.items()},
            },
        }
    )


async def post_tokens(request: web.Request) -> web.Response:
    body = await json_body(request)
    raw = body.get("app_scope")
    try:
        scope = AppScope(str(raw))
    except ValueError:
        valid = ", ".join(s.value for s in AppScope)
        raise ApiError("SVC0003", "app_scope", valid) from None
    access, token = gw(request).tokens.issue(scope)
    return web.json_response(
        {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": gw(request).settings.token_ttl_s,
            "scope": token.scope,
        }
    )


async def put_user_id(request: web.Request) -> web.Response:
    _, token = bearer(request)
    user_id = request.match_info["user_id"]
    s = gw(request).settings
    if token.app_scope is AppScope.VIRTUAL_NUMBER:
        if not user_id.startswith("vtn:") or user_id[4:] not in s.virtual_numbers:
            raise ApiError("SVC0003", "userId", f"vtn:<number from the pool of {s.domain}>")
    elif token.app_scope is AppScope.ACCOUNT_ID:
        name, _, domain = user_id.partition("@")
        if not name or domain != s.domain or "@" in domain:
            raise ApiError("SVC0003", "userId", f"<name>@{s.domain}")
    else:
        raise ApiError("POL1009", "user id association")
    token.user_id = user_id
    return web.Response(status=204)


# sessions ---------------------------------------------------------------------------------
async def post_session(request: web.Request) -> web.Response:
    digest, token = bearer(request)
    body = await json_body(request)
    if not isinstance(body.get("session"), dict):
        raise ApiError("SVC0002", "session")
    if token.user_id is None:
        raise ApiError("SVC8510", "the token has no user id: PUT /RTC/v1/userIds/{userId} first")
    session = gw(request).sessions.create(token.user_id, digest, request.headers.get("x-e911Id"))
    return web.Response(
        status=201,
        headers={"Location": session.path, "x-expires": str(gw(request).settings.session_ttl_s)},
    )


async def put_session(request: web.Request) -> web.Response:
    session = own_session(request)
    session.expires_at = time.time() + gw(request).settings.session_ttl_s
    return web.Response(status=204, headers={"x-expires": str(gw(request).settings.session_ttl_s)})


async def delete_session(request: web.Request) -> web.Response:
    session = own_session(request)
    await gw(request).switch.end_session(session)
    gw(request).sessions.remove(session.id)
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
    batch = await session.channel.next_batch(LONG_POLL_S)
    if not batch:
        return web.Response(status=204)
    return web.json_response(envelope(batch))


# calls ------------------------------------------------------------------------------------
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


def make_app(settings: Settings | None = None) -> web.Application:
    gateway = Gateway(settings or Settings())
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY)
    app[GATEWAY] = gateway
    rtc = gateway.settings.rtc_uri
    app.router.add_get("/config", get_config)
    app.router.add_post("/tokens", post_tokens)
    app.router.add_put(rtc + "/userIds/{user_id}", put_user_id)
    app.router.add_post(rtc + "/sessions", post_session)
    app.router.add_put(rtc + "/sessions/{sid}", put_session)
    app.router.add_delete(rtc + "/sessions/{sid}", delete_session)
    app.router.add_post(rtc + "/sessions/{sid}/websockets", post_websocket)
    app.router.add_get(rtc + "/sessions/{sid}/websockets/{wid}", get_websocket)
    app.router.add_get(rtc + "/sessions/{sid}/events", get_events)
    app.router.add_post(rtc + "/sessions/{sid}/calls", post_call)
    app.router.add_put(rtc + "/sessions/{sid}/calls/{cid}", put_call)
    app.router.add_delete(rtc + "/sessions/{sid}/calls/{cid}", delete_call)

    async def on_shutdown(app: web.Application) -> None:
        await gateway.close()

    app.on_shutdown.append(on_shutdown)
    return app
